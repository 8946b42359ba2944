/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The little shared state between backends and the delivery worker.
 *
 * Each of the webhook.workers workers publishes its latch here, in its
 * slot, when it starts and clears it when it exits.  A backend whose
 * transaction enqueued deliveries sets those latches once, when the
 * transaction commits (never on abort), so that the workers claim new work
 * within milliseconds instead of at their next poll.
 *
 * Locking: a slot's latch pointer is written only by its worker, under
 * WorkerState->lock, and read by backends under the same spinlock.
 * wake_requested deduplicates wake-ups: a backend sets a latch only when it
 * flips its slot's flag from 0 to 1, and the worker clears the flag just
 * before it claims.  Under a stream of commits that is one signal per
 * claim, not one per commit.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

typedef struct WorkerSlot
{
	Latch	   *latch;			/* the running worker's latch, or NULL */
	pg_atomic_uint32 wake_requested;
} WorkerSlot;

typedef struct WorkerState
{
	slock_t		lock;
	WorkerSlot	slots[WEBHOOK_MAX_WORKERS];
} WorkerState;

static WorkerState *worker_state = NULL;

/* backend-local: a wake-up is owed when the current transaction commits */
static bool wake_pending = false;
static bool xact_callback_registered = false;

void
webhook_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerState)));
}

void
webhook_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_state = ShmemInitStruct("webhook worker state",
								   sizeof(WorkerState), &found);
	if (!found)
	{
		int			i;

		SpinLockInit(&worker_state->lock);
		for (i = 0; i < WEBHOOK_MAX_WORKERS; i++)
		{
			worker_state->slots[i].latch = NULL;
			pg_atomic_init_u32(&worker_state->slots[i].wake_requested, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Publish (or, with NULL, withdraw) the latch of worker number index.
 * Worker only.
 */
void
webhook_set_worker_latch(int index, Latch *latch)
{
	SpinLockAcquire(&worker_state->lock);
	worker_state->slots[index].latch = latch;
	SpinLockRelease(&worker_state->lock);
}

/*
 * Worker number index is about to look at the queue: later commits must
 * wake it again.  Worker only.
 */
void
webhook_clear_wake_request(int index)
{
	pg_atomic_write_u32(&worker_state->slots[index].wake_requested, 0);
	pg_memory_barrier();
}

/*
 * Wake the workers now, those that nobody has asked since they last looked
 * at the queue.  Harmless without the library preloaded: then there is no
 * shared state and nobody to wake.
 */
void
webhook_wake_worker(void)
{
	int			i;

	if (worker_state == NULL)
		return;
	for (i = 0; i < webhook_workers; i++)
	{
		WorkerSlot *slot = &worker_state->slots[i];
		Latch	   *latch;

		if (pg_atomic_read_u32(&slot->wake_requested) != 0 ||
			pg_atomic_exchange_u32(&slot->wake_requested, 1) != 0)
			continue;
		SpinLockAcquire(&worker_state->lock);
		latch = slot->latch;
		SpinLockRelease(&worker_state->lock);
		if (latch != NULL)
			SetLatch(latch);
	}
}

/* Whether every worker has published its latch (is running). */
bool
webhook_worker_running(void)
{
	bool		running = true;
	int			i;

	if (worker_state == NULL)
		return false;
	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < webhook_workers; i++)
		running = running && worker_state->slots[i].latch != NULL;
	SpinLockRelease(&worker_state->lock);
	return running;
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
				webhook_wake_worker();
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			break;
		case XACT_EVENT_PREPARE:
			/* COMMIT PREPARED wakes the worker (webhook.c), maybe elsewhere */
			wake_pending = false;
			break;
		default:
			break;
	}
}

/*
 * Ask for the worker to be woken when the current transaction commits.
 * Cheap enough to call for every row: after the first call of a transaction
 * it only tests a flag.
 */
void
webhook_wake_at_commit(void)
{
	if (wake_pending)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_pending = true;
}
