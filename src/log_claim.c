/*-------------------------------------------------------------------------
 *
 * log_claim.c
 *	  The commonest claim, event by event in C: the events of the hooks
 *	  the worker lists, read from the log's index from their positions,
 *	  ranked, kept within the rooms, weighed and rendered.
 *
 * Most claims read the logs of the hooks the worker lists and nothing
 * else: their writers' news, from the positions it holds or, for a hook
 * it holds none of, from the stored cursor (queue.c's CLAIM_HELD_LOG and
 * CLAIM_LISTED_LOG, of unordered hooks).  Which of those hooks are read,
 * and how many events each may take, is the claim's policy
 * (claim_policy.c, over the hooks' rows that queue.c reads).  What a claim
 * does for each event is done here.  Done by the statement (four
 * reads of the log a hook, then the ranking by tenant, transport and
 * tenant, the sizes and the bodies: five sorts and seven window functions
 * over rows of 49 columns), it cost about 15 µs a request, a third of the
 * worker's time at full rate; here, a few.
 *
 * The steps are the statement's (queue.c: FRESH, FRESH_CANDIDATES,
 * CLAIM_TAIL, CURSOR_AFTER), and their comments there say why:
 *	1. read each hook's log past its position, up to its take and one more,
 *	   which tells whether it has more (read_hook());
 *	2. rank its events: each tenant's first ones before its second ones,
 *	   a tenant's hooks in turn (rank_events());
 *	3. keep no more of a transport than its room, of a tenant than its
 *	   room, nor more than the claim's limit, ties at random
 *	   (keep_within_rooms());
 *	4. weigh each event kept, and keep a tenant's while the bodies taken of
 *	   it before are below its bytes (keep_within_bytes());
 *	5. render each that fits (or make its row a value, for a transform),
 *	   and tell where its reader's cursor is after it (log_claim_take()).
 *
 * The log is read as the statement reads it: by event_log_idx (tenant,
 * txid, id) of each of its slots, through the snapshot of the claim, which
 * the cursor that it moves names (pg_current_snapshot()).  A cursor's lo
 * and hi are pg_snapshot texts, "xmin:xmax:xip,...", as cursor.c holds
 * them.
 *
 * IDENTIFICATION
 *	  src/log_claim.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/tupconvert.h"
#include "catalog/namespace.h"
#include "common/pg_prng.h"
#include "executor/tuptable.h"
#include "log_claim.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "render.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

/* webhook.event and its slots (src/sql/catalog/20_tables.sql) */
#define LOG_SLOTS 4

/* the columns of an event read here */
typedef enum EventAtt
{
	ATT_ID,
	ATT_UID,
	ATT_TENANT,
	ATT_EVENT_TYPE,
	ATT_RESOURCE,
	ATT_RESOURCE_ID,
	ATT_PAYLOAD,
	ATT_PREVIOUS,
	ATT_CREATED_AT,
	ATT_TXID,
	ATT_HOOK_IDS,
	EVENT_ATTS
} EventAtt;

static const char *const event_att_names[EVENT_ATTS] = {
	"id", "uid", "tenant", "event_type", "resource", "resource_id", "payload",
	"previous", "created_at", "txid", "hook_ids"
};

/*
 * A slot of the log, open for the claim: its table, its event_log_idx and
 * a scan of it, restarted with new keys for each read, and its columns'
 * numbers (a slot's may differ from webhook.event's: columns dropped by an
 * upgrade).
 */
typedef struct LogSlot
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	att[EVENT_ATTS];
	bool		map_made;
	TupleConversionMap *map;	/* its rows to webhook.event's (event_row()),
								 * NULL: the same */
} LogSlot;

/* a pg_snapshot, from its text */
typedef struct TxSnapshot
{
	uint64		xmin;
	uint64		xmax;
	int			nxip;
	uint64	   *xip;			/* ascending */
} TxSnapshot;

