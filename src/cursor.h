/*-------------------------------------------------------------------------
 *
 * cursor.h
 *	  Where the worker has read each hook's log to, ahead of the cursor
 *	  that is stored (cursor.c).
 *
 * IDENTIFICATION
 *	  src/cursor.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_CURSOR_H
#define WEBHOOK_CURSOR_H

#include "attempt.h"

/*
 * A position in a hook's log, as webhook_internal.cursor stores it, in
 * text: snapshots lo and hi, the (txid, id) key read up to within hi
 * (last_txid NULL: none), and the log's largest event id that hi showed.
 */
typedef struct LogPosition
{
	char	   *lo;
	char	   *hi;
	char	   *last_txid;
	int64		last_id;
	int64		top_id;
} LogPosition;

/*
 * What a claim says of a request it read from the log (a fresh one, with
 * no delivery row yet): its rank in what the claim read of its hook, the
 * position after it, and, when the worker held no position of its hook,
 * the stored one it was read from (stored false: the hook had none).
 */
typedef struct LogRead
{
	bool		from_held;
	bool		stored;
	LogPosition from;
	LogPosition to;
	int64		rank;
	uint64		claim;			/* which of the worker's claims took it */
} LogRead;

/* The positions a claim reads from, one array per column. */
typedef struct HeldPositions
{
	int			n;
	Datum	   *hook_ids;		/* int8 */
	Datum	   *lo;				/* text */
	Datum	   *hi;				/* text */
	Datum	   *last_txid;		/* text, or null */
	bool	   *last_txid_nulls;
	Datum	   *last_id;		/* int8 */
	Datum	   *top_id;			/* int8 */
} HeldPositions;

/* The stored cursors to move, from where the worker saw them to where. */
typedef struct CursorMoves
{
	int			n;
	Datum	   *hook_ids;		/* int8 */
	HeldPositions from;			/* its hook_ids unused; lo null: none stored */
	bool	   *from_lo_nulls;
	HeldPositions to;
} CursorMoves;

extern void cursor_claimed(Attempt *req);
extern bool cursor_read_short(uint64 claim);
extern void cursor_recorded(Attempt *req);
extern void cursor_forget(int64 hook_id);
extern void cursor_held_positions(HeldPositions *held);
extern void cursor_bases(CursorMoves *bases);
extern void cursor_moves(CursorMoves *moves);
extern void cursor_moved(const int64 *hook_ids, int n_moved);

#endif							/* WEBHOOK_CURSOR_H */
