/*-------------------------------------------------------------------------
 *
 * http.h
 *	  Sending attempts with the libcurl multi driver, and register()'s
 *	  HEAD check (http.c).  No curl type leaves http.c.
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_HTTP_H
#define WEBHOOK_HTTP_H

#include "attempt.h"
#include "lib/ilist.h"
#include "transport.h"

/*
 * Where a request goes and how it checks the receiver: a transport's
 * settings.  The rest of the request policy (http and https only, no
 * redirects, no proxy, the address policy) is http.c's, the same for every
 * request.
 */
typedef struct HttpTarget
{
	const char *url;
	long		connect_timeout_ms; /* 0: curl's default */
	long		timeout_ms;
	bool		tls_verify;
	const char *ca_file;
	const char *client_cert_file;
	const char *client_key_file;
	const char *client_key_password;
} HttpTarget;

extern void http_init(void);
extern void http_keep_connections(void);
extern void http_start(Attempt *attempt, dlist_head *done);
extern bool http_wait(long max_wait_ms, dlist_head *done);
extern int	http_in_flight(void);
extern void http_end_early(Attempt *attempt, const char *why, dlist_head *done);
extern int	http_head(const HttpTarget *target);
extern bool http_close_idle(TransportConnections *connections, TimestampTz now);

#endif							/* WEBHOOK_HTTP_H */
