/*-------------------------------------------------------------------------
 *
 * claim_policy.h
 *	  Which of the hooks the worker lists a claim of their logs reads, and
 *	  how many events each may take (claim_policy.c).
 *
 * IDENTIFICATION
 *	  src/claim_policy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_CLAIM_POLICY_H
#define WEBHOOK_CLAIM_POLICY_H

#include "log_claim.h"
#include "queue.h"

/*
 * Between full looks, a claim reads no more tenants with a backlog than
 * would each be taken this many events (queue.c's HOOKS_READ says why).
 */
#define READ_AT_LEAST 4

/*
 * A hook the worker lists, of a claim of their logs: what the policy needs
 * of its row (queue.c), in the worker's order (its turn), and what the
 * policy makes of it.
 */
typedef struct ListedHook
{
	int64		transport_id;
	char	   *tenant;
	int32		max_in_flight;	/* its transport's */
	double		max_per_second; /* its transport's, or 0 for none */
	bool		read_short;		/* its last read stopped short of its log's
								 * end */
	int64		room;			/* its transport's room (set by the policy) */
	int64		tenant_room;	/* its tenant's, in requests ... */
	int64		tenant_bytes;	/* ... and in bytes of bodies */
	bool		read;			/* the claim reads it */
} ListedHook;

extern int	claim_policy_read(ListedHook *hooks, int n, const QueueHeld *held, int limit);
extern void claim_policy_takes(LogReader *readers, int n, int limit);

#endif							/* WEBHOOK_CLAIM_POLICY_H */
