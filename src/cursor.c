/*-------------------------------------------------------------------------
 *
 * cursor.c
 *	  Where the worker has read each hook's log to, ahead of the cursor
 *	  that is stored.
 *
 * A claim reads an unordered hook's events from the log (log_claim.c, or
 * queue.c's FRESH)
 * and sends them before any row of them exists; the record makes each
 * one's delivery row, with its outcome.  The stored cursor
 * (webhook_internal.cursor) may move past an event only once its attempt is
 * recorded: after a crash, the next worker reads again from the stored
 * cursor, and sends again what was not (at least once).  So the worker
 * keeps, per hook it has read from:
 *	- the stored position as it last saw or wrote it (the base): the
 *	  stored cursor moves from there only (queue_move_cursors), so that a
 *	  move by another (spill(), update_hook(..., resume => 'now'), a
 *	  restore's adoption) is never undone;
 *	- a batch per claim that read some of its events: the position after
 *	  them, and how many of them are not recorded yet;
 *	- once the oldest batches are all recorded, the position after the
 *	  latest of them: where the stored cursor is to move, in the worker's
 *	  next exchange with the queue.
 * The next claim reads from the latest batch's position (or where the
 * stored cursor is to move, or the base): nothing is read twice.  A hook
 * whose stored cursor is where the worker read to is forgotten.  A request
 * the worker lets go of unsent (its hook disabled, paused, its rate far
 * off) is recorded by a pending delivery row (worker.c, hand_over()), as
 * the queue held it before the log.
 *
 * IDENTIFICATION
 *	  src/cursor.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "cursor.h"
#include "top_array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* One claim's reads of a hook's log. */
typedef struct CursorBatch
{
	uint64		claim;
	int			outstanding;	/* its requests not recorded yet */
	int64		rank;			/* of the last of them, in the claim's read */
	LogPosition to;				/* after it */
} CursorBatch;

/* What the worker knows of one hook's cursor. */
typedef struct HookCursor
{
	int64		hook_id;
	bool		stored;			/* the hook has a stored cursor: base */
	LogPosition base;
	int			n_batches;
	int			max_batches;
	CursorBatch *batches;		/* oldest first */
	bool		moving;			/* the stored cursor is to move to target */
	LogPosition target;
} HookCursor;

static MemoryContext cursor_cxt = NULL;
static HookCursor *cursors = NULL;
static int	n_cursors = 0;
static int	max_cursors = 0;

/*
 * Of the latest claim followed, how many hooks' reads stopped short of the
 * log's end: the position after the last one kept names an event (the read
 * filled its room, the claim's windows cut it, or the worker let the rest
 * of an ordered hook's read go), so more may be there.
 */
static uint64 short_claim = 0;
static int	n_short = 0;

/* A copy of src's strings in cursor_cxt, into dst, whose old ones go. */
static void
copy_position(LogPosition *dst, const LogPosition *src)
{
	if (cursor_cxt == NULL)
		cursor_cxt = AllocSetContextCreate(TopMemoryContext, "webhook cursors",
										   ALLOCSET_SMALL_SIZES);
	if (dst->lo != NULL)
		pfree(dst->lo);
	if (dst->hi != NULL)
		pfree(dst->hi);
	if (dst->last_txid != NULL)
		pfree(dst->last_txid);
	dst->lo = src->lo ? MemoryContextStrdup(cursor_cxt, src->lo) : NULL;
	dst->hi = src->hi ? MemoryContextStrdup(cursor_cxt, src->hi) : NULL;
	dst->last_txid = src->last_txid ? MemoryContextStrdup(cursor_cxt, src->last_txid) : NULL;
	dst->last_id = src->last_id;
	dst->top_id = src->top_id;
}

static void
free_position(LogPosition *p)
{
	static const LogPosition none = {NULL, NULL, NULL, 0, 0};

	copy_position(p, &none);
}

static HookCursor *
find_cursor(int64 hook_id)
{
	int			i;

	for (i = 0; i < n_cursors; i++)
		if (cursors[i].hook_id == hook_id)
			return &cursors[i];
	return NULL;
}