/* An event read, and what the claim makes of it. */
typedef struct LogEvent
{
	int			reader;
	int			part;			/* 1: within the interval, 2: past hi */
	uint64		txid;
	int64		id;
	int			slot;
	HeapTuple	tuple;
	int64		rank;			/* in its reader's read, from 1 */
	int64		n_read;			/* the events its reader read */
	int64		turn;			/* its place among its tenant's (step 2) */
	double		tie;			/* at random, among other tenants' of its turn */
	int64		size;			/* as stored (STORED_SIZE) */
	bool		fits;
	int64		held;			/* its body's bytes, when it fits (BODY_SIZE) */
} LogEvent;

/* The claim: its readers, the log's slots, what it read and keeps. */
struct LogClaim
{
	LogReader  *readers;
	LogSlot		slots[LOG_SLOTS];
	bool		reading;		/* its snapshot pushed, its scans begun */
	LogEvent   *found;			/* one read of the slots' (read_slots()) */
	LogEvent   *events;			/* what it read, hook by hook */
	int			n_events;
	int			max_events;
	LogEvent  **kept;			/* in turn order */
	int			n_tenants;		/* the readers' tenant_no are 1 to this */
	char	   *snapshot;		/* the claim's, as text */
	int64		top_id;			/* the log's last event id; -1: not read yet */
	MemoryContext cxt;			/* the claim's own, to log_claim_end() */
	MemoryContext scratch;		/* for one event's weighing or rendering */
};

/* Parse a pg_snapshot's text. */
static void
parse_snapshot(const char *text, TxSnapshot *snap)
{
	const char *p = text;
	char	   *end;

	snap->xmin = strtou64(p, &end, 10);
	if (*end != ':')
		goto bad;
	snap->xmax = strtou64(end + 1, &end, 10);
	if (*end != ':')
		goto bad;
	snap->xip = palloc(sizeof(uint64) * (strlen(end) / 2 + 1));
	snap->nxip = 0;
	for (p = end + 1; *p; p = end)
	{
		snap->xip[snap->nxip++] = strtou64(p, &end, 10);
		if (end == p || (*end != ',' && *end != '\0'))
			goto bad;
		if (*end == ',')
			end++;
	}
	return;
bad:
	elog(ERROR, "a cursor's snapshot is not valid: \"%s\"", text);
}

/* qsort() and bsearch() comparator of uint64s */
static int
cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/* pg_visible_in_snapshot(): did snap see txid committed (or aborted)? */
static bool
visible_in(const TxSnapshot *snap, uint64 txid)
{
	if (txid < snap->xmin)
		return true;
	if (txid >= snap->xmax)
		return false;
	return bsearch(&txid, snap->xip, snap->nxip, sizeof(uint64), cmp_uint64) == NULL;
}

/* Open the log's slots, and lock them. */
static void
open_slots(LogClaim *c)
{
	Oid			webhook = get_namespace_oid("webhook", false);
	Oid			internal = get_namespace_oid("webhook_internal", false);
	int			s;

	for (s = 0; s < LOG_SLOTS; s++)
	{
		LogSlot    *slot = &c->slots[s];
		char		name[NAMEDATALEN];
		char		index_name[NAMEDATALEN];
		Oid			ns = s == 0 ? webhook : internal;
		Oid			relid;
		Oid			indexid;
		int			a;

		if (s == 0)
		{
			strlcpy(name, "event", sizeof(name));
			strlcpy(index_name, "event_log_idx", sizeof(index_name));
		}
		else
		{
			snprintf(name, sizeof(name), "event_%d", s);
			snprintf(index_name, sizeof(index_name), "event_%d_log_idx", s);
		}
		relid = get_relname_relid(name, ns);
		indexid = get_relname_relid(index_name, ns);
		if (!OidIsValid(relid) || !OidIsValid(indexid))
			elog(ERROR, "slot %d of the event log is missing", s);
		slot->heap = table_open(relid, AccessShareLock);
		slot->index = index_open(indexid, AccessShareLock);
		for (a = 0; a < EVENT_ATTS; a++)
		{
			slot->att[a] = attnameAttNum(slot->heap, event_att_names[a], false);
			if (slot->att[a] == InvalidAttrNumber)
				elog(ERROR, "column \"%s\" of %s is missing", event_att_names[a],
					 RelationGetRelationName(slot->heap));
		}
		slot->slot = table_slot_create(slot->heap, NULL);
	}
}

