/*-------------------------------------------------------------------------
 *
 * housekeeping.h
 *	  The worker's periodic chores besides delivery (housekeeping.c):
 *	  disabling hooks whose deliveries all die, pruning old deliveries,
 *	  and rotating the event and attempt logs.
 *
 * IDENTIFICATION
 *	  src/housekeeping.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_HOUSEKEEPING_H
#define WEBHOOK_HOUSEKEEPING_H

#include "datatype/timestamp.h"

/* rows of the queue's history looked at by one pruning batch */
#define PRUNE_BATCH_ROWS 5000
/* events moved out of a log slot by one step of its emptying, at most */
#define PRUNE_MOVED_EVENTS 1000

/* What one pruning batch did. */
typedef struct PruneBatch
{
	int64		last_id;		/* the highest id it looked at */
	int64		deleted;		/* rows it deleted */
	bool		done;			/* it reached the end, or rows newer than the bound */
} PruneBatch;

extern int	housekeeping_disable_failing_hooks(const Interval *disable_after,
											   int index, int n_workers);
extern int	housekeeping_rotate_logs(const Interval *retention, int worker,
									 int only_slot);
extern void housekeeping_prune_deliveries(const Interval *retention, int64 after_id,
										  PruneBatch *batch);
extern int64 interval_ms(const Interval *span);

#endif							/* WEBHOOK_HOUSEKEEPING_H */