/* Forget cursor c, an element of cursors. */
static void
drop_cursor(HookCursor *c)
{
	int			i;

	free_position(&c->base);
	free_position(&c->target);
	for (i = 0; i < c->n_batches; i++)
		free_position(&c->batches[i].to);
	if (c->batches != NULL)
		pfree(c->batches);
	*c = cursors[--n_cursors];
}

/*
 * The claim that read req from the log has committed: the worker now reads
 * its hook from the position after the last of that claim's reads of it
 * (each tells the position after itself).
 */
void
cursor_claimed(Attempt *req)
{
	LogRead    *r = req->read;
	HookCursor *c = find_cursor(req->hook_id);
	CursorBatch *b;

	if (c == NULL && r->from_held)
		return;					/* forgotten since: not followed */
	if (c == NULL)
	{
		cursors = top_array_room(cursors, n_cursors, &max_cursors, sizeof(HookCursor));
		c = &cursors[n_cursors++];
		memset(c, 0, sizeof(HookCursor));
		c->hook_id = req->hook_id;
		c->stored = r->stored;
		if (r->stored)
			copy_position(&c->base, &r->from);
	}
	b = c->n_batches > 0 ? &c->batches[c->n_batches - 1] : NULL;
	if (b == NULL || b->claim != r->claim)
	{
		c->batches = top_array_room(c->batches, c->n_batches, &c->max_batches,
									sizeof(CursorBatch));
		b = &c->batches[c->n_batches++];
		memset(b, 0, sizeof(CursorBatch));
		b->claim = r->claim;
		b->rank = r->rank;
		copy_position(&b->to, &r->to);
		if (short_claim != r->claim)
		{
			short_claim = r->claim;
			n_short = 0;
		}
		n_short += (b->to.last_txid != NULL);
	}
	else if (r->rank > b->rank)
	{
		n_short -= (b->to.last_txid != NULL);
		b->rank = r->rank;
		copy_position(&b->to, &r->to);
		n_short += (b->to.last_txid != NULL);
	}
	b->outstanding++;
}

/*
 * Whether a hook's read in claim (followed by cursor_claimed()) stopped
 * short of the end of its log: a backlog, though the claim took less than
 * its limit (a tenant's room is less than the worker's).
 */
bool
cursor_read_short(uint64 claim)
{
	return short_claim == claim && n_short > 0;
}

/*
 * req's attempt is recorded: once every attempt of the oldest batches is,
 * the stored cursor is to move past them.
 */
void
cursor_recorded(Attempt *req)
{
	HookCursor *c = find_cursor(req->hook_id);
	int			i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_batches; i++)
		if (c->batches[i].claim == req->read->claim)
		{
			c->batches[i].outstanding--;
			break;
		}
	while (c->n_batches > 0 && c->batches[0].outstanding <= 0)
	{
		copy_position(&c->target, &c->batches[0].to);
		c->moving = true;
		free_position(&c->batches[0].to);
		memmove(&c->batches[0], &c->batches[1], sizeof(CursorBatch) * (c->n_batches - 1));
		c->n_batches--;
	}
}

/*
 * Forget where the worker read the hook to: another moved its stored
 * cursor (its requests in flight are recorded, and move nothing).
 */
void
cursor_forget(int64 hook_id)
{
	HookCursor *c = find_cursor(hook_id);

	if (c != NULL)
		drop_cursor(c);
}

/* Room for n positions in p, in the current memory context. */
static void
alloc_positions(HeldPositions *p, int n)
{
	p->n = 0;
	p->hook_ids = palloc(sizeof(Datum) * Max(n, 1));
	p->lo = palloc(sizeof(Datum) * Max(n, 1));
	p->hi = palloc(sizeof(Datum) * Max(n, 1));
	p->last_txid = palloc(sizeof(Datum) * Max(n, 1));
	p->last_txid_nulls = palloc(sizeof(bool) * Max(n, 1));
	p->last_id = palloc(sizeof(Datum) * Max(n, 1));
	p->top_id = palloc(sizeof(Datum) * Max(n, 1));
}

