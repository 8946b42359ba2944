/*-------------------------------------------------------------------------
 *
 * http.h
 *	  One HTTP request of a delivery, and the libcurl multi driver.
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_HTTP_H
#define WEBHOOK_HTTP_H

#include <curl/curl.h>

#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

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

/*
 * Everything about one attempt.  Allocated in its own memory context (cxt),
 * which http_request_free() deletes with the curl handle and header list.
 */
typedef struct HttpRequest
{
	dlist_node	node;
	MemoryContext cxt;

	/* what to send, from the claimed delivery (queue.c) */
	int64		delivery_id;
	int32		attempt_no;
	int64		transport_id;
	int32		transport_max_in_flight;
	char	   *url;			/* base_url, path and ?key= */
	char	   *log_url;		/* url with the key masked, as recorded */
	char	   *body;
	char	   *msg_id;			/* the event's uid: webhook-id */
	char	   *signature;		/* scheme */
	char	   *secret;
	char	   *signature_header;
	List	   *headers;		/* static "Name: value" strings */
	char	   *auth_type;		/* NULL, "basic" or "bearer" */
	char	   *auth_user;
	char	   *auth_secret;	/* password or token */
	long		connect_timeout_ms;
	long		timeout_ms;
	bool		tls_verify;
	char	   *ca_file;
	char	   *client_cert_file;
	char	   *client_key_file;
	char	   *client_key_password;

	/* while in flight (http.c) */
	CURL	   *easy;
	struct curl_slist *header_list;
	char		errbuf[CURL_ERROR_SIZE];
	char		denied[HTTP_DENIED_LEN];	/* why webhook.deny_networks refused */

	/* the outcome */
	TimestampTz started_at;
	double		duration_ms;
	int32		status;			/* 0 when no response */
	char	   *error;			/* NULL, or why there was no response */
	double		retry_after;	/* seconds asked by Retry-After, or -1 */
	StringInfoData response_body;	/* first webhook.max_response_bytes */
	StringInfoData response_headers;	/* a JSON object, lower-case names */
} HttpRequest;

extern void http_init(void);
extern HttpRequest *http_request_new(MemoryContext parent);
extern void http_start(HttpRequest *req, dlist_head *done);
extern bool http_wait(long max_wait_ms, dlist_head *done);
extern int	http_in_flight(void);
extern void http_request_free(HttpRequest *req);

#endif							/* WEBHOOK_HTTP_H */
