/*-------------------------------------------------------------------------
 *
 * attempt.h
 *	  One attempt of a delivery: what to send, and what came back.
 *
 * This is where the SQL side (queue.c fills and records attempts) and the
 * network side (http.c sends them) meet; it knows nothing of curl.
 *
 * IDENTIFICATION
 *	  src/attempt.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ATTEMPT_H
#define WEBHOOK_ATTEMPT_H

#include "lib/ilist.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/timestamp.h"

/*
 * Everything about one attempt, in its own memory context (cxt), which
 * attempt_free() deletes.
 */
typedef struct Attempt
{
	dlist_node	node;			/* on a list of the worker's or http.c's */
	dlist_node	held_node;		/* on the worker's list of what it holds */
	MemoryContext cxt;

	/* what to send, from the claimed delivery (queue.c) */
	int64		delivery_id;	/* 0: read from the log, no row yet */
	int64		event_id;
	int64		hook_id;
	struct LogRead *read;		/* when read from the log (cursor.h) */
	int32		attempt_no;
	int64		transport_id;
	struct Transport *transport;	/* the worker's entry of it (transport.c),
									 * set when the worker holds the attempt */
	int32		transport_max_in_flight;
	double		transport_max_per_second;	/* 0: no limit */
	char	   *url;			/* base_url, path and ?key= */
	char	   *log_url;		/* url with the key masked, as recorded */
	char	   *body;
	size_t		body_len;		/* strlen(body), or 0 */
	char	   *msg_id;			/* the event's uid: webhook-id */
	char	   *signature;		/* scheme */
	char	   *secret;
	char	   *previous_secret;	/* NULL, or the one a rotation replaced,
									 * while its overlap runs */
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
	Oid			transform;		/* InvalidOid, or the function that makes
								 * body from event (transform.c) ... */
	Oid			transform_role; /* ... run as this role */
	Datum		event;			/* the webhook.event row, for transform */
	char	   *tenant;			/* its transport's */
	int64		event_bytes;	/* the event's stored size; -1 in a preview */
	bool		fits;			/* within webhook.max_body_bytes, as stored
								 * and as its body will be */
	bool		final;			/* its failure is its delivery's death */
	bool		in_order;		/* read from the log of an ordered hook: one
								 * of its group at a time (queue.c) ... */
	char	   *group_key;		/* ... its group: its resource's key, or NULL
								 * for the group of no key */
	bool		waits;			/* ... behind an unfinished delivery of its
								 * group: handed over unsent (worker.c) */
	bool		being_recorded; /* finished, its outcome recorded by the
								 * worker's current exchange (worker.c) */
	TimestampTz floor_at;		/* when the claim took it, the due time it
								 * had, for its hook's floor (queue.c); 0
								 * for an ordered hook's, and in a preview */
	TimestampTz claimed_at;		/* when the worker claimed it (worker.c) */
	struct HttpTransfer *transfer;	/* while it is in flight (http.c) */

	/* the outcome (http.c) */
	TimestampTz started_at;
	double		duration_ms;
	int32		status;			/* 0 when no response */
	char	   *error;			/* NULL, or why there was no response */
	bool		timed_out;		/* no response in time */
	bool		ended_early;	/* ended in flight for another tenant's
								 * slot (worker.c): never its delivery's
								 * death, nor a step of its schedule
								 * (queue.c's record) */
	double		retry_after;	/* seconds asked by Retry-After, or -1 */
	StringInfoData response_body;	/* first webhook.max_response_bytes */
	StringInfoData response_headers;	/* each header's lower-case name and
										 * value, each ended by a NUL byte */
} Attempt;

extern Attempt *attempt_new(MemoryContext parent);
extern void attempt_free(Attempt *attempt);
extern void attempt_set_urls(Attempt *attempt, const char *url, const char *query_key);
extern List *attempt_header_lines(Attempt *attempt, int64 timestamp);
extern Datum attempt_response_headers(const Attempt *attempt);

#endif							/* WEBHOOK_ATTEMPT_H */
