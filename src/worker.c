/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The delivery worker: one loop that claims due deliveries, sends them
 *	  concurrently, and records their attempts.
 *
 * There are webhook.workers of them; each serves its share of the
 * transports (queue_set_partition), so that a transport's deliveries, and
 * its max_in_flight, are one worker's alone and no delivery is claimed by
 * two.
 *
 * The loop (webhook_worker_main), every turn, one named step after another:
 *	1. reload_configuration(): after a SIGHUP;
 *	2. record_and_claim(): in one short transaction, record the attempts
 *	   that finished and claim due deliveries within what it may hold, if
 *	   woken (a committed transaction enqueued work), if room that work
 *	   may wait for was just freed, if the last claim was full, read a
 *	   hook short of its log or left hooks out (a backlog: its claims
 *	   wait until no more is held than half what may be in flight,
 *	   BATCH_WAIT_MS at most),
 *	   when a retry it scheduled comes due, or once a second (retries
 *	   others made due: a restarted worker's, say); finished attempts
 *	   wait for the next claim, at most RECORD_DELAY_MS;
 *	3. start_waiting(): start the claimed requests their transports have
 *	   room for, and whose rates allow (ratelimit.c), and publish in shared
 *	   memory how many requests it has in flight and how many it holds
 *	   (webhook.metrics());
 *	4. do_chores(): once a second, in a transaction of its own, drop the
 *	   previous secrets of its hooks whose rotation overlap is over, and,
 *	   in the first worker, adopt the log's cursors a restore brought
 *	   (queue.c); less
 *	   often, each in short transactions of their own too (housekeeping.c),
 *	   disable its hooks whose deliveries have all died for
 *	   webhook.disable_after, and, in the first worker, prune the
 *	   deliveries older than webhook.retention, a batch per turn, then
 *	   rotate the event and attempt logs; forget the transports idle for long (transport.c);
 *	5. wait_for_work(): wait on the latch and curl's sockets together
 *	   (http.c) until something is due.
 * What the worker knows of each transport (what it holds, its rate, its
 * connections) is one entry per transport (transport.c).
 * No transaction is ever open while we wait on the network.
 *
 * An attempt is "held" by the worker from its claim until it is recorded.
 * A claim writes nothing (queue.c): what is held is known to this process
 * alone, and the next claim is told to skip it.  The worker holds up to
 * QUEUE_HOLD_FACTOR times webhook.max_in_flight, and as many times each
 * transport's max_in_flight; a transport never has more than its
 * max_in_flight requests in flight, nor starts them faster than its rate:
 * the others wait, ready to start, and the wait ends when the next may.
 * Tenants share the worker (tenant_share()): while others hold requests,
 * none holds or sends more than its part, and a part is always left for a
 * tenant that holds nothing; what one has in flight beyond its part ends
 * when another needs the slot (end_one_over_share()); what waits long for
 * its rate is not held
 * (STALL_MS); a claim looks only at the hooks that may have work
 * (hooks_to_look_at()), and at ordered hooks only as often as their cost
 * allows (ORDERED_COST_FACTOR).
 *
 * A crash, or an immediate shutdown, leaves what the worker held pending in
 * the queue, including the attempts that finished and were not recorded yet
 * (up to RECORD_DELAY_MS of them): the next worker sends it again, so
 * delivery is at least once.
 * The worker's own commits are asynchronous: losing one in a crash only
 * means a delivery is sent again, never that one is lost.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "attempt.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "common/pg_prng.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "housekeeping.h"
#include "http.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "queue.h"
#include "ratelimit.h"
#include "spi_util.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "top_array.h"
#include "transform.h"
#include "transport.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* how often due retries are looked for without a wake-up */
#define POLL_INTERVAL_MS 1000

/*
 * Requests the worker holds for one tenant: what its share is measured
 * against (tenant_share()).
 */
typedef struct TenantLoad
{
	char	   *tenant;
	int			held;
	int			in_flight;
	int64		bytes;			/* of the bodies held */
} TenantLoad;

static TenantLoad *tenant_loads = NULL;
static int	n_tenant_loads = 0;
static int	max_tenant_loads = 0;
/* the part of the worker's capacity no tenant may take (tenant_share()) */
#define TENANT_RESERVE 8

/*
 * A claim for ordered hooks can be costly (queue.c): for a hook ordered by
 * resource with deliveries waiting as rows (behind retries) it walks a few
 * hundred of them, about a millisecond, or makes a descent per resource (a
 * hook ordered whole: one descent); that costs every claim, and so every
 * other hook's latency.  So
 * ordered hooks are claimed for only once this many times the last such
 * claim's cost beyond ORDERED_FREE_MS has passed (never more than
 * ORDERED_MAX_WAIT_MS): what they cost beyond that is at most about a
 * fifth of the worker's time, whatever their backlog.  The first
 * ORDERED_FREE_MS of a claim are no reason to wait: an ordered group's
 * next delivery goes only once the one before it is recorded, so a wait
 * after each claim would be the pace of every group.
 */
#define ORDERED_COST_FACTOR 4
#define ORDERED_FREE_MS 3
#define ORDERED_MAX_WAIT_MS 10000
static TimestampTz ordered_claim_at = 0;
static bool ordered_waiting = false;	/* a claim left them out */
/*
 * Whether any hook is ordered (read again after each change to hooks):
 * while none is, only a claim that reads due deliveries reads the ordered
 * hooks too (a full look, or one after news of deliveries made), whose
 * plan a claim would start for nothing (queue.c); the others read the
 * unordered hooks' logs only.
 */
static bool ordered_hooks = true;

/*
 * A request whose transport's next token is further off than this is not
 * held meanwhile: it goes back to the queue (start_waiting()).
 */
#define STALL_MS 1500
/*
 * a hook or transport was changed: what the worker holds is looked at (and,
 * at the start, whether hooks are ordered is learnt)
 */
static bool hooks_changed = true;
static Oid	hook_relid = InvalidOid;
static Oid	transport_relid = InvalidOid;

static dlist_head waiting = DLIST_STATIC_INIT(waiting);	/* claimed, not started */
static dlist_head done = DLIST_STATIC_INIT(done);	/* finished, not recorded */
static dlist_head held = DLIST_STATIC_INIT(held);	/* claimed, not recorded */
static dlist_head handed_over = DLIST_STATIC_INIT(handed_over);	/* let go of, read
																 * from the log */
static int	n_waiting = 0;
static int	n_held = 0;
/* how many of done (from its head) no longer count as in flight */
static int	n_released = 0;

/*
 * Finished requests are recorded with the next claim, in one transaction
 * with it (working off a backlog, in one statement), but none waits more
 * than this to be recorded.  (Recording them as they finished took a
 * transaction per handful of answers working off a backlog, and at a
 * request a claim, a transaction that the next claim waited behind.)
 */
#define RECORD_DELAY_MS 20

static MemoryContext request_cxt;
static MemoryContext loop_cxt;

/* which of its database's webhook.workers workers this is, from 0 */
static int	worker_index = 0;
/* its slot in shared memory (shmem.c) */
static int	worker_slot = -1;
/* the extension was dropped: the worker exits */
static bool extension_gone = false;

/* false while the catalog is of another version than the library */
static bool catalog_current = true;

/* when the earliest retry the worker scheduled is due; 0 for none */
static TimestampTz next_retry_at = 0;

/* when expired previous secrets were last dropped */
static TimestampTz last_expiry = 0;

/* when the first worker last looked for cursors to adopt */
static TimestampTz last_adoption = 0;

/* the claims so far (cursor.c tells them apart) */
static uint64 n_claims = 0;

/* the hooks whose stored cursors the exchange moved, if any (-1: none) */
static int64 *moved_hooks = NULL;
static int	n_moved_hooks = -1;

/*
 * The chores of housekeeping.c run every quarter of their setting's
 * interval, but at most once a second and at least once a minute; within a
 * pruning round, batches are PRUNE_PAUSE_MS apart.
 */
#define CHORE_MAX_INTERVAL_MS (60 * 1000)
#define PRUNE_PAUSE_MS 100
/* a step moving a log slot's events is followed by this many times its length */
#define PRUNE_MOVING_SHARE 3

/* when failing hooks were last looked for */
static TimestampTz last_health_check = 0;

/*
 * Where the current pruning round is: walking the deliveries, from which
 * id, or the logs' rotation.
 */
typedef enum PrunePhase
{
	PRUNE_IDLE,					/* between rounds */
	PRUNE_DELIVERIES,			/* deliveries, in batches */
	PRUNE_LOGS					/* then the logs' rotation: a step, more
								 * while a slot's events are moved */
} PrunePhase;

static PrunePhase prune_phase = PRUNE_IDLE;
static int64 prune_after_id = 0;
static int	prune_moving_slot = -1;	/* the log slot whose events are moved */
static TimestampTz next_prune_at = 0;
static TimestampTz prune_started_at = 0;
static int	prune_batches = 0;
static int64 pruned_deliveries = 0;

/*
 * A hook and a time: when its retry is due, or when it was last noted.  A
 * recent hook's also says whether its log may hold more than the worker
 * last read of it (more), as of which claim.
 */
typedef struct HookAt
{
	int64		hook_id;
	TimestampTz at;
	bool		more;
	uint64		more_claim;
} HookAt;

/* the most hooks of a list of them (retry_hooks, recent_hooks) */
#define MAX_HOOKS_AT QUEUE_MAX_HOOKS_LISTED

/*
 * The retries the worker scheduled, by hook: when each hook's earliest is
 * due, for the claim then to look at it (hooks_to_look_at()); at most
 * MAX_HOOKS_AT of them (beyond, a full look finds them, within a second of
 * their time).
 */
static HookAt *retry_hooks = NULL;
static int	n_retry_hooks = 0;

/*
 * The entry of hook_id in *list (of *n entries), added (its time unset) if
 * it is not there; *found says which.  NULL when the list is full.
 */
static HookAt *
hook_at(HookAt **list, int *n, int64 hook_id, bool *found)
{
	int			i;

	for (i = 0; i < *n; i++)
	{
		if ((*list)[i].hook_id == hook_id)
		{
			*found = true;
			return &(*list)[i];
		}
	}
	*found = false;
	if (*list == NULL)
		*list = MemoryContextAlloc(TopMemoryContext, sizeof(HookAt) * MAX_HOOKS_AT);
	if (*n == MAX_HOOKS_AT)
		return NULL;
	(*list)[*n].hook_id = hook_id;
	(*list)[*n].more = true;
	(*list)[*n].more_claim = 0;
	return &(*list)[(*n)++];
}

/* Milliseconds from now until t, rounded up; 0 once it has passed. */
static long
ms_until(TimestampTz t)
{
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(), t);
}

