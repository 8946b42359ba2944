/*-------------------------------------------------------------------------
 *
 * enqueue.c
 *	  Append an event to the log, with the writer's transaction and the
 *	  hooks it goes to, which read it through their cursors once the
 *	  transaction has committed (src/queue.c, claim_sql), for the capture
 *	  trigger and webhook.emit().
 *
 * This is what a watched table's every INSERT, UPDATE and DELETE pays for
 * the extension, so it takes the short way: the rows are formed here and
 * inserted into the heap and the indexes directly (direct.c), with no
 * statement to plan or executor to start.  (An INSERT statement through
 * SPI spent most of the trigger's time on that, and on preparing
 * delivery's CHECK constraint anew for every statement.)  The values are
 * those the columns' defaults give: ids from their identity sequences, uid
 * a random uuid (new_uid(): strong random bytes, drawn many at a time),
 * created_at now(); all satisfy the constraints.
 * (A default an admin changed is not used: these are the extension's.)  An
 * event that goes to no hook has no transaction id: no cursor is to read
 * it.  An event goes to a hook whether it is active or not, ordered or
 * not: an inactive hook's cursor stays where the hook stopped, to read on
 * from there once it is re-enabled, and an ordered hook's claim keeps the
 * order as it reads (src/queue.c, FRESH_IN_ORDER).  webhook.delivery is
 * neither written nor locked by the writer.
 *
 * During an update, a library of 0.5 on a catalog before it (no txid and
 * hook_ids in webhook.event) writes as that catalog's did: the event and a
 * pending delivery per active hook, each due when it is inserted, after
 * the event row gave the transaction its id (the worker's claim relies on
 * that: src/queue.c, floors).
 *
 * The event log is written in its current slot (src/sql/catalog/20_tables.sql):
 * the table that inherits webhook.event for that slot, or webhook.event
 * itself for slot 0, learnt with the rest, and again once a rotation has
 * made another slot current (its trigger log_slot_changed invalidates
 * webhook_internal.log_slot's relcache entry).  A transaction that began
 * before that writes the slot it began with: the rotation empties a slot
 * only long after, and never while a writer holds it.  The short way
 * checks the table it writes, not webhook.event: a trigger an admin puts
 * on webhook.event fires for the rows of slot 0 only (and for the
 * statement's, which all go there).
 *
 * The short way is taken only for a plain table as this library made it
 * (direct.c).  Anything else (a column or trigger an admin added, a
 * catalog of another version during an upgrade) is written with the
 * INSERT statement, through SPI, which honours it.  What is known of each
 * table, its oid too, is kept until a relcache invalidation of it
 * (capture.c's callback passes them on: enqueue_forget_tables()).
 *
 * Caller runs as the extension's owner, connected to SPI.
 *
 * IDENTIFICATION
 *	  src/enqueue.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "direct.h"
#include "enqueue.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "spi_util.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

/* webhook.event's columns, in the order of event_values() */
enum
{
	EV_ID, EV_UID, EV_TENANT, EV_EVENT_TYPE, EV_RESOURCE, EV_RESOURCE_ID,
	EV_PAYLOAD, EV_PREVIOUS, EV_CREATED_AT, EV_TXID, EV_HOOK_IDS, EV_NEXT_TXID,
	N_EVENT_COLUMNS
};
static const DirectColumn event_columns[N_EVENT_COLUMNS] = {
	{"id", INT8OID, false}, {"uid", UUIDOID, false}, {"tenant", TEXTOID, false},
	{"event_type", TEXTOID, false}, {"resource", TEXTOID, true},
	{"resource_id", TEXTOID, true}, {"payload", JSONBOID, false},
	{"previous", JSONBOID, true}, {"created_at", TIMESTAMPTZOID, false},
	{"txid", XID8OID, true, true}, {"hook_ids", INT8ARRAYOID, true, true},
	{"next_txid", XID8OID, true, true}
};

/* webhook.delivery's columns, in the order of delivery_values() */
enum
{
	DL_ID, DL_EVENT_ID, DL_HOOK_ID, DL_STATE, DL_ATTEMPTS, DL_NEXT_ATTEMPT_AT,
	DL_LAST_STATUS, DL_LAST_ERROR, DL_CREATED_AT, DL_FINISHED_AT, N_DELIVERY_COLUMNS
};
static const DirectColumn delivery_columns[N_DELIVERY_COLUMNS] = {
	{"id", INT8OID, false}, {"event_id", INT8OID, false}, {"hook_id", INT8OID, false},
	{"state", TEXTOID, false}, {"attempts", INT4OID, false},
	{"next_attempt_at", TIMESTAMPTZOID, false}, {"last_status", INT4OID, true},
	{"last_error", TEXTOID, true}, {"created_at", TIMESTAMPTZOID, false},
	{"finished_at", TIMESTAMPTZOID, true}
};

