/*-------------------------------------------------------------------------
 *
 * enqueue.h
 *	  Appending an event to the log in the writer's transaction.
 *
 * IDENTIFICATION
 *	  src/enqueue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_ENQUEUE_H
#define WEBHOOK_ENQUEUE_H

#include "utils/array.h"

/* What an event is, as the capture trigger and emit() know it. */
typedef struct NewEvent
{
	const char *tenant;
	const char *event_type;
	const char *resource;		/* NULL for none */
	const char *resource_id;	/* NULL for none */
	Datum		payload;		/* jsonb */
	Datum		old_row;		/* jsonb, with changed; else unused */
	ArrayType  *changed;		/* text[] of the columns an UPDATE changed, or
								 * NULL */
} NewEvent;

extern Datum enqueue_event(const NewEvent *event, const Datum *hook_ids,
						   const bool *active, int n_hooks);
extern void enqueue_forget_tables(Oid relid);

#endif							/* WEBHOOK_ENQUEUE_H */