/* Remember a retry due at t (0: none), to claim it on time. */
static void
note_retry(TimestampTz t)
{
	if (t != 0 && (next_retry_at == 0 || t < next_retry_at))
		next_retry_at = t;
}

/* Remember that the hook has a retry due at t. */
static void
note_retry_of_hook(int64 hook_id, TimestampTz t)
{
	bool		found;
	HookAt	   *retry = hook_at(&retry_hooks, &n_retry_hooks, hook_id, &found);

	note_retry(t);
	if (retry != NULL)
		retry->at = found ? Min(retry->at, t) : t;
}

/* The load entry of a tenant, made (or an idle one reused) if needed. */
static TenantLoad *
tenant_load(const char *tenant)
{
	int			i;
	int			free_slot = -1;

	for (i = 0; i < n_tenant_loads; i++)
	{
		if (tenant_loads[i].held > 0 && strcmp(tenant_loads[i].tenant, tenant) == 0)
			return &tenant_loads[i];
		if (tenant_loads[i].held == 0 && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
	{
		tenant_loads = top_array_room(tenant_loads, n_tenant_loads,
									  &max_tenant_loads, sizeof(TenantLoad));
		free_slot = n_tenant_loads++;
		tenant_loads[free_slot].tenant = NULL;
	}
	if (tenant_loads[free_slot].tenant != NULL)
		pfree(tenant_loads[free_slot].tenant);
	tenant_loads[free_slot].tenant = MemoryContextStrdup(TopMemoryContext, tenant);
	tenant_loads[free_slot].held = 0;
	tenant_loads[free_slot].in_flight = 0;
	tenant_loads[free_slot].bytes = 0;
	return &tenant_loads[free_slot];
}

/* How many tenants the worker holds requests of. */
static int
tenants_holding(void)
{
	int			i;
	int			n = 0;

	for (i = 0; i < n_tenant_loads; i++)
		if (tenant_loads[i].held > 0)
			n++;
	return n;
}

/*
 * A tenant's share of capacity (held requests, slots in flight, or bytes of
 * bodies held) while n tenants, itself included, hold requests: an equal
 * part of all but an eighth, which is kept for a tenant that holds nothing
 * yet, so that its first request goes at once, whatever the others'
 * receivers do.
 */
static int64
tenant_share(int64 capacity, int n)
{
	return Max(1, (capacity - Max(1, capacity / TENANT_RESERVE)) / Max(n, 1));
}

/*
 * Count req in (sign +1) or out of (-1) what its transport and its tenant
 * hold, and the bytes held.
 */
static void
count_held(Attempt *req, int sign)
{
	TenantLoad *tenant = tenant_load(req->tenant);

	req->transport->held += sign;
	tenant->held += sign;
	tenant->bytes += sign * (int64) req->body_len;
}

/* req is held */
static void
hold(Attempt *req)
{
	count_held(req, +1);
	dlist_push_tail(&held, &req->held_node);
	n_held++;
}

/* req, never started, is held no more; the caller frees it */
static void
unhold(Attempt *req)
{
	count_held(req, -1);
	dlist_delete(&req->held_node);
	n_held--;
}

/*
 * Whether some transport or tenant holds all that a claim lets it (its room:
 * queue.c's HOOKS_WITH_ROOM, claim()'s tenant shares): work of it may then
 * be waiting for room, which a record frees.  Otherwise the last claim took
 * all there was of the hooks it looked at, and a record frees room that
 * nothing waits for.
 */
static bool
some_room_full(void)
{
	int			capacity = QUEUE_HOLD_FACTOR * webhook_max_in_flight;
	int			holding = tenants_holding();
	dlist_iter	iter;
	int			i;

	for (i = 0; i < n_tenant_loads; i++)
	{
		TenantLoad *tenant = &tenant_loads[i];

		if (tenant->held > 0 &&
			(tenant->held >= tenant_share(capacity, holding) ||
			 tenant->bytes >= tenant_share(QUEUE_HOLD_BYTES, holding)))
			return true;
	}
	dlist_foreach(iter, &held)
	{
		Attempt    *req = dlist_container(Attempt, held_node, iter.cur);
		int64		room = QUEUE_HOLD_FACTOR * (int64) req->transport_max_in_flight;

		if (req->transport_max_per_second > 0)
			room = Min(room, (int64) ceil(req->transport_max_per_second));
		if (req->transport->held >= room)
			return true;
	}
	return false;
}

/*
 * Which unordered hooks a claim looks at.  Looking at a hook costs an index
 * probe, however idle it is (another tenant's 20,000 idle hooks made every
 * claim take some 100 ms), so a claim looks only at the hooks that may have
 * work: those that commits named since the last claim (their news,
 * shmem.c), those with retries due (retry_hooks), those whose requests the
 * worker holds, and the "recent" ones: named, claimed from or let go in
 * the last RECENT_MS (MAX_HOOKS_AT of them at most: note_recent_hook()).
 * It looks at every hook with a delivery due (a full
 * look, which finds those in the due index itself: one probe per hook with
 * unfinished deliveries, none for the others; queue.c) once every
 * POLL_INTERVAL_MS, which finds within a second or two what nothing named
 * (a hook enabled again, retries scheduled by another worker, a due time an
 * admin wrote); and sooner, but never within FULL_LOOK_MIN_MS of the last,
 * when it must: at the start, after a failed claim (the news it took is
 * lost), when news says that hooks it cannot name have work (a COMMIT
 * PREPARED, webhook.wake(), more hooks than the news holds), and when a
 * full look left hooks out (queue.c, HOOKS_READ), each counted from the
 * last one's end.  So no tenant can make it look at every hook more than
 * four times a second.
 */
#define RECENT_MS 10000
#define FULL_LOOK_MIN_MS 250
static bool full_look_due = true;
static TimestampTz full_look_at = 0;	/* to claim then, for one that is due */
static TimestampTz last_full_look = 0;
static int64 news_ids[WEBHOOK_MAX_NEWS];
static int	n_news_ids = 0;

static HookAt *recent_hooks = NULL;	/* when each was last noted */
static bool readers_cut = false;	/* the last claim left some of them out */
static int	n_recent_hooks = 0;

/*
 * Of those, the hooks that may have a delivery due, when each was last
 * noted as such: a retry of theirs came due, news said their commit made
 * deliveries (redeliver(), replay()), a claim
 * took one of their deliveries (there may be more), the worker let one of
 * their requests go back to the queue.  A claim of the recent hooks reads
 * their due deliveries only while one of them was so noted in the last
 * RECENT_MS; otherwise only their logs, which is most claims, and a plan
 * of a fifth less to start (queue.c).  A full look reads every hook's due
 * deliveries: what nothing noted (another worker's retries, a due time an
 * admin wrote) waits for it, as it did before.  Past MAX_HOOKS_AT of them,
 * every claim reads the due deliveries until RECENT_MS have passed.
 */
static HookAt *due_hooks = NULL;
static int	n_due_hooks = 0;
static TimestampTz due_hooks_overflow_at = 0;

/*
 * The hook may have work: look at it until RECENT_MS have passed without
 * it being named, claimed from or let go again (a hook whose tenant has no
 * room left is not claimed from, and must still be looked at once it has),
 * or until a full list puts it out (below).  Returns its entry.
 */
static HookAt *
note_recent_hook(int64 hook_id)
{
	bool		found;
	HookAt	   *recent = hook_at(&recent_hooks, &n_recent_hooks, hook_id, &found);
	int			i;

	/*
	 * The list full, the hook takes the place of the one noted longest ago
	 * of those whose last read took all there was (or, if none, of all): a
	 * tenant's busy hooks, each noted at every claim of it, would otherwise
	 * keep every other tenant's out of it, and their claims to a full look
	 * a second.  The one put out waits for a full look, or its next news
	 * (looked at meanwhile only while the worker holds requests of it): a
	 * hook waiting for its tenant's room, not noted meanwhile, may be it.
	 */
	if (recent == NULL)
	{
		recent = &recent_hooks[0];
		for (i = 1; i < n_recent_hooks; i++)
			if ((recent->more && !recent_hooks[i].more) ||
				(recent->more == recent_hooks[i].more &&
				 recent_hooks[i].at < recent->at))
				recent = &recent_hooks[i];
		recent->hook_id = hook_id;
		recent->more = true;
		recent->more_claim = 0;
	}
	recent->at = GetCurrentTimestamp();
	return recent;
}

/* The hook may have a delivery due: see due_hooks. */
static void
note_due_hook(int64 hook_id)
{
	bool		found;
	HookAt	   *due = hook_at(&due_hooks, &n_due_hooks, hook_id, &found);
	TimestampTz now = GetCurrentTimestamp();

	if (due != NULL)
		due->at = now;
	else
		due_hooks_overflow_at = now;
	/* it has work: kept before those that have none when the list is full */
	note_recent_hook(hook_id)->more = true;
}

/* Forget the hooks of list not noted for RECENT_MS. */
static void
forget_old_hooks(HookAt *list, int *n, TimestampTz now)
{
	int			i;
	int			kept = 0;

	for (i = 0; i < *n; i++)
		if (!TimestampDifferenceExceeds(list[i].at, now, RECENT_MS) &&
			list[i].at <= now)
			list[kept++] = list[i];
	*n = kept;
}

/*
 * Whether a claim of the recent hooks is to read their due deliveries (now:
 * those just noted count)
 */
static bool
recent_hooks_may_have_due(void)
{
	TimestampTz now = GetCurrentTimestamp();

	forget_old_hooks(due_hooks, &n_due_hooks, now);
	return n_due_hooks > 0 ||
		(due_hooks_overflow_at != 0 &&
		 !TimestampDifferenceExceeds(due_hooks_overflow_at, now, RECENT_MS) &&
		 due_hooks_overflow_at <= now);
}

/*
 * A recent hook with work (more), with when a claim last took from it
 * (more_claim) and a random tie, in the order hooks_to_look_at() lists
 * them: least recently taken from first.
 */
typedef struct HookTurn
{
	int64		hook_id;
	uint64		took_at;
	uint64		tie;
} HookTurn;

static int
hook_turn_cmp(const void *a, const void *b)
{
	const HookTurn *x = a;
	const HookTurn *y = b;

	if (x->took_at != y->took_at)
		return x->took_at < y->took_at ? -1 : 1;
	if (x->tie != y->tie)
		return x->tie < y->tie ? -1 : 1;
	return 0;
}

/*
 * The hooks this claim looks at, into h: every one with a delivery due
 * (NULL), at a full look, or those that may have work.  Either way the
 * hooks whose retries are due become recent, and the next retry of the
 * others is waited for.  The hooks looked at are listed in the order in
 * which a claim reads tenants, and a tenant's hooks, when there are more
 * than its share of the claim (queue.c, HOOKS_READ): first the recent
 * hooks with work (those that news or a retry named now, and those whose
 * last read stopped short of their log's end: more), the one a claim took
 * from least recently first, so that tenants with work and a tenant's
 * busy hooks take turns; then those named now that a full list put out;
 * then the other recent ones, from a random place in the list; then those
 * whose requests the worker holds (recent too, unless put out of the list
 * when it was full).  Taken from a random place regardless of more, a
 * drain of 200 hooks of one tenant read those already drained half the
 * time, found nothing, and waited for the poll: 1,400 requests a second
 * against 2,900.  Named now listed first, tenants whose writers kept
 * naming their hooks would have kept the others' backlogs out of claims
 * that read a few tenants each.
 */
static void
hooks_to_look_at(QueueHeld *h, TimestampTz now)
{
	dlist_iter	iter;
	HookTurn   *turns;
	int64	   *named;
	int			n_named = 0;
	int			n_turns = 0;
	int			i;
	int			kept = 0;
	int			start;

	/* the recent hooks counted at their most: those named now join them */
	h->only_hooks = palloc(sizeof(Datum) *
						   (n_retry_hooks + n_news_ids + MAX_HOOKS_AT + n_held + 1));
	h->n_only_hooks = 0;
	named = palloc(sizeof(int64) * (n_retry_hooks + n_news_ids + 1));
	next_retry_at = 0;
	for (i = 0; i < n_retry_hooks; i++)
	{
		if (retry_hooks[i].at <= now)
		{
			note_due_hook(retry_hooks[i].hook_id);
			named[n_named++] = retry_hooks[i].hook_id;
		}
		else
		{
			note_retry(retry_hooks[i].at);
			retry_hooks[kept++] = retry_hooks[i];
		}
	}
	n_retry_hooks = kept;
	/* news of deliveries made comes as the hook's negated id (shmem.c) */
	for (i = 0; i < n_news_ids; i++)
	{
		if (news_ids[i] < 0)
			note_due_hook(-news_ids[i]);
		else
			note_recent_hook(news_ids[i])->more = true;
		named[n_named++] = Abs(news_ids[i]);
	}
	n_news_ids = 0;

	if (now < last_full_look ||
		TimestampDifferenceExceeds(last_full_look, now,
								   full_look_due ? FULL_LOOK_MIN_MS : POLL_INTERVAL_MS))
	{
		full_look_due = false;
		last_full_look = now;
		forget_old_hooks(recent_hooks, &n_recent_hooks, now);
		pfree(h->only_hooks);
		pfree(named);
		h->only_hooks = NULL;
		h->n_only_hooks = 0;
		h->with_due = true;
		return;
	}
	/*
	 * (a claim that may read due deliveries is made by statement: under
	 * webhook.debug_sql_claims, every claim, so that the tests can hold the
	 * SQL's policy to the same rules as claim_policy.c's)
	 */
	h->with_due = recent_hooks_may_have_due() || webhook_debug_sql_claims;
	turns = palloc(sizeof(HookTurn) * Max(n_recent_hooks, 1));
	for (i = 0; i < n_recent_hooks; i++)
	{
		if (!recent_hooks[i].more)
			continue;
		turns[n_turns].hook_id = recent_hooks[i].hook_id;
		turns[n_turns].took_at = recent_hooks[i].more_claim;
		turns[n_turns].tie = pg_prng_uint64(&pg_global_prng_state);
		n_turns++;
	}
	qsort(turns, n_turns, sizeof(HookTurn), hook_turn_cmp);
	for (i = 0; i < n_turns; i++)
		h->only_hooks[h->n_only_hooks++] = Int64GetDatum(turns[i].hook_id);
	for (i = 0; i < n_named; i++)
		h->only_hooks[h->n_only_hooks++] = Int64GetDatum(named[i]);
	start = n_recent_hooks > 0 ?
		(int) pg_prng_uint64_range(&pg_global_prng_state, 0, n_recent_hooks - 1) : 0;
	for (i = 0; i < n_recent_hooks; i++)
	{
		HookAt	   *recent = &recent_hooks[(start + i) % n_recent_hooks];

		if (!recent->more)
			h->only_hooks[h->n_only_hooks++] = Int64GetDatum(recent->hook_id);
	}
	dlist_foreach(iter, &held)
		h->only_hooks[h->n_only_hooks++] =
			Int64GetDatum(dlist_container(Attempt, held_node, iter.cur)->hook_id);
}

/* Start one of the worker's short transactions, shown in pg_stat_activity. */
static void
begin_transaction(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit it, report statistics, and return to the loop's memory context. */
static void
commit_transaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(loop_cxt);
}

/*
 * In a PG_CATCH: log the error, abort the transaction, and return to the
 * loop's memory context.
 */
static void
abort_transaction(void)
{
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(loop_cxt);
}

/* Is the extension installed in our database?  Caller is in a transaction. */
static bool
extension_ready(void)
{
	return OidIsValid(get_extension_oid("webhook", true));
}

/*
 * The installed extension's version (pg_extension.extversion), or NULL when
 * it is not installed: one look-up of its catalog row by name, at every
 * exchange (three, when whether it was installed was asked first).
 */
static char *
installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("webhook"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Is the installed catalog the version this library works with?  When it
 * is not (the library was upgraded and the catalog not yet, or the other
 * way round), the worker neither reads nor writes it: it says so once, and
 * waits for ALTER EXTENSION webhook UPDATE, looking again every turn.
 * version is the installed one (installed_version()).
 */
static bool
catalog_is_current(const char *version)
{
	static bool said = false;

	if (version != NULL && strcmp(version, WEBHOOK_VERSION) == 0)
	{
		if (said)
			ereport(LOG,
					(errmsg("webhook worker %d goes on: the extension is version %s",
							worker_index + 1, version)));
		said = false;
		return true;
	}
	if (!said)
		ereport(WARNING,
				(errmsg("webhook worker %d waits: the extension in this database is version %s, this library's is %s",
						worker_index + 1, version ? version : "(unknown)", WEBHOOK_VERSION),
				 errhint("Run ALTER EXTENSION webhook UPDATE in this database; nothing is sent until then, and nothing is lost.")));
	said = true;
	return false;
}

/* The delivery ids of what the worker holds (with sent_only, what it sent) */
static Datum *
held_ids(bool sent_only, int *n)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(n_held, 1));
	dlist_iter	iter;

	*n = 0;
	dlist_foreach(iter, &held)
	{
		Attempt    *req = dlist_container(Attempt, held_node, iter.cur);

		if (!sent_only || req->started_at != 0)
			ids[(*n)++] = Int64GetDatum(req->delivery_id);
	}
	return ids;
}

/*
 * The groups of the requests read from the log of ordered hooks that the
 * worker holds, but for those being recorded (a claim that follows their
 * record sees their outcome: a row if they failed), into h: none of those
 * groups' next events may go yet (order.c).  Those of the
 * requests in flight for more than GROUP_HELD_LONG_MS are told apart: the
 * next event of such a group waits as a row rather than stop its hook's
 * read, so that one slow answer does not hold up the hook's other groups.
 */
#define GROUP_HELD_LONG_MS 1000
static void
held_groups(QueueHeld *h, TimestampTz now)
{
	dlist_iter	iter;

	h->groups = palloc(sizeof(HeldGroup) * Max(n_held, 1));
	h->n_groups = 0;
	dlist_foreach(iter, &held)
	{
		Attempt    *req = dlist_container(Attempt, held_node, iter.cur);
		HeldGroup  *g = &h->groups[h->n_groups];

		if (!req->in_order || req->being_recorded)
			continue;
		g->hook_id = req->hook_id;
		g->key = req->group_key;
		g->held_long = req->started_at != 0 &&
			TimestampDifferenceExceeds(req->started_at, now, GROUP_HELD_LONG_MS);
		h->n_groups++;
	}
}

/* Record attempts, noting when the retries they scheduled are due. */
static void
record(Attempt **reqs, int n)
{
	int			n_sent = 0;
	Datum	   *sent = NULL;
	QueueRetry *retries;
	int			n_retries;
	int			i;

	/* what is being sent matters only after a 410: not on every batch */
	for (i = 0; i < n; i++)
	{
		if (reqs[i]->status == 410)
		{
			sent = held_ids(true, &n_sent);
			break;
		}
	}
	n_retries = queue_record(reqs, n, sent, n_sent, &retries);
	for (i = 0; i < n_retries; i++)
		note_retry_of_hook(retries[i].hook_id, retries[i].due);
}

/*
 * A claimed request that must not be sent: it is "finished" at once, with
 * why as its error, and with final its delivery dies (queue.c), never
 * tried again.
 */
static void
refuse(Attempt *req, bool final, const char *why)
{
	req->error = MemoryContextStrdup(req->cxt, why);
	req->final = final;
	req->body = NULL;
}

/*
 * Claim up to limit deliveries onto the claimed list, their bodies made by
 * their hooks' transforms where they have one.  What may be claimed is
 * bounded by what the worker holds: per transport (queue.c), per tenant
 * (tenant_share()), and in bytes (QUEUE_HOLD_BYTES); stalled transports
 * (ratelimit_stalled()) get nothing, nor do ordered hooks while their last
 * claim's cost says to wait (ORDERED_COST_FACTOR); only the hooks that may
 * have work are looked at (hooks_to_look_at()).  An event above
 * webhook.max_body_bytes, as stored or as rendered, is refused: its
 * delivery dies unsent.  Returns how many the claim took (queue_claim()).
 * Caller is in a transaction.
 */
static int
claim(int limit, dlist_head *claimed)
{
	QueueHeld	h;
	ClaimNotes	notes;
	int			capacity = QUEUE_HOLD_FACTOR * webhook_max_in_flight;
	int			holding;
	int			i;
	int			n;
	dlist_iter	iter;
	HASH_SEQ_STATUS scan;
	Transport  *t;
	TimestampTz now = GetCurrentTimestamp();

	/* at most as many transports as requests held */
	h.transport_ids = palloc(sizeof(Datum) * Max(n_held, 1));
	h.counts = palloc(sizeof(Datum) * Max(n_held, 1));
	h.n_transports = 0;
	transport_scan_begin(&scan);
	while ((t = transport_scan_next(&scan)) != NULL)
	{
		if (t->held == 0)
			continue;
		h.transport_ids[h.n_transports] = Int64GetDatum(t->id);
		h.counts[h.n_transports] = Int32GetDatum(t->held);
		h.n_transports++;
	}
	h.delivery_ids = held_ids(false, &h.n_deliveries);
	held_groups(&h, now);

	holding = tenants_holding();
	h.tenants = palloc(sizeof(Datum) * Max(n_tenant_loads, 1));
	h.tenant_rooms = palloc(sizeof(Datum) * Max(n_tenant_loads, 1));
	h.tenant_bytes = palloc(sizeof(Datum) * Max(n_tenant_loads, 1));
	h.n_tenants = 0;
	for (i = 0; i < n_tenant_loads; i++)
	{
		TenantLoad *tenant = &tenant_loads[i];

		if (tenant->held == 0)
			continue;
		h.tenants[h.n_tenants] = CStringGetTextDatum(tenant->tenant);
		h.tenant_rooms[h.n_tenants] =
			Int32GetDatum((int) Max(0, tenant_share(capacity, holding) - tenant->held));
		h.tenant_bytes[h.n_tenants] =
			Int64GetDatum(Max(0, tenant_share(QUEUE_HOLD_BYTES, holding) - tenant->bytes));
		h.n_tenants++;
	}
	h.new_tenant_room = (int) tenant_share(capacity, holding + 1);
	h.new_tenant_bytes = tenant_share(QUEUE_HOLD_BYTES, holding + 1);
	h.n_stalled = ratelimit_stalled(TimestampTzPlusMilliseconds(now, STALL_MS),
									&h.stalled_ids, &h.stalled_limits);
	hooks_to_look_at(&h, now);
	/* (or the clock went back) */
	h.with_ordered = (ordered_hooks || h.with_due) &&
		(now >= ordered_claim_at ||
		 ordered_claim_at - now > ORDERED_MAX_WAIT_MS * INT64CONST(1000));

	cursor_held_positions(&h.positions);
	h.claim = ++n_claims;
	n = queue_claim(limit, &h, request_cxt, claimed, &notes);
	readers_cut = notes.readers_cut;
	/* a full look's reads that were not taken from are listed from now on */
	for (i = 0; i < notes.n_read_hooks; i++)
		note_recent_hook(notes.read_hooks[i])->more = true;
	/*
	 * A full look that left hooks out looks again once FULL_LOOK_MIN_MS
	 * have passed since it ended: what no news named (one commit's events
	 * for more hooks than it holds, say) only a full look finds.
	 */
	if (h.only_hooks == NULL)
	{
		/* the next full look's time counts from this one's end */
		last_full_look = GetCurrentTimestamp();
		if (readers_cut)
		{
			full_look_due = true;
			full_look_at = TimestampTzPlusMilliseconds(last_full_look, FULL_LOOK_MIN_MS);
		}
	}
	if (h.with_ordered)
	{
		TimestampTz end = GetCurrentTimestamp();

		ordered_claim_at = end +
			Min(ORDERED_COST_FACTOR *
				Max(0, end - now - ORDERED_FREE_MS * INT64CONST(1000)),
				ORDERED_MAX_WAIT_MS * INT64CONST(1000));
	}
	else if (ordered_hooks)
		ordered_waiting = true; /* to claim for them then */
	dlist_foreach(iter, claimed)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);

		req->claimed_at = now;
		if (req->read == NULL)
			note_due_hook(req->hook_id);
		else
		{
			/* a read that took all there was ends with no key (queue.c) */
			HookAt	   *recent = note_recent_hook(req->hook_id);
			bool		more = req->read->to.last_txid != NULL;

			recent->more = recent->more_claim == h.claim ? recent->more && more : more;
			recent->more_claim = h.claim;
		}
		if (req->waits)
			continue;			/* never sent from here: start_waiting() */
		if (!req->fits)
		{
			refuse(req, true,
				   req->event_bytes > webhook_max_body_bytes
				   ? psprintf("not sent: the event is " INT64_FORMAT " bytes as stored, more than webhook.max_body_bytes (%d)",
							  req->event_bytes, webhook_max_body_bytes)
				   : psprintf("not sent: its body would be more than webhook.max_body_bytes (%d)",
							  webhook_max_body_bytes));
			continue;
		}
		if (OidIsValid(req->transform))
		{
			transform_body(req, TRANSFORM_TIMEOUT_MS);
			/* the event, read whole for the transform, is not held */
			if (req->event != (Datum) 0)
				pfree(DatumGetPointer(req->event));
			req->event = (Datum) 0;
		}
		if (req->body == NULL)
			continue;
		req->body_len = strlen(req->body);
		if (req->body_len > (size_t) webhook_max_body_bytes)
		{
			refuse(req, true,
				   psprintf("not sent: the body is %zu bytes, more than webhook.max_body_bytes (%d)",
							req->body_len, webhook_max_body_bytes));
			req->body_len = 0;
		}
	}

	/*
	 * A claim that took some and left no hook out read every hook it
	 * looked at: those it took nothing of have nothing more (news of an
	 * event an earlier claim read left some marked, ahead in their
	 * tenant's turn)
	 */
	if (n > 0 && !readers_cut && h.only_hooks != NULL)
		for (i = 0; i < n_recent_hooks; i++)
			if (recent_hooks[i].more_claim != h.claim)
				recent_hooks[i].more = false;
	return n;
}