/* What the short way knows of one table of the queue. */
typedef struct QueueTable
{
	const char *name;			/* in schema webhook */
	DirectLayout layout;		/* learnt of relid */
	Oid			relid;			/* the table written, what the rest was learnt
								 * of: for the event log, its current slot's */
	Oid			named_relid;	/* the table of that name */
	Oid			slots_relid;	/* the event log's webhook_internal.log_slot */
	bool		valid;			/* false: learn it again */
	uint64		forgotten;		/* how often it was made not valid */
	Oid			id_seq;			/* the identity sequence of column "id" (of the
								 * named table: a slot's has none) */
} QueueTable;

static QueueTable event_table = {"event", {event_columns, N_EVENT_COLUMNS, NULL}};
static QueueTable delivery_table = {"delivery", {delivery_columns, N_DELIVERY_COLUMNS,
"delivery_state_check"}};
static SPIPlanPtr statement_plan = NULL;
static SPIPlanPtr log_statement_plan = NULL;

/*
 * A change to a queue table, to the event log's slots (a rotation made
 * another current), or to every relation: learnt again.
 */
void
enqueue_forget_tables(Oid relid)
{
	if (relid == InvalidOid || relid == event_table.relid ||
		relid == event_table.named_relid || relid == event_table.slots_relid)
	{
		event_table.valid = false;
		event_table.forgotten++;
	}
	if (relid == InvalidOid || relid == delivery_table.relid ||
		relid == delivery_table.named_relid)
	{
		delivery_table.valid = false;
		delivery_table.forgotten++;
	}
}

/*
 * The event log's current slot (src/sql/catalog/20_tables.sql), or -1 when
 * none is.  Read with the latest snapshot, not the statement's: a rotation
 * committed since the statement began has sent its invalidation already
 * (it may be what made us look), and the slot it made current is the one
 * to learn.  Caller is connected to SPI.
 */
static int
current_log_slot(void)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Datum		slot;

	spi_check(SPI_execute_snapshot(spi_kept_plan(&plan,
												 "SELECT s.slot FROM webhook_internal.log_slot s"
												 " WHERE s.current_from IS NOT NULL"
												 "   AND s.current_until IS NULL", 0, NULL, 0),
								   NULL, NULL, GetLatestSnapshot(), InvalidSnapshot,
								   true, false, 1),
			  SPI_OK_SELECT, false, "reading the event log's current slot");
	if (SPI_processed == 0)
		return -1;
	slot = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : DatumGetInt16(slot);
}

/*
 * The table of the event log's current slot: webhook.event itself (named)
 * for slot 0, or when there are no slots (a catalog before 0.5) or no such
 * table; for another slot, the table that inherits it, written alone: a
 * writer takes no lock on webhook.event then, so that it never waits for
 * the rotation emptying slot 0.  A change of slot makes us learn again
 * (slots_relid: log_slot_changed invalidates it).
 */
static Oid
current_slot_table(QueueTable *qt, Oid named)
{
	Oid			internal = get_namespace_oid("webhook_internal", true);
	int			slot;
	Oid			relid;

	qt->slots_relid = OidIsValid(internal) ? get_relname_relid("log_slot", internal)
		: InvalidOid;
	if (!OidIsValid(qt->slots_relid) || (slot = current_log_slot()) <= 0)
		return named;
	relid = get_relname_relid(psprintf("event_%d", slot), internal);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return named;
	return relid;
}

/*
 * Open the queue table (RowExclusiveLock): the one known, unless a change
 * to it came in while it was locked; else the one of that name, learnt, or
 * for the event log the table of its current slot.  NULL when there is no
 * such plain table (a partitioned one, a view): the statement will deal
 * with it.
 */
