/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The delivery queue as the worker sees it (queue.c).
 *
 * IDENTIFICATION
 *	  src/queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_QUEUE_H
#define WEBHOOK_QUEUE_H

#include "attempt.h"
#include "lib/ilist.h"

/*
 * The worker holds (claims and has not yet recorded) up to this many times
 * max_in_flight, per transport and in all: the attempts beyond those in
 * flight wait in memory, ready to start as soon as a slot frees.
 */
#define QUEUE_HOLD_FACTOR 2

/* What the worker holds, for queue_claim(), which skips it. */
typedef struct QueueHeld
{
	int			n_transports;
	Datum	   *transport_ids;	/* int8 */
	Datum	   *counts;			/* int4: attempts held for each */
	int			n_deliveries;
	Datum	   *delivery_ids;	/* int8 */
} QueueHeld;

extern void queue_set_partition(int index, int n_workers);
extern int	queue_claim(int limit, const QueueHeld *held, MemoryContext parent,
						dlist_head *claimed);
extern TimestampTz queue_record(Attempt **reqs, int n, Datum *sent_ids, int n_sent);
extern void queue_record_failure(Attempt *req, const char *why);
extern void queue_expire_secrets(void);
extern Attempt *queue_preview(int64 hook_id, int64 event_id, MemoryContext parent);

#endif							/* WEBHOOK_QUEUE_H */