/*
 * Let go of a held attempt that was never started, and free it: its
 * delivery is pending in the queue, for a later claim, below the floor its
 * hook may have now (queue_forget_floor()).  One read from the log has no
 * delivery row yet: it is handed over, to get a pending one at the next
 * exchange (hand_over()), and free then.
 */
static void
drop_waiting(Attempt *req)
{
	dlist_delete(&req->node);
	n_waiting--;
	unhold(req);
	note_due_hook(req->hook_id);
	queue_forget_floor(req->hook_id);
	if (req->read != NULL)
	{
		dlist_push_tail(&handed_over, &req->node);
		return;
	}
	attempt_free(req);
}

/*
 * Let go of the requests that have waited LET_GO_AFTER_MS or more, of each
 * tenant that holds more than its share (tenant_share()) of what the
 * worker may hold and has all its share of the slots in flight, the latest
 * claimed first.  A tenant claims its share of what the worker holds while
 * it is among few; once others hold requests too, its share is less, and
 * what it took beyond waits behind its requests in flight.  Behind
 * receivers that never answer, that is until their timeouts: eight such
 * tenants held all the worker may hold, no claim could take another
 * tenant's request, and its backlog of 300 went at 16 in 30 s
 * (test_fairness).  Only what has waited: a share moves by a request or
 * two whenever a tenant starts or stops holding requests, and what is let
 * go at once would be claimed again at the next claim, a delivery row
 * written and its body made again each time.  What is let go is claimed
 * again in its turn.  Returns whether any was.
 */