static Relation
open_queue_table(QueueTable *qt)
{
	Relation	rel = NULL;
	Oid			relid;
	uint64		forgotten;

	if (qt->valid)
	{
		rel = try_table_open(qt->relid, RowExclusiveLock);
		if (rel != NULL && qt->valid)
			return rel;
		if (rel != NULL)
			table_close(rel, RowExclusiveLock);
	}
	relid = get_relname_relid(qt->name, get_namespace_oid("webhook", true));
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		return NULL;
	forgotten = qt->forgotten;
	qt->named_relid = relid;
	qt->slots_relid = InvalidOid;
	if (qt == &event_table)
		relid = current_slot_table(qt, relid);
	rel = table_open(relid, RowExclusiveLock);
	qt->relid = relid;
	direct_learn(&qt->layout, rel);
	/* a slot's table has no identity: the named table's is the log's */
	qt->id_seq = getIdentitySequence(qt->named_relid,
									 get_attnum(qt->named_relid, "id"), true);
	qt->layout.direct = qt->layout.direct && OidIsValid(qt->id_seq);
	/* an invalidation that came in while we learnt: learn again next time */
	qt->valid = (qt->forgotten == forgotten);
	return rel;
}

/* uids drawn from one call for strong random bytes (1 kB) */
#define UID_POOL 64

/*
 * A new random (version 4) uuid, as gen_random_uuid() makes one, its bytes
 * taken from a pool of this process's, filled from strong randomness
 * UID_POOL uids at a time.  gen_random_uuid() asks for 16 bytes at each
 * call, and most of a call's cost is the call's: 5 % of a CPU-bound
 * writer's time (perf).  The bytes are strong random ones still: a
 * receiver that sees some uids can tell nothing of the others (another
 * tenant's events, made by the same session), as it could from those of
 * a generator seeded once.  A child process never draws from its
 * parent's pool: the pool goes with the pid that filled it.
 */
