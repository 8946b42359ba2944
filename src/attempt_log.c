/*-------------------------------------------------------------------------
 *
 * attempt_log.c
 *	  Appending a batch of first attempts that succeeded to the attempt
 *	  log, row by row, without a statement.
 *
 * Most batches the worker records are requests read from the log (no
 * delivery row: queue.c) that were all answered with a 2xx: each leaves
 * its attempt row, and nothing else of it is written.  A statement that
 * inserts them (INSERT ... SELECT FROM unnest() of an array per column)
 * costs a start of its plan, and parsing, projecting and routing each row
 * to the partition; these rows are written directly instead (direct.c),
 * into the slot that is current (webhook_internal.attempt_N), while that
 * table is as the extension made it: else the caller's statement does.
 * Each row gets a new id of webhook.delivery_id_seq, as the statement
 * gave it: the delivery it is the attempt of never had a row, and never
 * will.  The slot's table must still be a partition of webhook.attempt,
 * which is locked first, as an INSERT into it would, and which must have
 * no statement trigger on insert (a partition does not inherit those), nor
 * forced row-level security.
 *
 * IDENTIFICATION
 *	  src/attempt_log.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/table.h"
#include "access/xact.h"
#include "attempt.h"
#include "attempt_log.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "direct.h"
#include "spi_util.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"

/* webhook.attempt's columns, in the order of the values written */
enum
{
	AT_DELIVERY_ID, AT_ATTEMPT_NO, AT_STARTED_AT, AT_DURATION_MS, AT_URL,
	AT_STATUS_CODE, AT_RESPONSE_HEADERS, AT_RESPONSE_BODY, AT_ERROR, AT_SLOT,
	AT_EVENT_ID, AT_HOOK_ID, N_ATTEMPT_COLUMNS
};
static const DirectColumn attempt_columns[N_ATTEMPT_COLUMNS] = {
	{"delivery_id", INT8OID, false}, {"attempt_no", INT4OID, false},
	{"started_at", TIMESTAMPTZOID, false}, {"duration_ms", FLOAT8OID, true},
	{"url", TEXTOID, false}, {"status_code", INT4OID, true},
	{"response_headers", JSONBOID, true}, {"response_body", TEXTOID, true},
	{"error", TEXTOID, true}, {"slot", INT2OID, false},
	{"event_id", INT8OID, true, true}, {"hook_id", INT8OID, true, true}
};

/*
 * Append the attempts reqs[i] for which keep[i], each answered with a
 * status (its response is recorded), to slot of the attempt log; false,
 * and nothing written, when that table is not as the extension made it.
 * Caller is in a transaction.
 */
bool
attempt_log_append(Attempt **reqs, int n, const bool *keep, int slot)
{
	Oid			nsp = get_namespace_oid("webhook_internal", true);
	Oid			webhook_nsp = get_namespace_oid("webhook", true);
	Oid			seq = get_relname_relid("delivery_id_seq", webhook_nsp);
	Oid			parent_relid = get_relname_relid("attempt", webhook_nsp);
	DirectLayout layout = {attempt_columns, N_ATTEMPT_COLUMNS, NULL};
	char		name[NAMEDATALEN];
	Oid			relid;
	Relation	parent;
	Relation	rel;
	TriggerDesc *trig;
	EState	   *estate;
	DirectInsert ins;
	Datum		values[N_ATTEMPT_COLUMNS];
	bool		nulls[N_ATTEMPT_COLUMNS] = {false};
	int			i;

	snprintf(name, sizeof(name), "attempt_%d", slot);
	relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	if (!OidIsValid(relid) || !OidIsValid(seq) || !OidIsValid(parent_relid) ||
		get_rel_relkind(relid) != RELKIND_RELATION ||
		get_rel_relkind(parent_relid) != RELKIND_PARTITIONED_TABLE)
		return false;
	parent = table_open(parent_relid, RowExclusiveLock);
	trig = parent->trigdesc;
	rel = table_open(relid, RowExclusiveLock);
	direct_learn(&layout, rel);
	if (!layout.direct || !layout.log || parent->rd_rel->relforcerowsecurity ||
		(trig != NULL && (trig->trig_insert_before_statement ||
						  trig->trig_insert_after_statement || trig->trig_insert_new_table)) ||
		!rel->rd_rel->relispartition || get_partition_parent(relid, true) != parent_relid)
	{
		table_close(rel, RowExclusiveLock);
		table_close(parent, RowExclusiveLock);
		return false;
	}

	estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	direct_begin(&ins, estate, rel);
	values[AT_SLOT] = Int16GetDatum(slot);
	for (i = 0; i < n; i++)
	{
		Attempt    *req = reqs[i];
		MemoryContext old;

		if (!keep[i])
			continue;
		old = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
		values[AT_DELIVERY_ID] = Int64GetDatum(nextval_internal(seq, false));
		values[AT_ATTEMPT_NO] = Int32GetDatum(req->attempt_no);
		values[AT_STARTED_AT] = TimestampTzGetDatum(req->started_at);
		values[AT_DURATION_MS] = Float8GetDatum(req->duration_ms);
		values[AT_URL] = CStringGetTextDatum(req->log_url);
		values[AT_STATUS_CODE] = Int32GetDatum(req->status);
		values[AT_RESPONSE_HEADERS] = attempt_response_headers(req);
		values[AT_RESPONSE_BODY] =
			PointerGetDatum(cstring_to_text_with_len(req->response_body.data,
													 req->response_body.len));
		values[AT_ERROR] = text_or_null(req->error, &nulls[AT_ERROR]);
		values[AT_EVENT_ID] = Int64GetDatum(req->event_id);
		values[AT_HOOK_ID] = Int64GetDatum(req->hook_id);
		direct_insert(&layout, &ins, values, nulls);	/* resets the memory */
		MemoryContextSwitchTo(old);
	}
	direct_end(&ins);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	table_close(parent, NoLock);
	CommandCounterIncrement();
	return true;
}