/* Append the hook's position pos (lo NULL: none, as text nulls) to p. */
static void
add_position(HeldPositions *p, int64 hook_id, const LogPosition *pos, bool *lo_nulls)
{
	int			i = p->n++;

	p->hook_ids[i] = Int64GetDatum(hook_id);
	if (lo_nulls != NULL)
		lo_nulls[i] = (pos->lo == NULL);
	p->lo[i] = pos->lo ? CStringGetTextDatum(pos->lo) : (Datum) 0;
	p->hi[i] = pos->hi ? CStringGetTextDatum(pos->hi) : (Datum) 0;
	p->last_txid_nulls[i] = (pos->last_txid == NULL);
	p->last_txid[i] = pos->last_txid ? CStringGetTextDatum(pos->last_txid) : (Datum) 0;
	p->last_id[i] = Int64GetDatum(pos->last_id);
	p->top_id[i] = Int64GetDatum(pos->top_id);
}

/*
 * Where the next claim reads each hook the worker follows from, into held
 * (in the current memory context): after its latest batch, or where its
 * stored cursor is to move (a hook with neither was forgotten when its
 * stored cursor reached where the worker had read to).
 */
void
cursor_held_positions(HeldPositions *held)
{
	int			i;

	alloc_positions(held, n_cursors);
	for (i = 0; i < n_cursors; i++)
	{
		HookCursor *c = &cursors[i];

		if (c->n_batches > 0)
			add_position(held, c->hook_id, &c->batches[c->n_batches - 1].to, NULL);
		else if (c->moving)
			add_position(held, c->hook_id, &c->target, NULL);
	}
}

/*
 * Where the worker saw each stored cursor it follows last, into
 * bases->from (bases->to is unused), in the current memory context.
 */
void
cursor_bases(CursorMoves *bases)
{
	static const LogPosition none = {NULL, NULL, NULL, 0, 0};
	int			i;

	alloc_positions(&bases->from, n_cursors);
	bases->from_lo_nulls = palloc(sizeof(bool) * Max(n_cursors, 1));
	for (i = 0; i < n_cursors; i++)
		add_position(&bases->from, cursors[i].hook_id,
					 cursors[i].stored ? &cursors[i].base : &none, bases->from_lo_nulls);
	bases->n = bases->from.n;
	bases->hook_ids = bases->from.hook_ids;
}

/*
 * The stored cursors to move, from their base to their target, into moves
 * (in the current memory context).
 */
void
cursor_moves(CursorMoves *moves)
{
	int			i;

	alloc_positions(&moves->from, n_cursors);
	alloc_positions(&moves->to, n_cursors);
	moves->from_lo_nulls = palloc(sizeof(bool) * Max(n_cursors, 1));
	for (i = 0; i < n_cursors; i++)
	{
		HookCursor *c = &cursors[i];
		static const LogPosition none = {NULL, NULL, NULL, 0, 0};

		if (!c->moving)
			continue;
		add_position(&moves->from, c->hook_id, c->stored ? &c->base : &none,
					 moves->from_lo_nulls);
		add_position(&moves->to, c->hook_id, &c->target, NULL);
	}
	moves->n = moves->to.n;
	moves->hook_ids = moves->to.hook_ids;
}

/*
 * The transaction that moved the stored cursors of the n_moved hooks of
 * hook_ids has committed: they are where the worker read to.  A cursor it
 * was to move and did not (another moved it, or holds it) is forgotten:
 * its hook is read from the stored cursor again.
 */
void
cursor_moved(const int64 *hook_ids, int n_moved)
{
	int			i = 0;

	while (i < n_cursors)
	{
		HookCursor *c = &cursors[i];
		bool		moved = false;
		int			j;

		if (!c->moving)
		{
			i++;
			continue;
		}
		for (j = 0; j < n_moved && !moved; j++)
			moved = (hook_ids[j] == c->hook_id);
		if (!moved)
		{
			drop_cursor(c);		/* the last element takes its place */
			continue;
		}
		copy_position(&c->base, &c->target);
		c->stored = true;
		c->moving = false;
		if (c->n_batches == 0)
		{
			drop_cursor(c);
			continue;
		}
		i++;
	}
}
