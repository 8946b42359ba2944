/*-------------------------------------------------------------------------
 *
 * hook_counters.h
 *	  Adding a batch of first attempts that succeeded to their hooks'
 *	  counters without a statement (hook_counters.c).
 *
 * IDENTIFICATION
 *	  src/hook_counters.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_HOOK_COUNTERS_H
#define WEBHOOK_HOOK_COUNTERS_H

extern bool hook_counters_add(int n, const int64 *hook_ids, const int64 *successes,
							  const double *duration_sums, const int64 *buckets,
							  int n_buckets, bool *exists, int *slot);

#endif							/* WEBHOOK_HOOK_COUNTERS_H */
