/*-------------------------------------------------------------------------
 *
 * pause.h
 *	  Pausing a database's workers for the commands that need the
 *	  database alone (pause.c).
 *
 * IDENTIFICATION
 *	  src/pause.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_PAUSE_H
#define WEBHOOK_PAUSE_H

#include "nodes/nodes.h"

extern int	pause_before_statement(Node *parsetree, int *stopped);
extern void pause_statement_failed(int pause);
extern void pause_after_statement(Node *parsetree, int stopped);

#endif							/* WEBHOOK_PAUSE_H */
