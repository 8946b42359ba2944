/*
 * floor_triggers.c
 *		Two AFTER ROW triggers that bound what any capture trigger costs a
 *		writer (bench/writer_floor.sh).  Loaded by path into the benchmark's
 *		throwaway cluster, not installed.
 *
 *	noop_trigger()			does nothing: the trigger machinery alone.
 *	append_trigger(table)	appends the new row, as row_to_json() text, to an
 *							unindexed table of one text column: the least a
 *							log written in the writer's transaction holds.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/rel.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(noop_trigger);
PG_FUNCTION_INFO_V1(append_trigger);

Datum
noop_trigger(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	return PointerGetDatum(NULL);
}

Datum
append_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	static Oid	log_oid = InvalidOid;
	Relation	log;
	Datum		row;
	Datum		payload;
	bool		isnull = false;
	HeapTuple	tuple;

	if (!OidIsValid(log_oid))
		log_oid = RangeVarGetRelid(makeRangeVarFromNameList(
									   stringToQualifiedNameList(td->tg_trigger->tgargs[0])),
								   NoLock, false);
	row = heap_copy_tuple_as_datum(td->tg_trigtuple, RelationGetDescr(td->tg_relation));
	payload = DirectFunctionCall1(row_to_json, row);
	log = table_open(log_oid, RowExclusiveLock);
	tuple = heap_form_tuple(RelationGetDescr(log), &payload, &isnull);
	simple_heap_insert(log, tuple);
	table_close(log, RowExclusiveLock);
	return PointerGetDatum(NULL);
}