static Datum
new_uid(void)
{
	static uint8 pool[UID_POOL * UUID_LEN];
	static int	pool_left = 0;
	static int	pool_pid = 0;
	pg_uuid_t  *uid = palloc(sizeof(pg_uuid_t));

	if (pool_left == 0 || pool_pid != MyProcPid)
	{
		if (!pg_strong_random(pool, sizeof(pool)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		pool_left = UID_POOL;
		pool_pid = MyProcPid;
	}
	pool_left--;
	memcpy(uid->data, pool + pool_left * UUID_LEN, UUID_LEN);
	uid->data[6] = (uid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uid->data[8] = (uid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uid);
}

/*
 * An event's next_txid: the next transaction id to be assigned, read after
 * the row the event is about was written and locked, and after the
 * event's id was taken, the writer's own id taken before that; null (the
 * one after the writer's: no transaction began since) when it tells
 * nothing.  Every event of a lower id has a lower transaction id, and so
 * has every transaction committed by then: an ordered hook's claim looks
 * between the two (src/queue.c, EARLIER_UNREAD).
 */
static Datum
next_txid(bool *isnull)
{
	FullTransactionId next = ReadNextFullTransactionId();

	*isnull = U64FromFullTransactionId(next) ==
		U64FromFullTransactionId(GetTopFullTransactionId()) + 1;
	return FullTransactionIdGetDatum(next);
}

/* The hooks' ids as a bigint[] */
static Datum
hook_id_array(const Datum *hook_ids, int n_hooks)
{
	return PointerGetDatum(construct_array((Datum *) hook_ids, n_hooks, INT8OID,
										   sizeof(int64), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * The old values of the changed columns, as an object of old_row's
 * members of those names (null for one it lacks).
 */
static Datum
previous_values(Jsonb *old_row, ArrayType *changed)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	Datum	   *names;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(changed, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
	{
		text	   *name = DatumGetTextPP(names[i]);
		JsonbValue	key;
		JsonbValue	null_value;
		JsonbValue *value;

		key.type = jbvString;
		key.val.string.val = VARDATA_ANY(name);
		key.val.string.len = VARSIZE_ANY_EXHDR(name);
		value = getKeyJsonValueFromContainer(&old_row->root, key.val.string.val,
											 key.val.string.len, NULL);
		if (value == NULL)
		{
			null_value.type = jbvNull;
			value = &null_value;
		}
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, value);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/*
 * The short way: the rows formed here, into the tables and their indexes:
 * the event with its transaction and the n_read hooks that read it
 * (read_ids), and the pending deliveries to the n_made hooks made_ids (a
 * catalog before 0.5).
 */
static Datum
enqueue_directly(const NewEvent *ev, const Datum *read_ids, int n_read,
				 const Datum *made_ids, int n_made, Relation event_rel, Relation delivery_rel)
{
	EState	   *estate = CreateExecutorState();
	DirectInsert ins;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	Datum		ev_values[N_EVENT_COLUMNS];
	bool		ev_nulls[N_EVENT_COLUMNS] = {false};
	Datum		dl_values[N_DELIVERY_COLUMNS];
	bool		dl_nulls[N_DELIVERY_COLUMNS] = {false};
	int			i;

	estate->es_output_cid = GetCurrentCommandId(true);
	direct_begin(&ins, estate, event_rel);

	ev_nulls[EV_TXID] = ev_nulls[EV_HOOK_IDS] = ev_nulls[EV_NEXT_TXID] = (n_read == 0);
	/* the writer's transaction id is taken before the event's (next_txid()) */
	if (n_read > 0)
		ev_values[EV_TXID] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	ev_values[EV_ID] = Int64GetDatum(nextval_internal(event_table.id_seq, false));
	if (n_read > 0)
	{
		ev_values[EV_HOOK_IDS] = hook_id_array(read_ids, n_read);
		ev_values[EV_NEXT_TXID] = next_txid(&ev_nulls[EV_NEXT_TXID]);
	}
	ev_values[EV_UID] = new_uid();
	ev_values[EV_TENANT] = CStringGetTextDatum(ev->tenant);
	ev_values[EV_EVENT_TYPE] = CStringGetTextDatum(ev->event_type);
	ev_values[EV_RESOURCE] = text_or_null(ev->resource, &ev_nulls[EV_RESOURCE]);
	ev_values[EV_RESOURCE_ID] = text_or_null(ev->resource_id, &ev_nulls[EV_RESOURCE_ID]);
	ev_values[EV_PAYLOAD] = ev->payload;
	ev_nulls[EV_PREVIOUS] = (ev->changed == NULL);
	ev_values[EV_PREVIOUS] = ev->changed == NULL ? (Datum) 0
		: previous_values(DatumGetJsonbP(ev->old_row), ev->changed);
	ev_values[EV_CREATED_AT] = now;
	direct_insert(&event_table.layout, &ins, ev_values, ev_nulls);
	direct_end(&ins);
	Assert(TransactionIdIsValid(GetTopTransactionIdIfAny()));

	if (n_made > 0)
	{
		direct_begin(&ins, estate, delivery_rel);
		dl_values[DL_EVENT_ID] = ev_values[EV_ID];
		dl_values[DL_STATE] = CStringGetTextDatum("pending");
		dl_values[DL_ATTEMPTS] = Int32GetDatum(0);
		dl_values[DL_NEXT_ATTEMPT_AT] = TimestampTzGetDatum(GetCurrentTimestamp());
		dl_nulls[DL_LAST_STATUS] = dl_nulls[DL_LAST_ERROR] = true;
		dl_values[DL_CREATED_AT] = now;
		dl_nulls[DL_FINISHED_AT] = true;
		for (i = 0; i < n_made; i++)
		{
			dl_values[DL_ID] = Int64GetDatum(nextval_internal(delivery_table.id_seq, false));
			dl_values[DL_HOOK_ID] = made_ids[i];
			direct_insert(&delivery_table.layout, &ins, dl_values, dl_nulls);
		}
		direct_end(&ins);
	}

	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	return ev_values[EV_UID];
}

/*
 * The long way: one statement, which honours whatever the tables have
 * become: the event with the hooks that read it ($8), its transaction and
 * next_txid ($10, $11: read before the statement takes the event's id,
 * which is as good for an earlier event of the same row, committed by
 * then), or, on a catalog before 0.5, which has no such columns
 * (statement_sql), with the deliveries made with it ($9).
 */
#define EVENT_VALUES \
"  SELECT $1, $2, $3, $4, $5," \
"    (SELECT pg_catalog.jsonb_object_agg(c, $6 OPERATOR(pg_catalog.->) c)" \
"       FROM pg_catalog.unnest($7) c)"
static const char *log_statement_sql =
"WITH e AS ("
"  INSERT INTO webhook.event"
"    (tenant, event_type, resource, resource_id, payload, previous, hook_ids, txid,"
"     next_txid)"
EVENT_VALUES ", $8, $10, $11"
"  RETURNING uid)"
"SELECT uid FROM e";
static const char *statement_sql =
"WITH e AS ("
"  INSERT INTO webhook.event"
"    (tenant, event_type, resource, resource_id, payload, previous)"
EVENT_VALUES
"  RETURNING id, uid),"
" d AS ("
"  INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at)"
"  SELECT e.id, m.h, pg_catalog.clock_timestamp()"
"    FROM e, pg_catalog.unnest($9) m(h))"
"SELECT uid FROM e";

static Datum
enqueue_by_statement(const NewEvent *ev, const Datum *read_ids, int n_read,
					 const Datum *made_ids, int n_made, bool log)
{
	Oid			types[11] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	JSONBOID, JSONBOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, XID8OID, XID8OID};
	Datum		values[11];
	char		nulls[11];
	bool		isnull;
	SPIPlanPtr	plan = log ? spi_kept_plan(&log_statement_plan, log_statement_sql, 11, types, 0)
		: spi_kept_plan(&statement_plan, statement_sql, 11, types, 0);

	memset(nulls, ' ', sizeof(nulls));
	values[0] = text_or_null(ev->tenant, &isnull);
	values[1] = text_or_null(ev->event_type, &isnull);
	values[2] = text_or_null(ev->resource, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	values[3] = text_or_null(ev->resource_id, &isnull);
	nulls[3] = isnull ? 'n' : ' ';
	values[4] = ev->payload;
	values[5] = ev->old_row;
	nulls[5] = ev->changed ? ' ' : 'n';
	values[6] = PointerGetDatum(ev->changed);
	nulls[6] = ev->changed ? ' ' : 'n';
	values[7] = n_read == 0 ? (Datum) 0 : hook_id_array(read_ids, n_read);
	nulls[7] = n_read == 0 ? 'n' : ' ';
	values[8] = hook_id_array(made_ids, n_made);
	/* the event's id is taken by the statement: next_txid is read before */
	nulls[9] = nulls[10] = 'n';
	if (n_read > 0)
	{
		values[9] = FullTransactionIdGetDatum(GetTopFullTransactionId());
		nulls[9] = ' ';
		values[10] = next_txid(&isnull);
		nulls[10] = isnull ? 'n' : ' ';
	}

	spi_check(SPI_execute_plan(plan, values, nulls, false, 1),
			  SPI_OK_SELECT, true, "inserting an event");
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * Has webhook.event the log's columns, all of them, as direct_learn() asks?
 * For a table the short way never learnt.
 */
static bool
event_has_log_columns(void)
{
	Oid			relid = get_relname_relid("event", get_namespace_oid("webhook", true));

	return OidIsValid(relid) && get_attnum(relid, "txid") != InvalidAttrNumber &&
		get_attnum(relid, "hook_ids") != InvalidAttrNumber &&
		get_attnum(relid, "next_txid") != InvalidAttrNumber;
}

/*
 * Store one event that goes to the n_hooks hooks (none: the event alone),
 * each active or not (active[i]); return the event's uid.  The workers are
 * woken when the transaction commits, if an active hook has anything to
 * send.  Caller looked up the hooks first (capture.c), which registered
 * the relcache callback that keeps what is known of the tables current.
 */
Datum
enqueue_event(const NewEvent *event, const Datum *hook_ids, const bool *active, int n_hooks)
{
	Relation	event_rel = open_queue_table(&event_table);
	bool		log = event_rel != NULL ? event_table.layout.log : event_has_log_columns();
	Datum	   *read_ids = palloc(sizeof(Datum) * Max(n_hooks, 1));
	Datum	   *made_ids = palloc(sizeof(Datum) * Max(n_hooks, 1));
	Datum	   *news_ids = palloc(sizeof(Datum) * Max(n_hooks, 1));
	int			n_read = 0;
	int			n_made = 0;
	int			n_news = 0;
	Relation	delivery_rel = NULL;
	Datum		uid;
	int			i;

	/*
	 * before 0.5 every delivery is made with its event, and an inactive hook
	 * has none
	 */
	for (i = 0; i < n_hooks; i++)
	{
		if (log)
			read_ids[n_read++] = hook_ids[i];
		else if (active[i])
			made_ids[n_made++] = hook_ids[i];
		if (active[i])
			news_ids[n_news++] = hook_ids[i];
	}
	if (n_made > 0)
		delivery_rel = open_queue_table(&delivery_table);

	if (event_rel != NULL && event_table.layout.direct &&
		(n_made == 0 || (delivery_rel != NULL && delivery_table.layout.direct)))
		uid = enqueue_directly(event, read_ids, n_read, made_ids, n_made,
							   event_rel, delivery_rel);
	else
		uid = enqueue_by_statement(event, read_ids, n_read, made_ids, n_made, log);
	if (delivery_rel != NULL)
		table_close(delivery_rel, NoLock);
	if (event_rel != NULL)
		table_close(event_rel, NoLock);

	webhook_wake_at_commit_for(news_ids, n_news, !log);
	return uid;
}
