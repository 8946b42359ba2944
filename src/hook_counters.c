/*-------------------------------------------------------------------------
 *
 * hook_counters.c
 *	  Adding a batch of first attempts that succeeded to their hooks'
 *	  counters (webhook.hook_metrics), without a statement.
 *
 * The commonest batch the worker records (record_read_batch() in queue.c:
 * requests read from the log, all answered with a 2xx) writes its attempt
 * rows (attempt_log.c) and adds them to its hooks' counters.  A statement
 * did that (record_read_sql), and starting its plan, an update, an upsert
 * and a read of the current slot, cost more than the counting: about a
 * quarter of a millisecond a batch, 4 % of the worker's CPU at full rate.
 * Here each hook is looked up by its key, and its row of counters found by
 * its key, locked and updated, as logical replication's apply updates a
 * row (RelationFindReplTupleByIndex(), ExecSimpleRelationUpdate()).
 *
 * Only the plain case is done here; anything else is left to the
 * statement, with nothing written: a hook of the batch whose run of
 * failures its success ends (its health to restore: housekeeping.c), a
 * hook with no row of counters yet, and tables that are not as the
 * extension made them (a trigger, forced row-level security, a column
 * missing or of another type).  Every row is found and locked before any
 * is updated, so that falling back never counts twice.
 *
 * IDENTIFICATION
 *	  src/hook_counters.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "hook_counters.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* A column of a table, by name, and its type: its number, or 0 */
static AttrNumber
column_of(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->atttypid == type ? att->attnum : 0;
	}
	return 0;
}

/*
 * Whether rel is a plain table of the extension's as it made it, to be
 * read, or with written to be written, without a statement: no forced
 * row-level security (the worker, its owner, is not held by the policies
 * otherwise), its primary key its first column alone, of name key, a
 * bigint; and to be written, no trigger.
 */
static bool
plain_table(Relation rel, const char *key, bool written)
{
	Oid			key_index = RelationGetPrimaryKeyIndex(rel);
	Relation	index;
	bool		plain;

	if (rel->rd_rel->relkind != RELKIND_RELATION || (written && rel->trigdesc != NULL) ||
		rel->rd_rel->relforcerowsecurity || !OidIsValid(key_index) ||
		column_of(rel, key, INT8OID) != 1)
		return false;
	index = index_open(key_index, AccessShareLock);
	plain = index->rd_index->indnkeyatts == 1 && index->rd_index->indkey.values[0] == 1;
	index_close(index, AccessShareLock);
	return plain;
}

/*
 * Which of the n hooks exist (exists[h]), read with snapshot; false when
 * one of them has a run of failures to end, or webhook.hook is not as the
 * extension made it.
 */
static bool
read_hooks(Relation hooks, Snapshot snapshot, int n, const int64 *hook_ids, bool *exists)
{
	AttrNumber	failing = column_of(hooks, "failing_since", TIMESTAMPTZOID);
	Oid			key_index = RelationGetPrimaryKeyIndex(hooks);
	int			h;

	if (!plain_table(hooks, "id", false) || failing == 0)
		return false;
	for (h = 0; h < n; h++)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;
		bool		isnull = true;

		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(hook_ids[h]));
		scan = systable_beginscan(hooks, key_index, true, snapshot, 1, &key);
		tup = systable_getnext(scan);
		exists[h] = HeapTupleIsValid(tup);
		if (exists[h])
			(void) heap_getattr(tup, failing, RelationGetDescr(hooks), &isnull);
		systable_endscan(scan);
		if (!isnull)
			return false;
	}
	return true;
}

/* The event log's current slot (webhook_internal.log_slot), or -1 */
static int
current_slot(Snapshot snapshot)
{
	Oid			nsp = get_namespace_oid("webhook_internal", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("log_slot", nsp) : InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	AttrNumber	slot_col;
	AttrNumber	from_col;
	AttrNumber	until_col;
	int			slot = -1;

	if (!OidIsValid(relid))
		return -1;
	rel = table_open(relid, AccessShareLock);
	slot_col = column_of(rel, "slot", INT2OID);
	from_col = column_of(rel, "current_from", TIMESTAMPTZOID);
	until_col = column_of(rel, "current_until", TIMESTAMPTZOID);
	if (rel->rd_rel->relkind == RELKIND_RELATION && slot_col && from_col && until_col)
	{
		scan = table_beginscan(rel, snapshot, 0, NULL);
		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			TupleDesc	desc = RelationGetDescr(rel);
			bool		from_null;
			bool		until_null;
			bool		slot_null;
			Datum		value = heap_getattr(tup, slot_col, desc, &slot_null);

			(void) heap_getattr(tup, from_col, desc, &from_null);
			(void) heap_getattr(tup, until_col, desc, &until_null);
			if (!slot_null && !from_null && until_null)
				slot = DatumGetInt16(value);
		}
		table_endscan(scan);
	}
	table_close(rel, NoLock);
	return slot;
}

/*
 * The buckets' array: old plus add, one by one; 0 when old is null, or not
 * a list of n_buckets numbers, or a sum overflows (the statement then says
 * what is wrong)
 */