#define LET_GO_AFTER_MS 250
static bool
let_go_over_shares(void)
{
	int			holding = tenants_holding();
	int64		share = tenant_share(QUEUE_HOLD_FACTOR * webhook_max_in_flight, holding);
	int64		in_flight_share = tenant_share(webhook_max_in_flight, holding);
	TimestampTz now;
	dlist_node *node;
	dlist_node *prev;
	bool		let_go = false;
	int			i;

	/* most turns, no tenant is over its share: the waiting list is not read */
	for (i = 0; i < n_tenant_loads; i++)
		if (tenant_loads[i].held > share && tenant_loads[i].in_flight >= in_flight_share)
			break;
	if (i == n_tenant_loads)
		return false;
	now = GetCurrentTimestamp();
	for (node = dlist_tail_node(&waiting); node != &waiting.head; node = prev)
	{
		Attempt    *req = dlist_container(Attempt, node, node);
		TenantLoad *tenant = tenant_load(req->tenant);

		prev = node->prev;
		if (req->error != NULL || req->waits || tenant->held <= share ||
			tenant->in_flight < in_flight_share ||
			!TimestampDifferenceExceeds(req->claimed_at, now, LET_GO_AFTER_MS))
			continue;
		drop_waiting(req);
		let_go = true;
	}
	return let_go;
}

