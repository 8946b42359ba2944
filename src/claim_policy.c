/*-------------------------------------------------------------------------
 *
 * claim_policy.c
 *	  The policy of the commonest claim, in C: which of the hooks the worker
 *	  lists are read, and how many events each may take.
 *
 * A claim of listed logs (queue.c's claim_listed_logs(), log_claim.c) reads
 * the logs of the unordered hooks the worker lists, between full looks.
 * Which of them it reads is the claim's policy, the same as the claim's
 * statement keeps at a full look (queue.c: HOOKS_READ and TAKE, whose
 * comments say why each rule is there; a change to one is a change to the
 * other):
 *	1. each hook's transport's room, and its tenant's rooms in requests and
 *	   bytes: a hook with no room in any one of them is not read
 *	   (room_of());
 *	2. no more of a transport's hooks than its room, in the worker's order
 *	   (the hooks' turns);
 *	3. no more tenants with a backlog than would each be taken
 *	   READ_AT_LEAST events, the first in turn; the others whatever their
 *	   number;
 *	4. no more of a tenant's hooks than its share of the claim's limit
 *	   among the tenants left (claim_policy_read());
 *	5. how many events each hook read takes: its share of its tenant's
 *	   share, among the tenants with a backlog when it has one
 *	   (claim_policy_takes()).
 * The fair-share tests hold both to the same rules: test_fairness.py with
 * this policy between full looks, test_fairness_sql.py with every claim by
 * statement (webhook.debug_sql_claims).
 * Done by a statement of its own, with its windows and sorts over the
 * listed hooks, it cost a claim more to start than to run (perf: about a
 * fifteenth of the worker's time at full rate).
 *
 * Nothing here reads the catalog: the hooks come with what the policy
 * needs (queue.c reads them), and the worker's holdings with the claim
 * (QueueHeld).  Tenants are compared as strings: their text's bytes.
 *
 * IDENTIFICATION
 *	  src/claim_policy.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <math.h>

#include "claim_policy.h"
#include "utils/builtins.h"

/* the worker's tenants (held->tenants) as strings, sorted, for bsearch() */
typedef struct HeldTenant
{
	const char *name;
	int			at;				/* its place in held->tenants */
} HeldTenant;

/* a group of hooks by a key of theirs (their transport, their tenant) */
typedef int (*GroupKeyCmp) (const ListedHook *x, const ListedHook *y);

typedef struct GroupSort
{
	const ListedHook *hooks;
	GroupKeyCmp key;
} GroupSort;

static int
cmp_transport(const ListedHook *x, const ListedHook *y)
{
	return (x->transport_id > y->transport_id) - (x->transport_id < y->transport_id);
}

static int
cmp_tenant(const ListedHook *x, const ListedHook *y)
{
	return strcmp(x->tenant, y->tenant);
}

/* qsort_arg() comparator of hooks' indexes: by their key, then in turn */
static int
cmp_key_turn(const void *a, const void *b, void *arg)
{
	const GroupSort *s = (const GroupSort *) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;
	int			c = s->key(&s->hooks[x], &s->hooks[y]);

	return c != 0 ? c : (x > y) - (x < y);
}

/*
 * The n hooks of idx (indexes into hooks, a turn each) in groups by key:
 * each one's turn in its group, from 1, and its group's number, from 0, in
 * turn[] and group[] (by index into hooks).  Returns the number of groups.
 * idx is left sorted by group, then turn.
 */
static int
number_in_groups(const ListedHook *hooks, int *idx, int n, GroupKeyCmp key,
				 int *turn, int *group)
{
	GroupSort	s = {hooks, key};
	int			n_groups = 0;
	int			i;

	qsort_arg(idx, n, sizeof(int), cmp_key_turn, &s);
	for (i = 0; i < n; i++)
	{
		bool		same = i > 0 && key(&hooks[idx[i]], &hooks[idx[i - 1]]) == 0;

		if (!same)
			n_groups++;
		turn[idx[i]] = same ? turn[idx[i - 1]] + 1 : 1;
		group[idx[i]] = n_groups - 1;
	}
	return n_groups;
}

/* qsort_arg() comparator of readers' indexes: by tenant, then index */
static int
cmp_reader_tenant(const void *a, const void *b, void *arg)
{
	const LogReader *readers = (const LogReader *) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;
	int			c = strcmp(readers[x].tenant, readers[y].tenant);

	return c != 0 ? c : (x > y) - (x < y);
}

static int
cmp_held_tenant(const void *a, const void *b)
{
	return strcmp(((const HeldTenant *) a)->name, ((const HeldTenant *) b)->name);
}

/* The worker's tenants, sorted by name. */
static HeldTenant *
held_tenants(const QueueHeld *held)
{
	HeldTenant *tenants = palloc(sizeof(HeldTenant) * Max(held->n_tenants, 1));
	int			i;

	for (i = 0; i < held->n_tenants; i++)
	{
		tenants[i].name = TextDatumGetCString(held->tenants[i]);
		tenants[i].at = i;
	}
	qsort(tenants, held->n_tenants, sizeof(HeldTenant), cmp_held_tenant);
	return tenants;
}

/*
 * Step 1: the room of h's transport (HOOKS_WITH_ROOM): none while it is
 * stalled at its max_per_second, else what the worker may hold of it
 * (QUEUE_HOLD_FACTOR times its max_in_flight, no more than its
 * max_per_second) less what it holds; and its tenant's rooms, the worker's
 * for a tenant it holds requests of, else a new tenant's.
 */