/*
 * Begin each slot's scan, through the claim's snapshot.  The slots are
 * locked first (open_slots()), as a statement's tables are before its
 * snapshot is taken: a claim whose snapshot came first, waiting for a
 * rotation's TRUNCATE of a slot, would then find the slot empty, and the
 * events copied out of it to the current slot not yet committed, and move
 * its cursors past them.
 */
static void
begin_scans(LogClaim *c)
{
	int			s;

	for (s = 0; s < LOG_SLOTS; s++)
		c->slots[s].scan = index_beginscan(c->slots[s].heap, c->slots[s].index,
										   GetActiveSnapshot(), 3, 0);
}

/* Close the slots (their locks are kept to the transaction's end). */
static void
close_slots(LogClaim *c)
{
	int			s;

	for (s = 0; s < LOG_SLOTS; s++)
	{
		if (c->reading)
			index_endscan(c->slots[s].scan);
		ExecDropSingleTupleTableSlot(c->slots[s].slot);
		index_close(c->slots[s].index, NoLock);
		table_close(c->slots[s].heap, NoLock);
	}
}

/*
 * Whether the event's hook_ids name the hook.  What it allocates (the
 * array, read whole) is the caller's to free.
 */
static bool
names_hook(Datum hook_ids, bool isnull, int64 hook_id)
{
	ArrayType  *ids;
	const int64 *values;
	int			n;
	int			i;

	if (isnull)
		return false;
	ids = DatumGetArrayTypeP(hook_ids);
	if (ARR_NDIM(ids) != 1 || ARR_HASNULL(ids))
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(ids, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		for (i = 0; i < n; i++)
			if (!nulls[i] && DatumGetInt64(elems[i]) == hook_id)
				return true;
		return false;
	}
	/* ARR_DATA_PTR(), for an array without nulls */
	values = (const int64 *) ((const char *) ids + ARR_OVERHEAD_NONULLS(1));
	n = ARR_DIMS(ids)[0];
	for (i = 0; i < n; i++)
		if (values[i] == hook_id)
			return true;
	return false;
}

/* qsort() comparator of events by (txid, id) */
static int
cmp_log_order(const void *a, const void *b)
{
	const LogEvent *x = (const LogEvent *) a;
	const LogEvent *y = (const LogEvent *) b;

	if (x->txid != y->txid)
		return x->txid < y->txid ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Up to need events of the reader's tenant and hook, by event_log_idx of
 * each slot: of the transaction from past the id after_id (keyed), or of
 * the transactions from "from" on and below "below"; with only_seen, only
 * those of transactions it saw committed.  In (txid, id) order, appended
 * to the claim's events as of part: each slot gives its first need (into
 * found, room for LOG_SLOTS times the most any reader needs), and the
 * first need of them all are kept.
 */
