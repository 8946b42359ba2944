/*-------------------------------------------------------------------------
 *
 * http.h
 *	  Sending attempts with the libcurl multi driver (http.c).
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_HTTP_H
#define WEBHOOK_HTTP_H

#include <curl/curl.h>

#include "attempt.h"
#include "lib/ilist.h"

/* room for "address <IPv6> is in webhook.deny_networks" */
#define HTTP_DENIED_LEN 128

/*
 * curl_easy_setopt that fails loudly: a TLS, protocol or redirect option
 * that did not take must never let a request go out without it.
 */
#define http_setopt(easy, option, value) \
	do { \
		CURLcode	setopt_rc_ = curl_easy_setopt((easy), (option), (value)); \
		if (setopt_rc_ != CURLE_OK) \
			ereport(ERROR, \
					(errcode(ERRCODE_INTERNAL_ERROR), \
					 errmsg("could not set curl option %s: %s", \
							#option, curl_easy_strerror(setopt_rc_)))); \
	} while (0)

extern void http_init(void);
extern void http_start(Attempt *attempt, dlist_head *done);
extern bool http_wait(long max_wait_ms, dlist_head *done);
extern int	http_in_flight(void);

#endif							/* WEBHOOK_HTTP_H */
