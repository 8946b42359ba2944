/*-------------------------------------------------------------------------
 *
 * order.h
 *	  Which of the events an ordered hook's claim read from its log go,
 *	  wait, or are left for a later claim (order.c).
 *
 * IDENTIFICATION
 *	  src/order.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ORDER_H
#define WEBHOOK_ORDER_H

#include "attempt.h"

/*
 * A group of an ordered hook of which the worker holds a request read from
 * the log (worker.c).
 */
typedef struct HeldGroup
{
	int64		hook_id;
	const char *key;			/* NULL: the group of no key */
	bool		held_long;		/* in flight for long */
} HeldGroup;

extern void order_reads(Attempt **reqs, int n, const HeldGroup *groups, int n_groups);

#endif							/* WEBHOOK_ORDER_H */