static int
read_slots(LogClaim *c, int reader, int part, bool keyed, uint64 from, uint64 below,
		   int64 after_id, const TxSnapshot *only_seen, int need)
{
	LogReader  *r = &c->readers[reader];
	LogEvent   *out = c->found;
	int			n = 0;
	int			s;
	int			i;

	if (need <= 0 || from >= below)
		return 0;
	for (s = 0; s < LOG_SLOTS; s++)
	{
		LogSlot    *slot = &c->slots[s];
		IndexScanDesc scan = slot->scan;
		ScanKeyData keys[3];
		int			got = 0;

		ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
							   slot->index->rd_indcollation[0], F_TEXTEQ, r->tenant_text);
		if (keyed)
		{
			ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_XID8EQ,
						FullTransactionIdGetDatum(FullTransactionIdFromU64(from)));
			ScanKeyInit(&keys[2], 3, BTGreaterStrategyNumber, F_INT8GT,
						Int64GetDatum(after_id));
		}
		else
		{
			ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_XID8GE,
						FullTransactionIdGetDatum(FullTransactionIdFromU64(from)));
			ScanKeyInit(&keys[2], 2, BTLessStrategyNumber, F_XID8LT,
						FullTransactionIdGetDatum(FullTransactionIdFromU64(below)));
		}
		index_rescan(scan, keys, 3, NULL, 0);
		while (got < need && index_getnext_slot(scan, ForwardScanDirection, slot->slot))
		{
			LogEvent   *e = &out[n];
			MemoryContext old;
			bool		isnull;
			bool		named;
			Datum		hook_ids;

			CHECK_FOR_INTERRUPTS();
			e->txid = U64FromFullTransactionId(DatumGetFullTransactionId(
				slot_getattr(slot->slot, slot->att[ATT_TXID], &isnull)));
			if (only_seen != NULL && !visible_in(only_seen, e->txid))
				continue;
			hook_ids = slot_getattr(slot->slot, slot->att[ATT_HOOK_IDS], &isnull);
			old = MemoryContextSwitchTo(c->scratch);
			named = names_hook(hook_ids, isnull, r->hook_id);
			MemoryContextSwitchTo(old);
			MemoryContextReset(c->scratch);
			if (!named)
				continue;
			e->id = DatumGetInt64(slot_getattr(slot->slot, slot->att[ATT_ID], &isnull));
			e->reader = reader;
			e->part = part;
			e->slot = s;
			e->tuple = ExecCopySlotHeapTuple(slot->slot);
			got++;
			n++;
		}
	}
	if (n > need || (n > 1 && out[0].slot != out[n - 1].slot))
		qsort(out, n, sizeof(LogEvent), cmp_log_order);
	for (i = need; i < n; i++)
		heap_freetuple(out[i].tuple);
	n = Min(n, need);
	if (c->n_events + n > c->max_events)
	{
		c->max_events = Max(2 * c->max_events, c->n_events + n);
		c->events = repalloc(c->events, sizeof(LogEvent) * c->max_events);
	}
	memcpy(c->events + c->n_events, out, sizeof(LogEvent) * n);
	c->n_events += n;
	return n;
}

/*
 * One arm of a hook's read: up to need events of the transactions from
 * "from" on and below "below", past the key (key_txid, key_id) (with
 * only_seen, as read_slots()).  Past the key is a keyed read of the key's
 * transaction, then a read of the later ones: read as a range and skipped
 * up to the key, a backlog of one transaction was read from its first
 * event at every claim (test_fairness).
 */
static int
read_arm(LogClaim *c, int reader, int part, uint64 from, uint64 below,
		 uint64 key_txid, int64 key_id, const TxSnapshot *only_seen, int need)
{
	int			n = 0;

	if (key_txid == from && from < below)
	{
		n = read_slots(c, reader, part, true, from, below, key_id, only_seen, need);
		from++;
	}
	return n + read_slots(c, reader, part, false, from, below, 0, only_seen, need - n);
}

/*
 * Step 1: read a hook's log past its position, up to its take and one
 * more, in the statement's order (FRESH): first the rest of the interval
 * between lo and hi (transactions lo showed in progress, then those from
 * its xmax on, that hi shows committed: part 1), then what hi did not
 * show committed (part 2); each by the transactions its snapshot showed in
 * progress, by key, then as a range.
 */
static void
read_hook(LogClaim *c, int reader)
{
	LogReader  *r = &c->readers[reader];
	TxSnapshot	lo;
	TxSnapshot	hi;
	int			need = (int) r->take + 1;
	int			first = c->n_events;
	int			i;

	parse_snapshot(r->lo, &lo);
	parse_snapshot(r->hi, &hi);
	for (i = 0; i < lo.nxip; i++)
		if (lo.xip[i] >= r->last_txid && visible_in(&hi, lo.xip[i]))
			need -= read_arm(c, reader, 1, lo.xip[i], lo.xip[i] + 1,
							 r->last_txid, r->last_id, NULL, need);
	need -= read_arm(c, reader, 1, Max(lo.xmax, r->last_txid), hi.xmax,
					 r->last_txid, r->last_id, &hi, need);
	for (i = 0; i < hi.nxip; i++)
		need -= read_arm(c, reader, 2, hi.xip[i], hi.xip[i] + 1, 0, -1, NULL, need);
	need -= read_arm(c, reader, 2, hi.xmax, PG_UINT64_MAX, 0, -1, NULL, need);

	for (i = first; i < c->n_events; i++)
	{
		c->events[i].rank = i - first + 1;
		c->events[i].n_read = c->n_events - first;
	}
}

