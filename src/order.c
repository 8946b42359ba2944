/*-------------------------------------------------------------------------
 *
 * order.c
 *	  Which of the events an ordered hook's claim read from its log go,
 *	  wait, or are left for a later claim.
 *
 * An ordered hook (ordered = 'hook' or 'resource') sends the events of a
 * group (its resource's key, or the hook's group of no key) one at a time,
 * in event id order.  A claim reads each hook's log in that order and says
 * of each event of an ordered hook its group and whether it must wait
 * (queue.c, FRESH_IN_ORDER): behind an unfinished delivery row of its
 * group, or behind an earlier event of its group not read yet; it has cut
 * the read already before an event that does not wait by itself of a
 * group read before it.  Here the events of each group are taken in order:
 *	- an event waits when it must, or an event of its group read before it
 *	  does, or the worker holds a request of its group that has been in
 *	  flight for long: it is handed over unsent (worker.c), to become a
 *	  pending row that a later claim sends once the events before it are
 *	  done; so a group held up never holds up the hook's others;
 *	- the hook's read stops before an event of a group of which the worker
 *	  holds a request, or of which an earlier event is taken by the same
 *	  claim: it must wait for that one's outcome, which a row would not
 *	  tell, and is read again by the first claim after that outcome is
 *	  recorded.  The first event read never stops but for a held group: the
 *	  read always moves on;
 *	- any other is sent.
 * What the read stops before is let go: the hook's cursor goes past the
 * last one kept once they are all recorded (cursor.c), and passes nothing
 * the worker did not keep.
 *
 * This used to be window functions in the claim, over its events and the
 * groups held sorted together: a quarter of a millisecond a claim, a tenth
 * of the worker's time delivering to an ordered hook.
 *
 * IDENTIFICATION
 *	  src/order.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "cursor.h"
#include "order.h"

/* Compare two groups' keys, the group of no key first. */
static int
key_cmp(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

/* qsort() and bsearch() comparator of HeldGroups: by hook, then key */
static int
held_group_cmp(const void *a, const void *b)
{
	const HeldGroup *x = a;
	const HeldGroup *y = b;

	if (x->hook_id != y->hook_id)
		return x->hook_id < y->hook_id ? -1 : 1;
	return key_cmp(x->key, y->key);
}

/* Compare two reads: by hook, then (by_group) group, then rank. */
static int
read_cmp(const Attempt *x, const Attempt *y, bool by_group)
{
	int			c;

	if (x->hook_id != y->hook_id)
		return x->hook_id < y->hook_id ? -1 : 1;
	if (by_group && (c = key_cmp(x->group_key, y->group_key)) != 0)
		return c;
	if (x->read->rank != y->read->rank)
		return x->read->rank < y->read->rank ? -1 : 1;
	return 0;
}

/* qsort_arg() comparators of indexes into the requests (arg) */
static int
read_group_cmp(const void *a, const void *b, void *arg)
{
	Attempt   **reads = arg;

	return read_cmp(reads[*(const int *) a], reads[*(const int *) b], true);
}

static int
read_rank_cmp(const void *a, const void *b, void *arg)
{
	Attempt   **reads = arg;

	return read_cmp(reads[*(const int *) a], reads[*(const int *) b], false);
}

/*
 * A sorted copy of the n groups held, one entry per group, held long when
 * any of its requests is; sets *n to their number.
 */
static HeldGroup *
sorted_groups(const HeldGroup *groups, int *n)
{
	HeldGroup  *sorted = palloc(sizeof(HeldGroup) * Max(*n, 1));
	int			kept = 0;
	int			i;

	if (*n > 0)
		memcpy(sorted, groups, sizeof(HeldGroup) * *n);
	qsort(sorted, *n, sizeof(HeldGroup), held_group_cmp);
	for (i = 0; i < *n; i++)
	{
		if (kept > 0 && held_group_cmp(&sorted[kept - 1], &sorted[i]) == 0)
			sorted[kept - 1].held_long |= sorted[i].held_long;
		else
			sorted[kept++] = sorted[i];
	}
	*n = kept;
	return sorted;
}

/*
 * Take in order (the file's comment) the requests of reqs, the n requests
 * of one claim, each on a list, that were read from the logs of ordered
 * hooks, given the n_groups groups held.  Sets waits on those that wait;
 * takes those the reads stop before off their list and frees them.
 */
void
order_reads(Attempt **reqs, int n, const HeldGroup *groups, int n_groups)
{
	int		   *idx = palloc(sizeof(int) * Max(n, 1));
	bool	   *stops;
	HeldGroup  *held;
	int			n_reads = 0;
	int			i;
	int			j;
	int			end;

	for (i = 0; i < n; i++)
		if (reqs[i]->read != NULL && reqs[i]->in_order)
			idx[n_reads++] = i;
	if (n_reads == 0)
	{
		pfree(idx);
		return;					/* no ordered hook's */
	}
	stops = palloc0(sizeof(bool) * n);
	held = sorted_groups(groups, &n_groups);

	/* each group of an ordered hook's, in order: what waits, what stops */
	qsort_arg(idx, n_reads, sizeof(int), read_group_cmp, reqs);
	for (i = 0; i < n_reads; i = end)
	{
		Attempt    *first = reqs[idx[i]];
		HeldGroup	key = {first->hook_id, first->group_key, false};
		HeldGroup  *of_group;
		bool		waits;

		for (end = i + 1; end < n_reads; end++)
			if (reqs[idx[end]]->hook_id != first->hook_id ||
				key_cmp(reqs[idx[end]]->group_key, first->group_key) != 0)
				break;
		of_group = n_groups > 0
			? bsearch(&key, held, n_groups, sizeof(HeldGroup), held_group_cmp)
			: NULL;
		waits = of_group != NULL && of_group->held_long;
		for (j = i; j < end; j++)
		{
			Attempt    *req = reqs[idx[j]];

			waits = waits || req->waits;
			req->waits = waits;
			stops[idx[j]] = !waits && (of_group != NULL || j > i);
		}
	}

	/* each hook's read, in order: what comes from where it stops goes */
	qsort_arg(idx, n_reads, sizeof(int), read_rank_cmp, reqs);
	for (i = 0; i < n_reads; i = end)
	{
		int64		hook_id = reqs[idx[i]]->hook_id;
		bool		stopped = false;

		for (end = i; end < n_reads && reqs[idx[end]]->hook_id == hook_id; end++)
		{
			stopped = stopped || stops[idx[end]];
			if (stopped)
			{
				dlist_delete(&reqs[idx[end]]->node);
				attempt_free(reqs[idx[end]]);
			}
		}
	}
	pfree(idx);
	pfree(stops);
	pfree(held);
}
