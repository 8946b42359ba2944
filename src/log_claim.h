/*-------------------------------------------------------------------------
 *
 * log_claim.h
 *	  The claim of the logs of the hooks the worker lists, event by event
 *	  in C (log_claim.c), its hooks chosen by its policy (claim_policy.c).
 *
 * IDENTIFICATION
 *	  src/log_claim.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_LOG_CLAIM_H
#define WEBHOOK_LOG_CLAIM_H

#include "cursor.h"

/*
 * A hook the claim reads, as its policy chose it (claim_policy.c): its
 * tenant and transport, how many events it may take, and its position
 * (held by the worker, or stored).
 */
typedef struct LogReader
{
	int64		hook_id;
	int64		transport_id;
	char	   *tenant;
	int			tenant_no;		/* its tenant's number among the readers',
								 * from 1 */
	Datum		tenant_text;	/* (log_claim.c's) */
	int64		room;			/* what the worker may still hold of its
								 * transport */
	int64		take;			/* the most events it takes */
	char	   *lo;				/* its position, held or stored (cursor.h) ... */
	char	   *hi;
	uint64		last_txid;		/* ... 0 and 0 when it read all there was */
	int64		last_id;
	int64		top_id;
	int64		tenant_room;	/* requests the worker may still hold of its
								 * tenant ... */
	int64		tenant_bytes;	/* ... and bytes of bodies */
	char	   *payload_format;
	char	   *uid;
	bool		transform;		/* it has one: its requests get the event's
								 * row, not a body */
} LogReader;

/* An event the claim takes for a reader: a request to make. */
typedef struct LogTaken
{
	int			reader;			/* its index in the readers */
	int64		event_id;
	int64		rank;			/* in its reader's read, from 1 */
	int64		size;			/* as stored */
	bool		fits;			/* as stored and as a body, within
								 * webhook.max_body_bytes */
	char	   *msg_id;			/* the event's uid */
	char	   *body;			/* rendered, when it fits ... */
	Datum		event;			/* ... or its row, for a transform */
	LogPosition to;				/* where its reader's cursor is after it */
} LogTaken;

typedef struct LogClaim LogClaim;

extern LogClaim *log_claim_open(void);
extern int	log_claim_read(LogClaim *c, LogReader *readers, int n_readers, int limit);
extern void log_claim_take(LogClaim *c, int i, LogTaken *t, MemoryContext cxt);
extern void log_claim_end(LogClaim *c);

#endif							/* WEBHOOK_LOG_CLAIM_H */