/* qsort() comparator of events by tenant, rank and hook (step 2) */
static int
cmp_tenant_rank(const void *a, const void *b, void *arg)
{
	const LogEvent *x = *(LogEvent *const *) a;
	const LogEvent *y = *(LogEvent *const *) b;
	const LogReader *readers = (const LogReader *) arg;
	int			tx = readers[x->reader].tenant_no;
	int			ty = readers[y->reader].tenant_no;

	if (tx != ty)
		return tx < ty ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (readers[x->reader].hook_id > readers[y->reader].hook_id) -
		(readers[x->reader].hook_id < readers[y->reader].hook_id);
}

/*
 * Step 2: each event within its reader's take, its turn among its
 * tenant's: by rank, then hook (FRESH_CANDIDATES: the due time it is
 * given, a microsecond for each turn).  Returns the events, in order.
 */
static LogEvent **
rank_events(LogClaim *c, int *n)
{
	LogEvent  **ranked = palloc(sizeof(LogEvent *) * Max(c->n_events, 1));
	int			i;

	*n = 0;
	for (i = 0; i < c->n_events; i++)
		if (c->events[i].rank <= c->readers[c->events[i].reader].take)
			ranked[(*n)++] = &c->events[i];
	qsort_arg(ranked, *n, sizeof(LogEvent *), cmp_tenant_rank, c->readers);
	for (i = 0; i < *n; i++)
		ranked[i]->turn = (i > 0 && c->readers[ranked[i]->reader].tenant_no ==
						   c->readers[ranked[i - 1]->reader].tenant_no)
			? ranked[i - 1]->turn + 1 : 1;
	return ranked;
}

/* a group of readers, by a key of theirs: their transport, their tenant */
typedef int64 (*ReaderKey) (const LogReader *r);

static int64
transport_key(const LogReader *r)
{
	return r->transport_id;
}

static int64
tenant_key(const LogReader *r)
{
	return r->tenant_no;
}

/* the readers, and the key that groups them, for cmp_group_turn() */
typedef struct GroupOrder
{
	const LogReader *readers;
	ReaderKey	key;
} GroupOrder;

/* qsort() comparator of events by their readers' group, then turn */
static int
cmp_group_turn(const void *a, const void *b, void *arg)
{
	const LogEvent *x = *(LogEvent *const *) a;
	const LogEvent *y = *(LogEvent *const *) b;
	const GroupOrder *order = (const GroupOrder *) arg;
	int64		kx = order->key(&order->readers[x->reader]);
	int64		ky = order->key(&order->readers[y->reader]);

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return (x->turn > y->turn) - (x->turn < y->turn);
}

/* qsort() comparator of events by turn, ties at random */
static int
cmp_turn(const void *a, const void *b)
{
	const LogEvent *x = *(LogEvent *const *) a;
	const LogEvent *y = *(LogEvent *const *) b;

	if (x->turn != y->turn)
		return x->turn < y->turn ? -1 : 1;
	return (x->tie > y->tie) - (x->tie < y->tie);
}

/*
 * Keep of the ranked events those whose place in their group (of the
 * readers of one key; from 1, by turn) is within room(), in place;
 * returns how many are kept.
 */
static int
keep_within(LogClaim *c, LogEvent **ranked, int n, ReaderKey key,
			int64 (*room) (const LogReader *))
{
	GroupOrder	order = {c->readers, key};
	int			kept = 0;
	int64		place = 0;
	int			i;

	qsort_arg(ranked, n, sizeof(LogEvent *), cmp_group_turn, &order);
	for (i = 0; i < n; i++)
	{
		const LogReader *r = &c->readers[ranked[i]->reader];

		place = (i > 0 && key(r) == key(&c->readers[ranked[i - 1]->reader])) ? place + 1 : 1;
		if (place <= room(r))
			ranked[kept++] = ranked[i];
	}
	return kept;
}