/*
 * End, of the requests in flight of the tenants over their share of the
 * slots (in_flight_share), the one in flight the longest, once that is
 * PREEMPT_AFTER_MS: another tenant, under its share, has a request to
 * start, and every slot is taken.  A tenant claims its share of the slots
 * while it is among few; behind a receiver that never answers, what it
 * took beyond the share it has once others come stays in flight until
 * the timeouts: two such tenants, the second after the first had taken
 * its seven eighths, took every slot, and a third tenant's event waited
 * 30 s (test_fairness).  What is ended is an attempt that got no response
 * (http_end_early()): recorded, never its delivery's death, and tried
 * again (queue.c's record); a receiver that answers within
 * PREEMPT_AFTER_MS loses none.  Returns whether one was ended; when none
 * was for being too young, *due is made no later than when one will be
 * old enough (the worker wakes then).
 */
#define PREEMPT_AFTER_MS 1000
static bool
end_one_over_share(int64 in_flight_share, TimestampTz now, TimestampTz *due)
{
	Attempt    *longest = NULL;
	dlist_iter	iter;

	dlist_foreach(iter, &held)
	{
		Attempt    *req = dlist_container(Attempt, held_node, iter.cur);

		if (req->transfer != NULL &&
			tenant_load(req->tenant)->in_flight > in_flight_share &&
			(longest == NULL || req->started_at < longest->started_at))
			longest = req;
	}
	if (longest == NULL)
		return false;
	if (!TimestampDifferenceExceeds(longest->started_at, now, PREEMPT_AFTER_MS))
	{
		TimestampTz old_enough = TimestampTzPlusMilliseconds(longest->started_at,
															 PREEMPT_AFTER_MS);

		if (*due == 0 || old_enough < *due)
			*due = old_enough;
		return false;
	}
	http_end_early(longest,
				   psprintf("ended after %ld ms in flight: tenant \"%s\" held more than its share of the worker's slots, and another tenant's request waited for one",
							(long) ((now - longest->started_at) / 1000), longest->tenant),
				   &done);
	return true;
}

/*
 * Start the waiting requests that the limits allow: the worker's
 * webhook.max_in_flight, its tenant's share of them (tenant_share()), its
 * transport's max_in_flight and rate.  One whose transport's next token is
 * more than STALL_MS away goes back to the queue: what waits that long
 * holds nothing another tenant could use, as does one that waits behind
 * an unfinished delivery of its ordered group (queue.c, FRESH_IN_ORDER),
 * at once.  A refused request (claim()) "starts" at once, to be recorded.
 * Returns when the first request held back may start (its transport's
 * rate, or a request in flight to be ended for it: end_one_over_share()),
 * or 0.
 */
static TimestampTz
start_waiting(void)
{
	dlist_mutable_iter iter;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due = 0;
	int			in_flight_share = (int) tenant_share(webhook_max_in_flight,
													  tenants_holding());
	bool		looked_for_one = false;

	dlist_foreach_modify(iter, &waiting)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);
		Transport  *transport = req->transport;
		TenantLoad *tenant = tenant_load(req->tenant);

		if (req->waits)
		{
			drop_waiting(req);
			continue;
		}
		if (req->error == NULL)
		{
			TimestampTz token = 0;

			if (tenant->in_flight >= in_flight_share ||
				transport->in_flight >= req->transport_max_in_flight)
				continue;
			/* (above it: a lowered webhook.max_in_flight, ended by none) */
			if (http_in_flight() > webhook_max_in_flight ||
				(http_in_flight() == webhook_max_in_flight && looked_for_one))
				continue;
			if (!ratelimit_admit(req, now, &token))
			{
				if (token > TimestampTzPlusMilliseconds(now, STALL_MS))
					drop_waiting(req);
				else if (due == 0 || token < due)
					due = token;
				continue;
			}

			/*
			 * every slot taken: this tenant, under its share, its token
			 * taken, takes one from a tenant over its own
			 * (end_one_over_share()), or gives the token back; one look a
			 * pass (the one ended counts until release_finished(), and
			 * hundreds of tenants under a share of one slot wait at once)
			 */
			if (http_in_flight() == webhook_max_in_flight)
			{
				looked_for_one = true;
				if (!end_one_over_share(in_flight_share, now, &due))
				{
					ratelimit_unadmit(req);
					continue;
				}
			}
		}
		dlist_delete(iter.cur);
		n_waiting--;
		transport->in_flight++;
		tenant->in_flight++;
		http_start(req, &done);
	}
	return due;
}

/*
 * The hook answered 410 Gone: its waiting requests are not sent.  Recording
 * the 410 disables the hook and cancels their deliveries, which are then
 * held no more.
 */
static void
drop_waiting_of_hook(int64 hook_id)
{
	dlist_mutable_iter w;

	dlist_foreach_modify(w, &waiting)
	{
		Attempt    *req = dlist_container(Attempt, node, w.cur);

		if (req->hook_id == hook_id)
			drop_waiting(req);
	}
}

/*
 * Free every attempt of list; with release, they were held and are
 * recorded: they are held no more.
 */
static void
free_requests(dlist_head *list, bool release)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, list)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);

		dlist_delete(iter.cur);
		if (release)
		{
			/* count_done() counted it out of its loads already */
			dlist_delete(&req->held_node);
			n_held--;
		}
		attempt_free(req);
	}
}

/*
 * The requests that finished since the last call no longer count against
 * their transports' max_in_flight, so that the next may start before they
 * are recorded; their outcomes go to their transports' rates at once, and
 * a 410 stops its hook's waiting requests.
 */
static void
release_finished(void)
{
	dlist_iter	iter;
	int			i = 0;

	dlist_foreach(iter, &done)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);

		if (i++ < n_released)
			continue;
		req->transport->in_flight--;
		tenant_load(req->tenant)->in_flight--;
		ratelimit_answered(req);
		if (req->status == 410)
			drop_waiting_of_hook(req->hook_id);
	}
	n_released = i;
}

/*
 * Whether to record the finished requests now, rather than with the next
 * claim: once the earliest finished RECORD_DELAY_MS ago.  Sets *wait_ms to
 * how long until then.
 */
static bool
record_due(long *wait_ms)
{
	Attempt    *first;

	*wait_ms = 0;
	if (dlist_is_empty(&done))
		return false;
	first = dlist_head_element(Attempt, node, &done);
	*wait_ms = ms_until(first->started_at + (TimestampTz) (first->duration_ms * 1000.0) +
						RECORD_DELAY_MS * INT64CONST(1000));
	return *wait_ms <= 0;
}

/*
 * Count the finished requests in or out of what their transports and
 * tenants hold.  Not inlined: exchange() calls it around a PG_TRY.
 */
static pg_noinline int
count_done(int sign)
{
	dlist_iter	iter;
	int			n = 0;

	dlist_foreach(iter, &done)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);

		count_held(req, sign);
		req->being_recorded = (sign < 0);
		n++;
	}
	return n;
}

/* The finished requests, as an array of n_done, for queue_record(). */
static Attempt **
done_array(int n_done)
{
	Attempt **reqs = palloc(sizeof(Attempt *) * Max(n_done, 1));
	dlist_iter	iter;
	int			i = 0;

	dlist_foreach(iter, &done)
		reqs[i++] = dlist_container(Attempt, node, iter.cur);
	Assert(i == n_done);
	return reqs;
}

/* How a request is recorded when its batch could not be */
typedef enum RecordHow
{
	RECORD_AS_IS,				/* with the receiver's answer */
	RECORD_WITHOUT_RESPONSE,	/* the answer left out, the reason instead */
	RECORD_FAILURE				/* no attempt row: the delivery failed, why */
} RecordHow;

