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

extern uint64 queue_recover(void);
extern int	queue_claim(int limit, int nbusy, Datum *busy_transports,
						Datum *busy_counts, MemoryContext parent,
						dlist_head *claimed);
extern TimestampTz queue_record(Attempt **reqs, int n);
extern void queue_record_failure(Attempt *req, const char *why);

#endif							/* WEBHOOK_QUEUE_H */