static int64
transport_room(const LogReader *r)
{
	return r->room;
}

static int64
tenant_room(const LogReader *r)
{
	return r->tenant_room;
}

/*
 * Step 3: no more of a transport than its room, then of a tenant than its
 * room, and no more than limit in all, by turn, ties at random (CLAIM_TAIL:
 * within_transports, picked).
 */
static int
keep_within_rooms(LogClaim *c, LogEvent **ranked, int n, int limit)
{
	int			i;

	n = keep_within(c, ranked, n, transport_key, transport_room);
	n = keep_within(c, ranked, n, tenant_key, tenant_room);
	for (i = 0; i < n; i++)
		ranked[i]->tie = pg_prng_double(&pg_global_prng_state);
	qsort(ranked, n, sizeof(LogEvent *), cmp_turn);
	return Min(n, limit);
}

/* a column of the event's row, read */
static Datum
event_att(LogClaim *c, LogEvent *e, EventAtt att, bool *isnull)
{
	LogSlot    *slot = &c->slots[e->slot];

	return heap_getattr(e->tuple, slot->att[att], RelationGetDescr(slot->heap), isnull);
}

/* octet_length() of a text column of the event, 0 for NULL */
static int64
text_bytes(LogClaim *c, LogEvent *e, EventAtt att)
{
	bool		isnull;
	Datum		value = event_att(c, e, att, &isnull);

	return isnull ? 0 : (int64) toast_raw_datum_size(value) - VARHDRSZ;
}

/*
 * Weigh an event (STORED_SIZE, BODY_SIZE): its stored size, from the
 * headers of its values, and, below webhook.max_body_bytes, the size its
 * body will have, counted up to that.
 */
static void
weigh_event(LogClaim *c, LogEvent *e)
{
	int64		max = webhook_max_body_bytes;
	bool		isnull;
	Datum		payload = event_att(c, e, ATT_PAYLOAD, &isnull);
	Datum		previous = event_att(c, e, ATT_PREVIOUS, &isnull);
	bool		no_previous = isnull;
	int64		resource = text_bytes(c, e, ATT_RESOURCE) + text_bytes(c, e, ATT_RESOURCE_ID);
	int64		event_type = text_bytes(c, e, ATT_EVENT_TYPE);
	int64		body;

	e->size = DatumGetInt64(DirectFunctionCall1(webhook_stored_bytes, payload)) +
		(no_previous ? 0 : DatumGetInt64(DirectFunctionCall1(webhook_stored_bytes, previous))) +
		resource + event_type + 256;
	e->fits = false;
	e->held = 0;
	if (e->size > max)
		return;
	body = DatumGetInt64(DirectFunctionCall2(webhook_rendered_bytes, payload,
											 Int64GetDatum(max))) +
		(no_previous ? 0 : DatumGetInt64(DirectFunctionCall2(webhook_rendered_bytes, previous,
															 Int64GetDatum(max)))) +
		2 * resource + event_type + 256;
	e->fits = body <= max;
	e->held = e->fits ? body : 0;
}

/*
 * Step 4: weigh each event kept, and keep a tenant's while the bodies
 * kept of it before are below its bytes, in turn (CLAIM_TAIL: claimed).
 * The events stay in turn order.
 */
static int
keep_within_bytes(LogClaim *c, LogEvent **ranked, int n)
{
	int64	   *before = palloc0(sizeof(int64) * (c->n_tenants + 1));
	MemoryContext old = CurrentMemoryContext;
	int			kept = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		LogEvent   *e = ranked[i];
		const LogReader *r = &c->readers[e->reader];

		MemoryContextSwitchTo(c->scratch);
		weigh_event(c, e);
		MemoryContextSwitchTo(old);
		MemoryContextReset(c->scratch);
		if (before[r->tenant_no] < r->tenant_bytes)
			ranked[kept++] = e;
		before[r->tenant_no] += e->held;
	}
	return kept;
}