/* One request to record, as try_in_subtransaction() calls record_one() */
typedef struct RecordCall
{
	Attempt    *req;
	RecordHow	how;
	char	   *why;
} RecordCall;

static void
record_one(void *arg)
{
	RecordCall *call = (RecordCall *) arg;

	if (call->how == RECORD_FAILURE)
		queue_record_failure(call->req, call->why);
	else
		record(&call->req, 1);
}

/*
 * Record one request in a subtransaction of the current transaction.  False,
 * with the error's message in *why, when that failed.
 */
static bool
record_in_subtransaction(Attempt *req, RecordHow how, char **why)
{
	RecordCall	call = {req, how, *why};
	ErrorData  *edata = try_in_subtransaction(record_one, NULL, &call, true);

	if (edata == NULL)
		return true;
	*why = psprintf("the attempt could not be recorded: %.200s", edata->message);
	return false;
}

/*
 * The batch of finished requests could not be recorded.  Record them one
 * by one, so that one that cannot be (an answer the database refuses, an
 * admin's trigger that fails on it) costs its own delivery only: it is
 * recorded without the receiver's answer, or failing that only its
 * delivery moves on, as after a failed attempt.  Returns false, having
 * logged why, when even that failed (the database refuses every write,
 * say): the caller keeps them all.
 */
static bool
record_one_by_one(int n_done)
{
	PG_TRY();
	{
		Attempt **reqs;
		int			i;

		begin_transaction("recording attempts one by one");
		reqs = done_array(n_done);
		for (i = 0; i < n_done; i++)
		{
			Attempt    *req = reqs[i];
			char	   *why = NULL;

			if (record_in_subtransaction(req, RECORD_AS_IS, &why))
				continue;
			ereport(WARNING,
					(errmsg("webhook: recording attempt %d of delivery " INT64_FORMAT " without the response: %s",
							req->attempt_no, req->delivery_id, why)));
			resetStringInfo(&req->response_headers);
			resetStringInfo(&req->response_body);
			req->retry_after = -1;
			req->error = why;
			if (record_in_subtransaction(req, RECORD_WITHOUT_RESPONSE, &why))
				continue;
			ereport(WARNING,
					(errmsg("webhook: recording only the failure of delivery " INT64_FORMAT ": %s",
							req->delivery_id, why)));
			if (!record_in_subtransaction(req, RECORD_FAILURE, &why))
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("webhook: could not record delivery " INT64_FORMAT ": %s",
								req->delivery_id, why)));
		}
		commit_transaction();
	}
	PG_CATCH();
	{
		abort_transaction();
		return false;
	}
	PG_END_TRY();
	return true;
}

/*
 * A relcache invalidation: a change to webhook.hook or webhook.transport
 * (their triggers send one, src/sql/code/40_capture.sql), or to anything
 * (InvalidOid), makes the worker look at the hooks of what it holds.
 */
static void
hooks_inval_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == hook_relid || relid == transport_relid)
	{
		hooks_changed = true;
		queue_hooks_changed();
	}
}

/*
 * The hooks whose stored cursors another moved (update_hook(..., resume =>
 * 'now') with the hook's change) are read from there on, not from where the
 * worker had read to.
 */
static void
forget_cursors_moved_by_others(void)
{
	CursorMoves bases;
	int64	   *moved;
	int			n_moved;
	int			i;

	cursor_bases(&bases);
	if (bases.n == 0)
		return;
	n_moved = queue_cursors_moved(&bases, &moved);
	for (i = 0; i < n_moved; i++)
		cursor_forget(moved[i]);
}

/*
 * After a change to hooks or transports: the waiting requests of hooks that
 * were deleted, disabled or paused meanwhile go back to the queue, at once,
 * rather than being sent, and whether any hook is ordered is read again.
 * Caller is in a transaction (which has taken the invalidations in), the
 * extension installed.
 */
static void
drop_waiting_of_gone_hooks(void)
{
	Oid			schema = get_namespace_oid("webhook", true);
	Datum	   *ids;
	int64	   *gone;
	int			n = 0;
	int			n_gone;
	int			i;
	dlist_iter	iter;

	hook_relid = get_relname_relid("hook", schema);
	transport_relid = get_relname_relid("transport", schema);
	if (!hooks_changed)
		return;
	ordered_hooks = queue_ordered_hooks_exist();
	forget_cursors_moved_by_others();
	if (n_waiting == 0)
	{
		hooks_changed = false;
		return;
	}
	ids = palloc(sizeof(Datum) * n_waiting);
	dlist_foreach(iter, &waiting)
		ids[n++] = Int64GetDatum(dlist_container(Attempt, node, iter.cur)->hook_id);
	n_gone = queue_hooks_gone(ids, n, &gone);
	hooks_changed = false;
	for (i = 0; i < n_gone; i++)
		drop_waiting_of_hook(gone[i]);
}

/*
 * Move the stored cursors of the hooks whose requests read from the log
 * are all recorded up to some point (cursor.c), at most every
 * CURSOR_MOVE_MS: moved_hooks says which moved (in the loop's memory
 * context, which outlives the transaction), once it commits.  A stored
 * cursor that lags only makes a crash send again what was sent since.
 */
#define CURSOR_MOVE_MS 100

static void
move_cursors(void)
{
	static TimestampTz last_move = 0;
	TimestampTz now = GetCurrentTimestamp();
	CursorMoves moves;
	MemoryContext old;

	if (now >= last_move && !TimestampDifferenceExceeds(last_move, now, CURSOR_MOVE_MS))
		return;
	last_move = now;
	cursor_moves(&moves);
	if (moves.n == 0)
		return;
	old = MemoryContextSwitchTo(loop_cxt);
	n_moved_hooks = queue_move_cursors(&moves, &moved_hooks);
	MemoryContextSwitchTo(old);
}

/*
 * The requests read from the log that the worker let go of unsent get
 * pending delivery rows, before the attempts are recorded (a 410 recorded
 * now cancels them with its hook's others); then, once that has committed
 * (follow_read(), after the cursors moved are told), the stored
 * cursor may move past them.  Returns whether there were any.
 */
static bool
hand_over(void)
{
	dlist_iter	iter;
	Attempt   **reqs;
	int			n = 0;

	if (dlist_is_empty(&handed_over))
		return false;
	dlist_foreach(iter, &handed_over)
		n++;
	reqs = palloc(sizeof(Attempt *) * n);
	n = 0;
	dlist_foreach(iter, &handed_over)
		reqs[n++] = dlist_container(Attempt, node, iter.cur);
	queue_hand_over(reqs, n);
	return true;
}

/*
 * follow(req) for each request of list read from the log (cursor.c): after
 * an exchange commits, cursor_claimed() for what it claimed (before the
 * stored cursors it moved are told, which would forget a hook read to
 * where its cursor moved), then cursor_recorded() for what it recorded,
 * finished or handed over (after: their moves were of what was recorded
 * before).
 */
static void
follow_read(dlist_head *list, void (*follow) (Attempt *req))
{
	dlist_iter	iter;

	dlist_foreach(iter, list)
	{
		Attempt    *req = dlist_container(Attempt, node, iter.cur);

		if (req->read != NULL)
			follow(req);
	}
}

/*
 * One short transaction with the queue: record the finished attempts, and
 * claim up to limit more deliveries when limit > 0.  Returns how many were
 * claimed, or -1 when the extension is not installed or the transaction
 * failed.  On a failure (a deadlock with a user's statement, a row that
 * cannot be stored) the error is logged, nothing claimed in the failed
 * transaction is sent, and the finished attempts are recorded one by one;
 * if even that fails they are kept for a later turn, after a pause.
 */
static int
exchange(int limit)
{
	volatile int claimed = 0;
	volatile bool failed = false;
	volatile bool handed = false;
	dlist_head	new_requests;
	char	   *version;
	int			n_done;

	dlist_init(&new_requests);
	if (limit > 0)
	{
		webhook_clear_wake_request(worker_slot);
		if (webhook_take_news(worker_slot, news_ids, &n_news_ids))
		{
			/* a full look, now or once FULL_LOOK_MIN_MS have passed */
			full_look_due = true;
			full_look_at = TimestampTzPlusMilliseconds(last_full_look, FULL_LOOK_MIN_MS);
		}
	}
	/* finished requests no longer count against their transports */
	n_done = count_done(-1);
	PG_TRY();
	{
		begin_transaction(limit > 0 ? "claiming deliveries" : "recording attempts");
		version = installed_version();
		if (version == NULL)
		{
			extension_gone = true;
			claimed = -1;
		}
		else if (!(catalog_current = catalog_is_current(version)))
			claimed = -1;
		else
		{
			drop_waiting_of_gone_hooks();
			handed = hand_over();
			if (n_done > 0)
				record(done_array(n_done), n_done);
			move_cursors();
			if (limit > 0)
				claimed = claim(limit, &new_requests);
		}
		commit_transaction();
	}
	PG_CATCH();
	{
		abort_transaction();
		free_requests(&new_requests, false);
		claimed = -1;
		failed = true;
		full_look_due = true;	/* the news taken is lost with it */
		n_moved_hooks = -1;		/* and the cursors stay */
	}
	PG_END_TRY();

	/*
	 * What committed is followed, outside the error handling above: an
	 * error here (out of memory) must not undo a committed transaction's
	 * requests; it ends the worker, whose successor reads from the stored
	 * cursors.
	 */
	if (!failed)
	{
		follow_read(&new_requests, cursor_claimed);
		if (n_moved_hooks >= 0)
			cursor_moved(moved_hooks, n_moved_hooks);
		n_moved_hooks = -1;
		if (handed)
		{
			follow_read(&handed_over, cursor_recorded);
			free_requests(&handed_over, false);
		}
	}

	if (failed && n_done > 0 && !record_one_by_one(n_done))
	{
		count_done(+1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 POLL_INTERVAL_MS, PG_WAIT_EXTENSION);
		return -1;
	}
	/* a catalog of another version: what finished waits to be recorded */
	if (!failed && !catalog_current && !extension_gone)
	{
		count_done(+1);
		return -1;
	}

	follow_read(&done, cursor_recorded);
	free_requests(&done, true);
	n_released = 0;
	while (!dlist_is_empty(&new_requests))
	{
		Attempt    *req = dlist_container(Attempt, node,
										   dlist_pop_head_node(&new_requests));

		req->transport = transport_of(req->transport_id);
		ratelimit_claimed(req);
		dlist_push_tail(&waiting, &req->node);
		n_waiting++;
		hold(req);
	}
	return claimed;
}