static void
room_of(ListedHook *h, const QueueHeld *held, const HeldTenant *tenants)
{
	int64		most = QUEUE_HOLD_FACTOR * (int64) h->max_in_flight;
	int64		busy = 0;
	HeldTenant	key = {h->tenant, 0};
	HeldTenant *tenant;
	int			i;

	h->room = -1;
	for (i = 0; i < held->n_stalled && h->room < 0; i++)
		if (DatumGetInt64(held->stalled_ids[i]) == h->transport_id &&
			h->max_per_second > 0 &&
			DatumGetFloat8(held->stalled_limits[i]) == h->max_per_second)
			h->room = 0;
	if (h->room < 0)
	{
		if (h->max_per_second > 0)
			most = Min(most, (int64) ceil(h->max_per_second));
		for (i = 0; i < held->n_transports; i++)
			if (DatumGetInt64(held->transport_ids[i]) == h->transport_id)
				busy = DatumGetInt32(held->counts[i]);
		h->room = Max(most - busy, 0);
	}

	tenant = bsearch(&key, tenants, held->n_tenants, sizeof(HeldTenant), cmp_held_tenant);
	h->tenant_room = tenant ? DatumGetInt32(held->tenant_rooms[tenant->at])
		: held->new_tenant_room;
	h->tenant_bytes = tenant ? DatumGetInt64(held->tenant_bytes[tenant->at])
		: held->new_tenant_bytes;
}

/*
 * Which of the n hooks (the worker's list, in turn) a claim of limit
 * requests reads (their read): steps 1 to 4.  Returns how many of them had
 * room (hooks_listed): more than it reads means it left some out.
 */
int
claim_policy_read(ListedHook *hooks, int n, const QueueHeld *held, int limit)
{
	HeldTenant *tenants = held_tenants(held);
	int		   *idx = palloc(sizeof(int) * Max(n, 1));
	int		   *turn = palloc(sizeof(int) * Max(n, 1));
	int		   *group = palloc(sizeof(int) * Max(n, 1));
	int		   *first_of;		/* the group a hook is the first of, or -1 */
	bool	   *backlog;
	bool	   *kept;
	int			n_with_room = 0;
	int			n_kept = 0;
	int			n_groups;
	int			n_backlogs = 0;
	int			n_tenants = 0;
	int			i;

	/* step 1: those with room */
	for (i = 0; i < n; i++)
	{
		room_of(&hooks[i], held, tenants);
		hooks[i].read = false;
		if (hooks[i].room > 0 && hooks[i].tenant_room > 0 && hooks[i].tenant_bytes > 0)
			idx[n_with_room++] = i;
	}

	/* step 2: no more of a transport's than its room, in turn */
	(void) number_in_groups(hooks, idx, n_with_room, cmp_transport, turn, group);
	for (i = 0; i < n_with_room; i++)
		if (turn[idx[i]] <= hooks[idx[i]].room)
			idx[n_kept++] = idx[i];

	/*
	 * step 3: of the tenants with a backlog (a hook read short), the first
	 * ceil(limit / READ_AT_LEAST) in turn (their first hook's)
	 */
	n_groups = number_in_groups(hooks, idx, n_kept, cmp_tenant, turn, group);
	first_of = palloc(sizeof(int) * Max(n, 1));
	backlog = palloc0(sizeof(bool) * Max(n_groups, 1));
	kept = palloc0(sizeof(bool) * Max(n_groups, 1));
	for (i = 0; i < n; i++)
		first_of[i] = -1;
	for (i = 0; i < n_kept; i++)
	{
		if (turn[idx[i]] == 1)
			first_of[idx[i]] = group[idx[i]];
		backlog[group[idx[i]]] |= hooks[idx[i]].read_short;
	}
	for (i = 0; i < n; i++)
	{
		int			g = first_of[i];

		if (g < 0)
			continue;
		kept[g] = !backlog[g] ||
			++n_backlogs <= (int) ceil((double) limit / READ_AT_LEAST);
		n_tenants += kept[g];
	}

	/* step 4: no more of a tenant's hooks than its share of the limit */
	for (i = 0; i < n_kept; i++)
		hooks[idx[i]].read = kept[group[idx[i]]] &&
			turn[idx[i]] <= (int) ceil((double) limit / n_tenants);
	return n_with_room;
}

/*
 * Step 5: how many events each of the n readers (the hooks read, at their
 * positions) takes (TAKE): its tenant's share of the claim's limit among
 * the tenants read, split among its tenant's hooks read; for one whose
 * last read stopped short (it names an event), among the tenants with
 * such hooks, split among its tenant's; no more than its transport's room.
 * And each reader's tenant's number, from 1.
 */
void
claim_policy_takes(LogReader *readers, int n, int limit)
{
	int		   *order = palloc(sizeof(int) * Max(n, 1));
	int		   *n_hooks = palloc0(sizeof(int) * (n + 1));
	int		   *n_short = palloc0(sizeof(int) * (n + 1));
	int			n_tenants = 0;
	int			n_backlogs = 0;
	int			i;

	/* the readers' tenants numbered, in the order of their names */
	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_arg(order, n, sizeof(int), cmp_reader_tenant, readers);
	for (i = 0; i < n; i++)
	{
		LogReader  *r = &readers[order[i]];

		if (i == 0 || strcmp(r->tenant, readers[order[i - 1]].tenant) != 0)
			n_tenants++;
		r->tenant_no = n_tenants;
		n_hooks[r->tenant_no]++;
		if (r->last_txid != 0 && n_short[r->tenant_no]++ == 0)
			n_backlogs++;
	}

	for (i = 0; i < n; i++)
	{
		LogReader  *r = &readers[i];
		double		share;

		if (r->last_txid != 0)
			share = ceil(ceil((double) limit / n_backlogs) / n_short[r->tenant_no]);
		else
			share = ceil((double) limit / n_hooks[r->tenant_no]);
		r->take = Min(r->room, (int64) share);
	}
}
