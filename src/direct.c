/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  Rows written straight into a table of the extension's: formed here
 *	  and inserted into the heap and the indexes, as logical replication's
 *	  apply does, with no statement to plan or executor to start.
 *
 * Two paths write this way, each as often as the extension writes at all:
 * the writer's event (enqueue.c: the capture trigger and emit()), and the
 * worker's attempts of a batch that succeeded at once (attempt_log.c).
 * Either spent most of its time, as a statement through SPI, on the
 * statement's plan and executor.
 *
 * The way is taken only for a table as the extension made it: the columns
 * it fills with their types (no type modifier; none NOT NULL that may be
 * null), no other column, no other CHECK constraint, no trigger on insert,
 * no forced row-level security, no generated column.  The values given
 * satisfy the constraints the extension defines.  Anything else (a column
 * or trigger an admin added, a catalog of another version during an
 * upgrade) is for the caller to write with a statement, through SPI,
 * which honours it.  The columns are found by name: a table of an older
 * version keeps the order its columns had.
 *
 * IDENTIFICATION
 *	  src/direct.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/tableam.h"
#include "direct.h"

/* Is a column of this name one of the log's? */
static bool
is_log_column(const DirectLayout *layout, const char *name)
{
	int			c;

	for (c = 0; c < layout->ncolumns; c++)
		if (layout->columns[c].log && strcmp(layout->columns[c].name, name) == 0)
			return true;
	return false;
}

/*
 * Learn whether rel has the log's columns (layout->log: all of those
 * flagged log; one with some of them is never written directly) and may be
 * written directly (layout->direct), and how; rel is open and locked, so
 * that no change to it can come in between.
 */
void
direct_learn(DirectLayout *layout, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	int			nchecks = constr ? constr->num_check : 0;
	TriggerDesc *trig = rel->trigdesc;
	bool		seen[DIRECT_MAX_ATTS] = {false};
	int			n_log = 0;
	int			n_log_columns = 0;
	int			i;

	Assert(layout->ncolumns <= DIRECT_MAX_ATTS);
	layout->direct = false;
	layout->natts = desc->natts;
	for (i = 0; i < layout->ncolumns; i++)
		n_log_columns += layout->columns[i].log;
	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			is_log_column(layout, NameStr(TupleDescAttr(desc, i)->attname)))
			n_log++;
	layout->log = (n_log == n_log_columns && n_log > 0);
	if (n_log > 0 && !layout->log)
		return;					/* some of the log's columns: a statement's */

	if (desc->natts > DIRECT_MAX_ATTS || rel->rd_rel->relforcerowsecurity ||
		(constr != NULL && constr->has_generated_stored) ||
		nchecks != (layout->check ? 1 : 0) ||
		(nchecks == 1 && strcmp(constr->check[0].ccname, layout->check) != 0) ||
		(trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
						  trig->trig_insert_instead_row ||
						  trig->trig_insert_before_statement ||
						  trig->trig_insert_after_statement ||
						  trig->trig_insert_new_table)))
		return;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			c;

		layout->column_of[i] = -1;
		if (att->attisdropped)
			continue;
		for (c = 0; c < layout->ncolumns; c++)
			if (strcmp(NameStr(att->attname), layout->columns[c].name) == 0)
				break;
		if (c == layout->ncolumns || att->atttypid != layout->columns[c].type ||
			att->atttypmod != -1 ||
			(att->attnotnull && layout->columns[c].nullable) || seen[c])
			return;				/* a column not ours, or not as we made it */
		seen[c] = true;
		layout->column_of[i] = c;
	}
	for (i = 0; i < layout->ncolumns; i++)
		if (!seen[i] && !(layout->columns[i].log && !layout->log))
			return;
	layout->direct = true;
}

/* Open rel's indexes, and a slot for its rows, in estate. */
void
direct_begin(DirectInsert *ins, EState *estate, Relation rel)
{
	ins->estate = estate;
	ins->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ins->rri, rel, 1, NULL, 0);
	ExecOpenIndices(ins->rri, false);
	ins->slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);
}

/* A row, whose values are given in the order of the layout's columns */
void
direct_insert(const DirectLayout *layout, DirectInsert *ins,
			  const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = ins->slot;
	int			i;

	ExecClearTuple(slot);
	for (i = 0; i < layout->natts; i++)
	{
		int			c = layout->column_of[i];

		slot->tts_values[i] = c < 0 ? (Datum) 0 : values[c];
		slot->tts_isnull[i] = c < 0 || nulls[c];
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(ins->rri->ri_RelationDesc, slot, ins->estate->es_output_cid, 0, NULL);
	if (ins->rri->ri_NumIndices > 0)
		list_free(ExecInsertIndexTuples(ins->rri, slot, ins->estate, false, false, NULL, NIL));
	ResetPerTupleExprContext(ins->estate);
}

/* Close what direct_begin() opened but the estate (the caller's). */
void
direct_end(DirectInsert *ins)
{
	ExecCloseIndices(ins->rri);
}