/* webhook_internal.render_body() of an event for its reader */
static char *
render(LogClaim *c, LogEvent *e)
{
	LogReader  *r = &c->readers[e->reader];
	LOCAL_FCINFO(fcinfo, 10);
	static const EventAtt atts[] = {ATT_UID, ATT_TENANT, ATT_EVENT_TYPE, ATT_RESOURCE,
	ATT_RESOURCE_ID, ATT_PAYLOAD, ATT_PREVIOUS, ATT_CREATED_AT};
	Datum		body;
	int			i;

	InitFunctionCallInfoData(*fcinfo, NULL, 10, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(r->payload_format);
	fcinfo->args[0].isnull = false;
	for (i = 0; i < (int) lengthof(atts); i++)
		fcinfo->args[i + 1].value = event_att(c, e, atts[i], &fcinfo->args[i + 1].isnull);
	fcinfo->args[9].value = CStringGetTextDatum(r->uid);
	fcinfo->args[9].isnull = false;
	body = webhook_render_body(fcinfo);
	return fcinfo->isnull ? NULL : TextDatumGetCString(body);
}

/* The log's last event id, as the claim's snapshot shows it (once). */
static int64
log_top_id(LogClaim *c)
{
	int			s;

	MemoryContext old;

	if (c->top_id >= 0)
		return c->top_id;
	old = MemoryContextSwitchTo(c->cxt);
	c->top_id = 0;
	for (s = 0; s < LOG_SLOTS; s++)
	{
		Relation	key = index_open(RelationGetPrimaryKeyIndex(c->slots[s].heap),
									 AccessShareLock);
		IndexScanDesc scan = index_beginscan(c->slots[s].heap, key, GetActiveSnapshot(), 0, 0);
		bool		isnull;

		index_rescan(scan, NULL, 0, NULL, 0);
		if (index_getnext_slot(scan, BackwardScanDirection, c->slots[s].slot))
			c->top_id = Max(c->top_id,
							DatumGetInt64(slot_getattr(c->slots[s].slot,
													   c->slots[s].att[ATT_ID], &isnull)));
		index_endscan(scan);
		index_close(key, NoLock);
	}
	MemoryContextSwitchTo(old);
	return c->top_id;
}

/*
 * Where an event's reader's cursor is after it (CURSOR_AFTER): at the
 * claim's snapshot after the last of a read that took all there was; else
 * past the event, in the interval it was read from, or past hi.  Made in
 * the current memory context.
 */
static void
position_after(LogClaim *c, LogEvent *e, LogPosition *to)
{
	LogReader  *r = &c->readers[e->reader];
	bool		read_all = e->rank == e->n_read && e->n_read <= r->take;

	to->lo = pstrdup(read_all ? c->snapshot : e->part == 2 ? r->hi : r->lo);
	to->hi = pstrdup((read_all || e->part == 2) ? c->snapshot : r->hi);
	to->last_txid = read_all ? NULL : psprintf(UINT64_FORMAT, e->txid);
	to->last_id = read_all ? 0 : e->id;
	to->top_id = (read_all || e->part == 2) ? log_top_id(c) : r->top_id;
}

/*
 * The event's row, as a value of webhook.event's type, in the current
 * memory context: what a transform is given (EVENT_LOOKUP's
 * e::webhook.event).  A slot's row is made one of webhook.event (slot 0)
 * column by column, by a map made once a claim.
 */
static Datum
event_row(LogClaim *c, LogEvent *e)
{
	TupleDesc	event_desc = RelationGetDescr(c->slots[0].heap);
	LogSlot    *slot = &c->slots[e->slot];
	HeapTuple	tuple = e->tuple;
	MemoryContext old;

	if (!slot->map_made)
	{
		old = MemoryContextSwitchTo(c->cxt);
		slot->map = convert_tuples_by_name(RelationGetDescr(slot->heap), event_desc);
		slot->map_made = true;
		MemoryContextSwitchTo(old);
	}
	old = MemoryContextSwitchTo(c->scratch);
	if (slot->map != NULL)
		tuple = execute_attr_map_tuple(tuple, slot->map);
	MemoryContextSwitchTo(old);
	return heap_copy_tuple_as_datum(tuple, event_desc);
}

/*
 * Step 5, for the i-th event kept: its uid, its body when it fits (or,
 * for a hook with a transform, its row), and where its reader's cursor is
 * after it, in *t, made in cxt (the request's).  The body is rendered in
 * a context of its own, reset after it: an event's values read whole, the
 * text made of them, and the body are each as large as it is, up to
 * webhook.max_body_bytes.
 */
void
log_claim_take(LogClaim *c, int i, LogTaken *t, MemoryContext cxt)
{
	LogEvent   *e = c->kept[i];
	LogReader  *r = &c->readers[e->reader];
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bool		isnull;

	t->reader = e->reader;
	t->event_id = e->id;
	t->rank = e->rank;
	t->size = e->size;
	t->fits = e->fits;
	t->msg_id = uuid_text(event_att(c, e, ATT_UID, &isnull));
	t->body = NULL;
	t->event = (Datum) 0;
	if (e->fits && r->transform)
		t->event = event_row(c, e);
	else if (e->fits)
	{
		MemoryContextSwitchTo(c->scratch);
		t->body = render(c, e);
		if (t->body != NULL)
			t->body = MemoryContextStrdup(cxt, t->body);
		MemoryContextSwitchTo(cxt);
	}
	MemoryContextReset(c->scratch);
	position_after(c, e, &t->to);
	MemoryContextSwitchTo(old);
}

/*
 * Open a claim of the log: its slots locked, as a statement locks its
 * tables before it takes its snapshot, and before it locks any row
 * (queue.c's stored_positions_sql locks the stored cursors it reads: a
 * claim waiting for the slots behind a rotation would hold them
 * meanwhile).  In the current memory context, which must last until
 * log_claim_end().
 */
LogClaim *
log_claim_open(void)
{
	LogClaim   *c = palloc0(sizeof(LogClaim));

	c->top_id = -1;
	c->cxt = CurrentMemoryContext;
	c->scratch = AllocSetContextCreate(CurrentMemoryContext, "webhook log claim",
									   ALLOCSET_DEFAULT_SIZES);
	open_slots(c);
	return c;
}

/*
 * Claim up to limit events of the logs of the n_readers (at least one), as
 * the claim's statement did (queue.c), through a snapshot of its own:
 * steps 1 to 4.  Returns how many events it keeps, each of which
 * log_claim_take() makes a request of.
 */
int
log_claim_read(LogClaim *c, LogReader *readers, int n_readers, int limit)
{
	int64		most = 0;
	int			n;
	int			i;

	c->readers = readers;
	for (i = 0; i < n_readers; i++)
	{
		most = Max(most, readers[i].take + 1);
		c->n_tenants = Max(c->n_tenants, readers[i].tenant_no);
		readers[i].tenant_text = CStringGetTextDatum(readers[i].tenant);
	}
	c->found = palloc(sizeof(LogEvent) * most * LOG_SLOTS);
	c->max_events = (int) Min(most, 1024);
	c->events = palloc(sizeof(LogEvent) * c->max_events);

	PushActiveSnapshot(GetTransactionSnapshot());
	c->snapshot = DatumGetCString(DirectFunctionCall1(pg_snapshot_out,
													  DirectFunctionCall1(pg_current_snapshot,
																		  (Datum) 0)));
	begin_scans(c);
	c->reading = true;
	for (i = 0; i < n_readers; i++)
		read_hook(c, i);
	c->kept = rank_events(c, &n);
	n = keep_within_rooms(c, c->kept, n, limit);
	return keep_within_bytes(c, c->kept, n);
}

/* End the claim: its scans and slots closed, its snapshot popped. */
void
log_claim_end(LogClaim *c)
{
	close_slots(c);
	if (c->reading)
		PopActiveSnapshot();
	MemoryContextDelete(c->scratch);
}