/*
 * Run chore(arg) in a short transaction of its own, activity as what the
 * worker is doing, if the extension is installed and its catalog is the
 * library's version.  A failure is logged and the transaction aborted:
 * false then.  Between the loop's transactions only.
 */
static bool
run_chore(const char *activity, void (*chore) (void *arg), void *arg)
{
	volatile bool ok = true;

	PG_TRY();
	{
		begin_transaction(activity);
		if (extension_ready() && catalog_current)
			chore(arg);
		commit_transaction();
	}
	PG_CATCH();
	{
		abort_transaction();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* The chore of expire_secrets(). */
static void
expire_chore(void *arg)
{
	queue_expire_secrets();
}

/*
 * Once a second: drop the previous secrets whose overlap is over, in a
 * short transaction of its own, so that a failure there (logged) never
 * holds up recording or claiming.  The requests stopped being signed with
 * them when the overlap ended (queue.c); this only removes them from the
 * catalog.
 */
static void
expire_secrets(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!TimestampDifferenceExceeds(last_expiry, now, POLL_INTERVAL_MS))
		return;
	last_expiry = now;
	run_chore("dropping expired secrets", expire_chore, NULL);
}

/* The chore of adopt_cursors(). */
static void
adopt_chore(void *arg)
{
	if (queue_adopt_cursors())
		full_look_due = true;	/* their deliveries are made */
}

/*
 * Step of do_chores(): once a second, in the first worker, adopt the
 * cursors a restore brought (queue.c).
 */
static void
adopt_cursors(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (worker_index != 0 || !TimestampDifferenceExceeds(last_adoption, now, POLL_INTERVAL_MS))
		return;
	last_adoption = now;
	run_chore("adopting restored cursors", adopt_chore, NULL);
}

/* How often a chore governed by an interval setting of span runs, in ms. */
static long
chore_interval_ms(const Interval *span)
{
	return (long) Min(Max(interval_ms(span) / 4, POLL_INTERVAL_MS),
					  CHORE_MAX_INTERVAL_MS);
}

/* The chore of check_health(). */
static void
health_chore(void *arg)
{
	housekeeping_disable_failing_hooks(&webhook_disable_after_span,
									   worker_index, webhook_workers);
}

/*
 * Now and then (chore_interval_ms), with webhook.disable_after set (not 0):
 * disable the hooks of this worker's transports whose deliveries have all
 * died for that long, in a short transaction of its own; a failure there
 * is logged, and the next look tries again.
 */
static void
check_health(void)
{
	const Interval *span = &webhook_disable_after_span;
	TimestampTz now = GetCurrentTimestamp();

	if (span->time == 0 && span->day == 0 && span->month == 0)
		return;
	if (!TimestampDifferenceExceeds(last_health_check, now, chore_interval_ms(span)))
		return;
	last_health_check = now;
	run_chore("disabling failing hooks", health_chore, NULL);
}

/* The end of a pruning round: say what it removed, and when the next is. */
static void
end_prune_round(TimestampTz now)
{
	ereport(pruned_deliveries > 0 ? LOG : DEBUG1,
			(errmsg("webhook worker %d pruned " INT64_FORMAT " deliveries, older than webhook.retention (%s), in %d batches, %ld ms",
					worker_index + 1, pruned_deliveries,
					GetConfigOption("webhook.retention", false, false),
					prune_batches, TimestampDifferenceMilliseconds(prune_started_at, now))));
	prune_phase = PRUNE_IDLE;
	next_prune_at = TimestampTzPlusMilliseconds(now,
												chore_interval_ms(&webhook_retention_span));
}

/*
 * The chore of prune_step(): one batch of deliveries, into arg, or a step
 * of the rotation (done unless a slot's events are being moved).
 */
static void
prune_chore(void *arg)
{
	PruneBatch *batch = (PruneBatch *) arg;

	if (prune_phase == PRUNE_DELIVERIES)
		housekeeping_prune_deliveries(&webhook_retention_span, prune_after_id,
									  batch);
	else
	{
		prune_moving_slot = housekeeping_rotate_logs(&webhook_retention_span,
													 worker_index + 1,
													 prune_moving_slot);
		batch->done = prune_moving_slot < 0;
	}
}

/*
 * With webhook.auto_prune, in the first worker of the database: one step
 * of the current pruning round, in a short transaction of its own, or the
 * start of a round when the next is due.  A round walks the deliveries, a
 * batch per step, then rotates the logs (a transaction of its own), once
 * the deliveries that kept events are gone (housekeeping.c); a step more
 * for each PRUNE_MOVED_EVENTS events that a slot emptied must keep (a hook
 * far behind: housekeeping_rotate_logs()).  Returns when
 * the next step of the round is due, or 0 between rounds.  A failure
 * (logged) ends the round.
 */
static TimestampTz
prune_step(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz step_started_at;
	PruneBatch	batch;
	bool		failed;
	long		pause_ms;

	if (worker_index != 0 || !webhook_auto_prune)
	{
		prune_phase = PRUNE_IDLE;
		return 0;
	}
	if (now < next_prune_at)
		return prune_phase == PRUNE_IDLE ? 0 : next_prune_at;
	if (prune_phase == PRUNE_IDLE)
	{
		prune_phase = PRUNE_DELIVERIES;
		prune_after_id = 0;
		prune_moving_slot = -1;
		prune_started_at = now;
		prune_batches = 0;
		pruned_deliveries = 0;
	}

	memset(&batch, 0, sizeof(batch));
	batch.done = true;
	step_started_at = now;
	failed = !run_chore(prune_phase == PRUNE_LOGS ? "rotating the logs" : "pruning",
						prune_chore, &batch);

	now = GetCurrentTimestamp();
	if (failed || (prune_phase == PRUNE_LOGS && batch.done))
	{
		end_prune_round(now);
		return 0;
	}
	pause_ms = PRUNE_PAUSE_MS;
	if (prune_phase == PRUNE_DELIVERIES)
	{
		prune_batches++;
		prune_after_id = batch.last_id;
		pruned_deliveries += batch.deleted;
		if (batch.done)
			prune_phase = PRUNE_LOGS;
	}
	else
	{
		/*
		 * Steps that move a slot's events: at most a quarter of the
		 * worker's time, however long they grow (each reads again what the
		 * steps before it moved, while a long transaction keeps it)
		 */
		pause_ms = Max(pause_ms, PRUNE_MOVING_SHARE *
					   TimestampDifferenceMilliseconds(step_started_at, now));
	}
	next_prune_at = TimestampTzPlusMilliseconds(now, pause_ms);
	return next_prune_at;
}

static void
release_slot(int code, Datum arg)
{
	webhook_slot_release(worker_slot);
}

/*
 * Exit, cleanly, without having taken a slot.  Worker 0 may be the
 * launcher's probe of the database: it answers first, so that the launcher
 * tells this from a probe that died before it could tell (shmem.c).
 */
static void leave_unserved(void) pg_attribute_noreturn();

static void
leave_unserved(void)
{
	if (worker_index == 0)
		webhook_probe_answer(MyDatabaseId);
	proc_exit(0);
}

/*
 * Connect to the database the launcher named, and take this worker's slot
 * there.  Exits, cleanly, when the database has no extension (the launcher
 * probes for it so), the worker runs already, or a command paused the
 * database after the launcher started us (pause.c): it waits for us to go.
 */
static void
join_database(Datum main_arg)
{
	Oid			dboid;
	bool		ready;
	bool		paused;
	char	   *dbname;

	worker_index = DatumGetInt32(main_arg);
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	StartTransactionCommand();
	ready = extension_ready();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	if (!ready)
		leave_unserved();

	worker_slot = webhook_slot_acquire(MyDatabaseId, worker_index, &paused);
	if (paused)
	{
		ereport(LOG,
				(errmsg("webhook worker %d of database \"%s\" exits: a command needs the database alone",
						worker_index + 1, dbname)));
		leave_unserved();
	}
	if (worker_slot < 0)
	{
		ereport(LOG,
				(errmsg("webhook worker %d of database \"%s\" runs already, or no slot is free",
						worker_index + 1, dbname)));
		leave_unserved();
	}
	before_shmem_exit(release_slot, (Datum) 0);
	/* the launcher starts the database's other workers once the first runs */
	if (worker_index == 0)
		webhook_wake_launcher();
	queue_set_partition(worker_index, webhook_workers);
	ereport(LOG, (errmsg("webhook worker %d of %d started in database \"%s\"",
						 worker_index + 1, webhook_workers, dbname)));
}

/*
 * A good part of what an exchange (a claim and a record, in one
 * transaction) costs does not depend on how many requests it takes: its
 * plans are started, its transaction begun and committed.  Claimed a few
 * at a time as requests finished, a backlog of 20,000 took twice as many
 * exchanges and a fifth more of the worker's CPU (bench/profile.sh).  So
 * while there is a backlog, a claim that the backlog itself or finished
 * requests made due waits until the worker holds no more requests than
 * half of what it may have in flight (a quarter of what it may hold),
 * which the slots left keep busy meanwhile, and the claim takes what
 * refills the other three quarters.  (Waiting for half of what it may
 * hold, a drain took 58 requests a claim; for a quarter, 97, with 6 % less
 * of the worker's CPU.)  It never waits more than BATCH_WAIT_MS: a tenant
 * whose receiver keeps the worker above that delays another's backlog by
 * that at most, a claim.  A claim due for any other reason (a commit's
 * news, a retry, an ordered hook's turn, a full look, the poll) goes at
 * once.
 */
#define BATCH_WAIT_MS 5

/*
 * The loop's state between its steps: whether a claim is due, and for a
 * reason that does not wait (claim_now), whether the last one was full,
 * read a hook short of its log's end or left hooks out (a backlog), when
 * it was, since when
 * a backlog's claim waits for room, and when the next request held back by
 * its rate and the next pruning batch may go.
 */
static bool claim_due = true;
static bool claim_now = true;
static bool room_full = false;	/* some_room_full() after the last claim */
static bool backlog = false;
static TimestampTz last_claim = 0;
static TimestampTz batch_wait_from = 0;
static TimestampTz next_start_at = 0;
static TimestampTz next_prune = 0;

/*
 * The session settings the worker's statements rely on, made once.
 */
static void
set_session(void)
{
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * The queue statements take arrays and a LIMIT as parameters: plan them
	 * once, not per batch.  Their generic plans must then be index lookups
	 * row by row, whatever the planner guesses of the batch's size: a hash
	 * join would read the whole queue for every batch.
	 */
	SetConfigOption("plan_cache_mode", "force_generic_plan", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_hashjoin", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_mergejoin", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* and JIT compiling them for every batch would cost more than running them */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* each claim takes its snapshot after what it learns first (queue.c) */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * Nobody keeps the worker waiting on a row lock for long: a statement
	 * that must (a tenant's transaction holding its hook's row, say) fails
	 * after this, and its attempts are then recorded one by one.
	 */
	SetConfigOption("lock_timeout", "100", PGC_SUSET, PGC_S_OVERRIDE);
	/* the server's search_path must not change what our SQL means */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/* Step: after a SIGHUP, read the configuration again, and say so. */
static void
reload_configuration(void)
{
	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	/* curl keeps as many connections open as webhook.max_in_flight says */
	http_keep_connections();
	/*
	 * The settings it caches took their new values in their assign hooks,
	 * within ProcessConfigFile: publish that this worker runs with the
	 * reloaded configuration.
	 */
	webhook_slot_config_loaded(worker_slot);
}

/*
 * Whether a backlog's claim has waited BATCH_WAIT_MS for room, from the
 * first time it asked (record_and_claim() ends the wait).
 */
static bool
batch_waited(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (batch_wait_from == 0 || now < batch_wait_from)
		batch_wait_from = now;
	return now >= batch_wait_from + BATCH_WAIT_MS * INT64CONST(1000);
}

/*
 * Step: record what finished and claim what is due, in one short
 * transaction (exchange()), when either is due.  Claim when due and there
 * is room: as soon as there is any (latency), but working off a backlog,
 * a claim that no news, retry or poll made due waits until no more are
 * held than half what may be in flight, BATCH_WAIT_MS at most, so that
 * claims come in batches (throughput).  Exits when the extension was dropped.
 */
static void
record_and_claim(void)
{
	int			capacity = QUEUE_HOLD_FACTOR * webhook_max_in_flight;
	int			n_busy;
	int			limit = 0;
	long		record_wait_ms;
	int			claimed;
	bool		recording = !dlist_is_empty(&done);
	bool		may_claim;

	/* what a tenant holds beyond its share is room for the others' work */
	if (let_go_over_shares())
		claim_due = true;
	n_busy = http_in_flight() + n_waiting;

	/*
	 * what finished frees room, which work may wait for (or, for an ordered
	 * hook, its group): then claim with the record
	 */
	if (recording && (room_full || ordered_hooks))
		claim_due = true;
	may_claim = claim_due && webhook_enabled && capacity - n_busy >= 1;
	if (may_claim && (claim_now || !backlog || n_busy <= Max(1, webhook_max_in_flight / 2) ||
					  batch_waited()))
		limit = Min(capacity - n_busy, webhook_batch_size);
	else if (!may_claim)
		batch_wait_from = 0;	/* nothing waits for room */
	if (limit == 0 && !record_due(&record_wait_ms))
		return;

	claimed = exchange(limit);
	if (extension_gone)
	{
		ereport(LOG,
				(errmsg("webhook worker %d exits: the extension was dropped",
						worker_index + 1)));
		proc_exit(0);
	}
	if (limit > 0)
	{
		/*
		 * a full claim, a hook's read that stopped short of its log, or
		 * hooks left out of the reads, means a backlog: claim again as
		 * room allows (not after a failed exchange, whose claim may not
		 * have run: n_claims is the one before)
		 */
		backlog = claimed > 0 &&
			(claimed == limit || cursor_read_short(n_claims) || readers_cut);
		claim_due = backlog;
		claim_now = false;
		batch_wait_from = 0;
		room_full = some_room_full();
		last_claim = GetCurrentTimestamp();
	}
}

/*
 * Step: the chores, each when due: drop expired secrets, disable failing
 * hooks, a batch of pruning, forget transports idle for long.
 */
static void
do_chores(void)
{
	expire_secrets();
	adopt_cursors();
	check_health();
	next_prune = prune_step();
	transport_forget_idle(GetCurrentTimestamp());
}

/* How long the wait may last: until the first thing that will be due. */
static long
wait_timeout(void)
{
	int			n_busy = http_in_flight() + n_waiting;
	long		timeout;
	long		record_wait_ms;

	timeout = (claim_due && n_busy == 0 && webhook_enabled) ? 0 : POLL_INTERVAL_MS;
	if (catalog_current && record_due(&record_wait_ms))
		timeout = 0;
	else if (!dlist_is_empty(&done) && catalog_current)
		timeout = Min(timeout, record_wait_ms);
	if (next_retry_at != 0 && timeout > 0)
		timeout = Min(timeout, ms_until(next_retry_at));
	if (ordered_waiting && timeout > 0)
		timeout = Min(timeout, ms_until(ordered_claim_at));
	if (full_look_at != 0 && timeout > 0)
		timeout = Min(timeout, ms_until(full_look_at));
	if (next_start_at != 0 && timeout > 0)
		timeout = Min(timeout, ms_until(next_start_at));
	if (next_prune != 0 && timeout > 0)
		timeout = Min(timeout, ms_until(next_prune));
	if (batch_wait_from != 0 && timeout > 0)
		timeout = Min(timeout, ms_until(batch_wait_from + BATCH_WAIT_MS * INT64CONST(1000)));
	/*
	 * a backlog's claim, with room: no longer than its wait for a batch
	 * (nothing may finish to wake the worker: receivers that never answer)
	 */
	else if (claim_due && webhook_enabled &&
			 n_busy < QUEUE_HOLD_FACTOR * webhook_max_in_flight)
		timeout = Min(timeout, BATCH_WAIT_MS);
	return timeout;
}

/*
 * Step: wait on the latch and curl's sockets together until something is
 * due (http.c), let the finished requests go, and note whether a claim is
 * due: woken (a commit enqueued work, room was freed), a retry or the
 * ordered hooks' turn came, a full look is due, or a second passed.
 */
static void
wait_for_work(void)
{
	TimestampTz now;

	if (http_wait(wait_timeout(), &done))
		claim_due = claim_now = true;
	release_finished();
	now = GetCurrentTimestamp();
	if (next_retry_at != 0 && now >= next_retry_at)
	{
		claim_due = claim_now = true;
		next_retry_at = 0;
	}
	if (ordered_waiting && now >= ordered_claim_at)
	{
		claim_due = claim_now = true;
		ordered_waiting = false;
	}
	if (full_look_at != 0 && now >= full_look_at)
	{
		claim_due = claim_now = true;
		full_look_at = 0;
	}
	if (TimestampDifferenceExceeds(last_claim, now, POLL_INTERVAL_MS))
		claim_due = claim_now = true;
}

/*
 * The worker's entry point: join the database, then the loop, one named
 * step after another (see the top of the file).
 */
void
webhook_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	join_database(main_arg);
	pgstat_report_appname("webhook worker");
	set_session();

	request_cxt = AllocSetContextCreate(TopMemoryContext, "webhook requests",
										ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "webhook worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(loop_cxt);

	http_init();
	CacheRegisterRelcacheCallback(hooks_inval_callback, (Datum) 0);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		reload_configuration();
		MemoryContextReset(loop_cxt);

		record_and_claim();
		next_start_at = start_waiting();
		webhook_slot_report(worker_slot, http_in_flight(), n_held);
		do_chores();
		wait_for_work();
	}
}
