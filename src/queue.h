/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The delivery queue as the worker sees it (queue.c).
 *
 * IDENTIFICATION
 *	  src/queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef WEBHOOK_QUEUE_H
#define WEBHOOK_QUEUE_H

#include "attempt.h"
#include "cursor.h"
#include "lib/ilist.h"
#include "order.h"

/*
 * The worker holds (claims and has not yet recorded) up to this many times
 * max_in_flight, per transport and in all: the attempts beyond those in
 * flight wait in memory, ready to start as soon as a slot frees.
 */
#define QUEUE_HOLD_FACTOR 2

/*
 * The bytes of bodies the worker holds, at most, shared by the tenants as
 * the requests are (worker.c): a claim takes a tenant's events while what
 * it holds of that tenant is below its part (queue.c), so that with the
 * last one taken the bodies held stay under this plus one
 * webhook.max_body_bytes per tenant.
 */
#define QUEUE_HOLD_BYTES (64 * 1024 * 1024)

/*
 * The most hooks the worker keeps in a list of hooks to look at (worker.c),
 * and so the most a full look names as read (queue.c, READ_HOOKS).
 */
#define QUEUE_MAX_HOOKS_LISTED 1024

/*
 * What the worker holds, for queue_claim(), which skips it, and what it may
 * still take.
 */
typedef struct QueueHeld
{
	int			n_transports;
	Datum	   *transport_ids;	/* int8 */
	Datum	   *counts;			/* int4: attempts held for each */
	int			n_deliveries;
	Datum	   *delivery_ids;	/* int8 */
	int			n_tenants;
	Datum	   *tenants;		/* text: the tenants it holds requests of */
	Datum	   *tenant_rooms;	/* int4: how many more it may hold of each */
	int			new_tenant_room;	/* and of any other tenant */
	int			n_stalled;
	Datum	   *stalled_ids;	/* int8: transports whose next token is far */
	Datum	   *stalled_limits; /* float8: at the max_per_second it knows */
	Datum	   *tenant_bytes;	/* int8: how many more bytes of each */
	int64		new_tenant_bytes;	/* and of any other tenant */
	bool		with_ordered;	/* whether to claim for ordered hooks too */
	int			n_only_hooks;
	Datum	   *only_hooks;		/* int8: the unordered hooks to look at, in
								 * the order a tenant's are read (each at its
								 * first place); NULL for every one with a
								 * delivery due */
	bool		with_due;		/* whether some of them may have a delivery
								 * due, or only their logs are read */
	HeldPositions positions;	/* where to read the hooks it follows from */
	int			n_groups;
	HeldGroup  *groups;			/* of the requests read from the logs of
								 * ordered hooks it holds (order.c) */
	uint64		claim;			/* this claim's number */
} QueueHeld;

/* What a claim tells of the hooks it read, beside its requests. */
typedef struct ClaimNotes
{
	bool		readers_cut;	/* it left out hooks that may have work */
	int			n_read_hooks;
	int64	   *read_hooks;		/* at a full look, the hooks that read some
								 * of their logs, taken from or not */
} ClaimNotes;

extern void queue_set_partition(int index, int n_workers);
/* a hook or transport changed: forget what the claims keep of them */
extern void queue_hooks_changed(void);
extern int	queue_claim(int limit, const QueueHeld *held, MemoryContext parent,
						dlist_head *claimed, ClaimNotes *notes);
/* When the earliest retry that a record scheduled for a hook is due. */
typedef struct QueueRetry
{
	int64		hook_id;
	TimestampTz due;
} QueueRetry;

extern int	queue_record(Attempt **reqs, int n, Datum *sent_ids, int n_sent,
						 QueueRetry **retries);
extern void queue_record_failure(Attempt *req, const char *why);
extern void queue_hand_over(Attempt **reqs, int n);
extern bool queue_adopt_cursors(void);
extern int	queue_move_cursors(const CursorMoves *moves, int64 **moved);
extern int	queue_cursors_moved(const CursorMoves *bases, int64 **moved);
extern void queue_expire_secrets(void);
extern void queue_forget_floor(int64 hook_id);
extern int	queue_hooks_gone(Datum *hook_ids, int n, int64 **gone);
extern bool queue_ordered_hooks_exist(void);
extern Attempt *queue_preview(int64 hook_id, int64 event_id, MemoryContext parent);

#endif							/* WEBHOOK_QUEUE_H */