static Datum
add_buckets(Datum old, bool isnull, const int64 *add, int n_buckets)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (isnull)
		return (Datum) 0;
	array = DatumGetArrayTypeP(old);
	if (ARR_NDIM(array) != 1 || ARR_ELEMTYPE(array) != INT8OID)
		return (Datum) 0;
	deconstruct_array(array, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	if (n != n_buckets)
		return (Datum) 0;
	for (i = 0; i < n; i++)
	{
		int64		sum;

		if (nulls[i] || pg_add_s64_overflow(DatumGetInt64(elems[i]), add[i], &sum))
			return (Datum) 0;
		elems[i] = Int64GetDatum(sum);
	}
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Add to the counters of the n hooks hook_ids[h] that exist their batch's
 * successes[h], duration_sums[h] (seconds) and buckets (n_buckets a hook,
 * one hook's after the other's); set exists[h] and *slot (the event log's
 * current slot, or -1).  Returns false, having written nothing (some rows
 * may be left locked, for the statement to update), when the statement
 * must do it (the file's comment says when); exists[] is then not to be
 * trusted.  Caller is in a transaction.
 */
bool
hook_counters_add(int n, const int64 *hook_ids, const int64 *successes,
				  const double *duration_sums, const int64 *buckets, int n_buckets,
				  bool *exists, int *slot)
{
	Oid			webhook_nsp = get_namespace_oid("webhook", true);
	Oid			hooks_relid = OidIsValid(webhook_nsp) ?
		get_relname_relid("hook", webhook_nsp) : InvalidOid;
	Oid			counters_relid = OidIsValid(webhook_nsp) ?
		get_relname_relid("hook_metrics", webhook_nsp) : InvalidOid;
	Relation	hooks;
	Relation	counters;
	AttrNumber	successes_col;
	AttrNumber	sum_col;
	AttrNumber	buckets_col;
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epqstate;
	TupleTableSlot **found;
	TupleTableSlot *search;
	TupleTableSlot *updated;
	int64	   *new_successes;
	Datum	   *new_buckets;
	bool		done = false;
	int			h;

	if (!OidIsValid(hooks_relid) || !OidIsValid(counters_relid))
		return false;
	PushActiveSnapshot(GetTransactionSnapshot());
	hooks = table_open(hooks_relid, AccessShareLock);
	counters = table_open(counters_relid, RowExclusiveLock);
	successes_col = column_of(counters, "successes", INT8OID);
	sum_col = column_of(counters, "duration_sum", FLOAT8OID);
	buckets_col = column_of(counters, "duration_buckets", INT8ARRAYOID);
	if (!plain_table(counters, "hook_id", true) || !successes_col || !sum_col || !buckets_col ||
		!read_hooks(hooks, GetActiveSnapshot(), n, hook_ids, exists))
	{
		table_close(counters, NoLock);
		table_close(hooks, NoLock);
		PopActiveSnapshot();
		return false;
	}

	estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = GetActiveSnapshot();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, counters, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	EvalPlanQualInit(&epqstate, estate, NULL, NIL, -1);
	search = ExecInitExtraTupleSlot(estate, RelationGetDescr(counters), &TTSOpsVirtual);
	updated = ExecInitExtraTupleSlot(estate, RelationGetDescr(counters), &TTSOpsVirtual);
	found = palloc0(sizeof(TupleTableSlot *) * n);
	new_successes = palloc0(sizeof(int64) * n);
	new_buckets = palloc0(sizeof(Datum) * n);

	/*
	 * Each existing hook's row, locked, and its new counts: all of them, or
	 * nothing is updated
	 */
	for (h = 0; h < n; h++)
	{
		Datum		old_buckets;
		bool		isnull;

		if (!exists[h])
			continue;
		found[h] = table_slot_create(counters, &estate->es_tupleTable);
		ExecClearTuple(search);
		memset(search->tts_isnull, true, sizeof(bool) * RelationGetDescr(counters)->natts);
		search->tts_values[0] = Int64GetDatum(hook_ids[h]);
		search->tts_isnull[0] = false;
		ExecStoreVirtualTuple(search);
		if (!RelationFindReplTupleByIndex(counters, RelationGetPrimaryKeyIndex(counters),
										  LockTupleNoKeyExclusive, search, found[h]))
			goto end;
		slot_getallattrs(found[h]);
		if (found[h]->tts_isnull[successes_col - 1] || found[h]->tts_isnull[sum_col - 1] ||
			pg_add_s64_overflow(DatumGetInt64(found[h]->tts_values[successes_col - 1]),
								successes[h], &new_successes[h]))
			goto end;
		old_buckets = slot_getattr(found[h], buckets_col, &isnull);
		new_buckets[h] = add_buckets(old_buckets, isnull, buckets + h * n_buckets, n_buckets);
		if (new_buckets[h] == (Datum) 0)
			goto end;
	}
	/* then each updated */
	for (h = 0; h < n; h++)
	{
		if (!exists[h])
			continue;
		ExecCopySlot(updated, found[h]);
		updated->tts_values[successes_col - 1] = Int64GetDatum(new_successes[h]);
		updated->tts_values[sum_col - 1] =
			Float8GetDatum(DatumGetFloat8(found[h]->tts_values[sum_col - 1]) + duration_sums[h]);
		updated->tts_values[buckets_col - 1] = new_buckets[h];
		ExecSimpleRelationUpdate(rri, estate, &epqstate, found[h], updated);
	}
	*slot = current_slot(GetActiveSnapshot());
	done = true;

end:
	EvalPlanQualEnd(&epqstate);
	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(counters, NoLock);
	table_close(hooks, NoLock);
	PopActiveSnapshot();
	if (done)
		CommandCounterIncrement();
	return done;
}
