/*-------------------------------------------------------------------------
 *
 * direct.h
 *	  Rows written straight into a table of the extension's, with no
 *	  statement, while the table is as the extension made it (direct.c).
 *
 * IDENTIFICATION
 *	  src/direct.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_DIRECT_H
#define WEBHOOK_DIRECT_H

#include "executor/executor.h"
#include "utils/rel.h"

/*
 * A column written directly: its name, its type, can it be null, and is it
 * one of the log's (a catalog before 0.5 has none of them).
 */
typedef struct DirectColumn
{
	const char *name;
	Oid			type;
	bool		nullable;
	bool		log;
} DirectColumn;

/* more attributes than this (dropped ones count) and a statement writes */
#define DIRECT_MAX_ATTS 32

/* What is known of a table's layout: may it be written directly, and how. */
typedef struct DirectLayout
{
	const DirectColumn *columns;
	int			ncolumns;
	const char *check;			/* the name of the one CHECK constraint the
								 * catalog defines, or NULL for none */
	bool		direct;			/* it may be written directly */
	bool		log;			/* it has the log's columns */
	int			natts;
	int			column_of[DIRECT_MAX_ATTS]; /* per attribute, its index in
											 * columns; -1 if dropped */
} DirectLayout;

/* The executor's state for one table's rows, as logical replication's apply has it. */
typedef struct DirectInsert
{
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
} DirectInsert;

extern void direct_learn(DirectLayout *layout, Relation rel);
extern void direct_begin(DirectInsert *ins, EState *estate, Relation rel);
extern void direct_insert(const DirectLayout *layout, DirectInsert *ins,
						  const Datum *values, const bool *nulls);
extern void direct_end(DirectInsert *ins);

#endif							/* WEBHOOK_DIRECT_H */
