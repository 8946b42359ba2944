/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The little shared state between backends, the launcher and the
 *	  delivery workers.
 *
 * Each delivery worker takes a slot here when it starts, naming its
 * database and its number within that database's webhook.workers, and
 * publishes its latch and pid; it gives the slot back when it exits.  A
 * backend whose transaction enqueued deliveries sets the latches of its
 * database's workers once, when the transaction commits (never on abort),
 * so that they claim new work within milliseconds instead of at their next
 * poll.  It tells them first which hooks it gave work (their "news",
 * up to WEBHOOK_MAX_NEWS of them, or "any" when there were more, or when it
 * cannot tell), so that a claim looks at those hooks, not at every hook of
 * the database (worker.c).
 *
 * The launcher publishes its latch too, and takes here the databases that
 * commands asked it to probe at once: a CREATE EXTENSION that committed
 * there, an ALTER DATABASE that may let it be served, a pause that ended.
 * Each names its database by oid, up to WEBHOOK_MAX_PROBE_REQUESTS of them
 * between two rounds of the launcher, past which it probes every database;
 * a backend's transaction collects its own (as many) until it commits.
 *
 * A backend whose command needs a database alone (pause.c) pauses it here:
 * the launcher starts no worker in a paused database, and a worker that
 * started anyway gives up instead of taking its slot.  A database may be
 * paused by several backends at once (two CREATE DATABASE from the same
 * template); each pause names its owner, who lifts it.
 *
 * The launcher probes a database without workers by starting its worker 0
 * (launcher.c), and records the probe here first.  A probe that leaves
 * without taking its slot, because the database has no extension or is
 * paused, or the worker runs already, marks its record answered before it
 * exits; one that dies before it can tell (a FATAL while connecting, say)
 * leaves it unanswered, and the launcher then tries again soon.  Only the
 * launcher takes and frees records, at most MAX_PROBES of them: one per
 * probe in flight.
 *
 * Locking: a slot's news is written and read under its own news_lock, only
 * ever to copy ids (no system call, nothing that can fail).  Slots, pauses,
 * probes, probe requests and the launcher's latch are written under
 * WorkerState->lock and read under the same spinlock: a worker taking its
 * slot and a backend pausing its database see each other, whichever comes
 * first.  wake_requested
 * deduplicates wake-ups: a backend sets a worker's latch only when it flips
 * the slot's flag from 0 to 1, and the worker clears the flag just before
 * it claims.  Under a stream of commits that is one signal per claim, not
 * one per commit.
 *
 * Each worker also publishes, once per turn of its loop, how many requests
 * it has in flight and how many deliveries it holds (webhook.metrics()):
 * plain atomic writes by their owner, read without the lock, so that a
 * reader may see one turn's figures late, never a torn one.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <signal.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

/* One running delivery worker. */
typedef struct WorkerSlot
{
	Oid			dboid;			/* its database; InvalidOid for a free slot */
	int			index;			/* its number among the database's workers */
	pid_t		pid;
	Latch	   *latch;
	pg_atomic_uint32 wake_requested;
	pg_atomic_uint32 in_flight;	/* requests on the wire (metrics) */
	pg_atomic_uint32 held;		/* claimed and not yet recorded (metrics) */
	pg_atomic_uint64 config_generation; /* SIGHUPs it has taken (tests) */
	/*
	 * news: the hooks that commits gave new events to read, or deliveries
	 * (their ids negated: webhook_wake_at_commit_for()), under news_lock
	 */
	slock_t		news_lock;
	bool		news_unknown;	/* and others not named: look at every hook */
	int			n_news;
	int64		news[WEBHOOK_MAX_NEWS];
} WorkerSlot;

/* the most pauses at once, all backends together */
#define MAX_PAUSES 64

/* A database paused by a backend's command. */
typedef struct DatabasePause
{
	Oid			dboid;			/* InvalidOid for a free entry */
	pid_t		owner;
} DatabasePause;

/* the most probes in flight at once */
#define MAX_PROBES 64

/* A probe in flight: worker 0 of a database without workers. */
typedef struct DatabaseProbe
{
	Oid			dboid;			/* InvalidOid for a free entry */
	bool		answered;		/* it exited cleanly, serving nothing */
} DatabaseProbe;

typedef struct WorkerState
{
	slock_t		lock;
	Latch	   *launcher_latch;	/* the running launcher's, or NULL */
	/* the databases whose probe was asked for since the launcher looked */
	bool		probe_all;		/* more than WEBHOOK_MAX_PROBE_REQUESTS */
	int			n_probe_requests;
	Oid			probe_requests[WEBHOOK_MAX_PROBE_REQUESTS];
	DatabasePause pauses[MAX_PAUSES];
	DatabaseProbe probes[MAX_PROBES];
	WorkerSlot	slots[WEBHOOK_MAX_SLOTS];
} WorkerState;

static WorkerState *worker_state = NULL;

/* backend-local: wake-ups owed when the current transaction commits */
static bool wake_pending = false;
/* and the hooks it gave deliveries to, unless too many or not known */
static bool news_unknown = false;
static int	n_news = 0;
static int64 news[WEBHOOK_MAX_NEWS];
/* and the databases whose probe it asks for then */
static bool probe_all_pending = false;
static int	n_probes_pending = 0;
static Oid	probes_pending[WEBHOOK_MAX_PROBE_REQUESTS];
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
		worker_state->launcher_latch = NULL;
		worker_state->probe_all = false;
		worker_state->n_probe_requests = 0;
		for (i = 0; i < MAX_PAUSES; i++)
		{
			worker_state->pauses[i].dboid = InvalidOid;
			worker_state->pauses[i].owner = 0;
		}
		for (i = 0; i < MAX_PROBES; i++)
		{
			worker_state->probes[i].dboid = InvalidOid;
			worker_state->probes[i].answered = false;
		}
		for (i = 0; i < WEBHOOK_MAX_SLOTS; i++)
		{
			worker_state->slots[i].dboid = InvalidOid;
			worker_state->slots[i].latch = NULL;
			pg_atomic_init_u32(&worker_state->slots[i].wake_requested, 0);
			pg_atomic_init_u32(&worker_state->slots[i].in_flight, 0);
			pg_atomic_init_u32(&worker_state->slots[i].held, 0);
			pg_atomic_init_u64(&worker_state->slots[i].config_generation, 0);
			SpinLockInit(&worker_state->slots[i].news_lock);
			worker_state->slots[i].news_unknown = false;
			worker_state->slots[i].n_news = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Is database dboid paused?  Caller holds the lock. */
static bool
paused_locked(Oid dboid)
{
	int			i;

	for (i = 0; i < MAX_PAUSES; i++)
		if (worker_state->pauses[i].dboid == dboid)
			return true;
	return false;
}

/*
 * Take a slot for worker number index of database dboid, publishing our pid
 * and latch.  Returns the slot's number, or -1 when that worker runs
 * already, no slot is free, or the database is paused (then *paused is
 * set).  Worker only.
 */
int
webhook_slot_acquire(Oid dboid, int index, bool *paused)
{
	int			free_slot = -1;
	int			i;

	SpinLockAcquire(&worker_state->lock);
	*paused = paused_locked(dboid);
	for (i = 0; !*paused && i < WEBHOOK_MAX_SLOTS; i++)
	{
		WorkerSlot *slot = &worker_state->slots[i];

		if (slot->dboid == dboid && slot->index == index)
		{
			free_slot = -1;
			break;
		}
		if (slot->dboid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		WorkerSlot *slot = &worker_state->slots[free_slot];

		slot->dboid = dboid;
		slot->index = index;
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
		pg_atomic_write_u32(&slot->wake_requested, 0);
		pg_atomic_write_u32(&slot->in_flight, 0);
		pg_atomic_write_u32(&slot->held, 0);
		pg_atomic_write_u64(&slot->config_generation, 0);
	}
	SpinLockRelease(&worker_state->lock);
	return free_slot;
}

/* Give a slot back.  Worker only. */
void
webhook_slot_release(int slot)
{
	SpinLockAcquire(&worker_state->lock);
	worker_state->slots[slot].dboid = InvalidOid;
	worker_state->slots[slot].latch = NULL;
	SpinLockRelease(&worker_state->lock);
}

/*
 * The worker of this slot is about to look at the queue: later commits
 * must wake it again.  Worker only.
 */
void
webhook_clear_wake_request(int slot)
{
	pg_atomic_write_u32(&worker_state->slots[slot].wake_requested, 0);
	pg_memory_barrier();
}

/*
 * Tell a worker's slot of hooks with new deliveries: the n of ids, or with
 * unknown, that any hook may have some.  Only compares and copies (at most
 * WEBHOOK_MAX_NEWS squared), under the slot's own spinlock.
 */
static void
publish_news(WorkerSlot *slot, const int64 *ids, int n, bool unknown)
{
	int			i;
	int			j;

	SpinLockAcquire(&slot->news_lock);
	if (unknown)
		slot->news_unknown = true;
	for (i = 0; i < n && !slot->news_unknown; i++)
	{
		for (j = 0; j < slot->n_news; j++)
			if (slot->news[j] == ids[i])
				break;
		if (j < slot->n_news)
			continue;
		if (slot->n_news == WEBHOOK_MAX_NEWS)
			slot->news_unknown = true;
		else
			slot->news[slot->n_news++] = ids[i];
	}
	SpinLockRelease(&slot->news_lock);
}

/*
 * Take the news of the worker of this slot (publish_news()) into ids
 * (WEBHOOK_MAX_NEWS of them at most) and *n, and clear it; returns whether
 * it must look at every hook instead.  Worker only, before its claim's
 * snapshot: news published after this is for its next claim.
 */
bool
webhook_take_news(int slot, int64 *ids, int *n)
{
	WorkerSlot *s = &worker_state->slots[slot];
	bool		unknown;

	SpinLockAcquire(&s->news_lock);
	unknown = s->news_unknown;
	*n = unknown ? 0 : s->n_news;
	memcpy(ids, s->news, sizeof(int64) * (*n));
	s->news_unknown = false;
	s->n_news = 0;
	SpinLockRelease(&s->news_lock);
	return unknown;
}

/*
 * Wake the workers of this database now, those that nobody has asked since
 * they last looked at the queue, telling them first which hooks have new
 * work: the n of ids, or (unknown) any.  Harmless without the library
 * preloaded: then there is no shared state and nobody to wake.
 */
void
webhook_wake_worker(const int64 *ids, int n, bool unknown)
{
	int			i;

	if (worker_state == NULL)
		return;
	for (i = 0; i < WEBHOOK_MAX_SLOTS; i++)
	{
		WorkerSlot *slot = &worker_state->slots[i];
		Latch	   *latch = NULL;

		if (slot->dboid == MyDatabaseId)
			publish_news(slot, ids, n, unknown);
		if (slot->dboid != MyDatabaseId ||
			pg_atomic_read_u32(&slot->wake_requested) != 0 ||
			pg_atomic_exchange_u32(&slot->wake_requested, 1) != 0)
			continue;
		SpinLockAcquire(&worker_state->lock);
		if (slot->dboid == MyDatabaseId)
			latch = slot->latch;
		SpinLockRelease(&worker_state->lock);
		if (latch != NULL)
			SetLatch(latch);
	}
}

/*
 * Publish how many requests the worker of this slot has in flight and how
 * many deliveries it holds.  Worker only.
 */
void
webhook_slot_report(int slot, int in_flight, int held)
{
	pg_atomic_write_u32(&worker_state->slots[slot].in_flight, (uint32) in_flight);
	pg_atomic_write_u32(&worker_state->slots[slot].held, (uint32) held);
}

/*
 * Count one more configuration reload taken by the worker of this slot:
 * called once ProcessConfigFile has run and the worker has applied what it
 * caches of the settings, so that whoever reads the count (webhook._workers(),
 * the end-to-end tests after pg_reload_conf()) knows the worker runs with the
 * new configuration.  Worker only.
 */
void
webhook_slot_config_loaded(int slot)
{
	pg_atomic_fetch_add_u64(&worker_state->slots[slot].config_generation, 1);
}

/*
 * The running workers of database dboid, at most max of them, into
 * workers: their numbers (from 0), pids, and what they last published.
 * Returns how many.
 */
int
webhook_workers_of(Oid dboid, WebhookWorkerInfo *workers, int max)
{
	int			n = 0;
	int			i;

	if (worker_state == NULL)
		return 0;
	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < WEBHOOK_MAX_SLOTS && n < max; i++)
	{
		WorkerSlot *slot = &worker_state->slots[i];

		if (slot->dboid != dboid)
			continue;
		workers[n].index = slot->index;
		workers[n].pid = slot->pid;
		workers[n].in_flight = (int) pg_atomic_read_u32(&slot->in_flight);
		workers[n].held = (int) pg_atomic_read_u32(&slot->held);
		workers[n].config_generation =
			(int64) pg_atomic_read_u64(&slot->config_generation);
		n++;
	}
	SpinLockRelease(&worker_state->lock);
	return n;
}

/* How many workers of database dboid run. */
int
webhook_workers_running(Oid dboid)
{
	int			n = 0;
	int			i;

	if (worker_state == NULL)
		return 0;
	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < WEBHOOK_MAX_SLOTS; i++)
		if (worker_state->slots[i].dboid == dboid)
			n++;
	SpinLockRelease(&worker_state->lock);
	return n;
}

/*
 * Pause database dboid for this backend, and send SIGTERM to its workers.
 * Returns the pause's number, for webhook_pause_release(), or -1 when
 * every entry is taken (then nothing is paused nor signalled); *stopped is
 * set to how many workers were signalled.  Their pids are taken under the
 * spinlock and signalled after it (no system call while holding one): a
 * worker of a paused database takes no slot meanwhile.
 */
int
webhook_pause_take(Oid dboid, int *stopped)
{
	pid_t		pids[WEBHOOK_MAX_SLOTS];
	int			n_pids = 0;
	int			pause = -1;
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PAUSES && pause < 0; i++)
		if (worker_state->pauses[i].dboid == InvalidOid)
			pause = i;
	if (pause >= 0)
	{
		worker_state->pauses[pause].dboid = dboid;
		worker_state->pauses[pause].owner = MyProcPid;
		for (i = 0; i < WEBHOOK_MAX_SLOTS; i++)
			if (worker_state->slots[i].dboid == dboid)
				pids[n_pids++] = worker_state->slots[i].pid;
	}
	SpinLockRelease(&worker_state->lock);

	for (i = 0; i < n_pids; i++)
		kill(pids[i], SIGTERM);
	*stopped = n_pids;
	return pause;
}

/*
 * Ask the launcher to probe database dboid at its next round, or, when
 * WEBHOOK_MAX_PROBE_REQUESTS others wait already, every database.  Only
 * compares and copies.  Caller holds the lock.
 */
static void
request_probe_locked(Oid dboid)
{
	int			i;

	if (worker_state->probe_all)
		return;
	for (i = 0; i < worker_state->n_probe_requests; i++)
		if (worker_state->probe_requests[i] == dboid)
			return;
	if (worker_state->n_probe_requests == WEBHOOK_MAX_PROBE_REQUESTS)
		worker_state->probe_all = true;
	else
		worker_state->probe_requests[worker_state->n_probe_requests++] = dboid;
}

/*
 * Lift pause number pause, if this backend still holds it, and have the
 * launcher probe its database: its workers come back.
 */
void
webhook_pause_release(int pause)
{
	DatabasePause *p = &worker_state->pauses[pause];
	Latch	   *latch = NULL;

	SpinLockAcquire(&worker_state->lock);
	if (p->owner == MyProcPid && OidIsValid(p->dboid))
	{
		request_probe_locked(p->dboid);
		p->dboid = InvalidOid;
		latch = worker_state->launcher_latch;
	}
	SpinLockRelease(&worker_state->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Lift every pause this backend holds, and have the launcher probe their
 * databases.
 */
void
webhook_pause_release_all(void)
{
	Latch	   *latch = NULL;
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PAUSES; i++)
	{
		DatabasePause *p = &worker_state->pauses[i];

		if (p->owner != MyProcPid || !OidIsValid(p->dboid))
			continue;
		request_probe_locked(p->dboid);
		p->dboid = InvalidOid;
		latch = worker_state->launcher_latch;
	}
	SpinLockRelease(&worker_state->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/* Is database dboid paused, by any backend? */
bool
webhook_database_paused(Oid dboid)
{
	bool		paused;

	SpinLockAcquire(&worker_state->lock);
	paused = paused_locked(dboid);
	SpinLockRelease(&worker_state->lock);
	return paused;
}

/*
 * Record a probe of database dboid, unanswered, before its worker starts.
 * Returns false when MAX_PROBES are in flight already: then probe later.
 * Launcher only.
 */
bool
webhook_probe_begin(Oid dboid)
{
	int			entry = -1;
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PROBES; i++)
	{
		if (worker_state->probes[i].dboid == dboid)
		{
			entry = i;
			break;
		}
		if (worker_state->probes[i].dboid == InvalidOid && entry < 0)
			entry = i;
	}
	if (entry >= 0)
	{
		worker_state->probes[entry].dboid = dboid;
		worker_state->probes[entry].answered = false;
	}
	SpinLockRelease(&worker_state->lock);
	return entry >= 0;
}

/*
 * Worker 0 of database dboid exits cleanly without taking its slot: if the
 * launcher probes the database, it has its answer (no need to hurry).
 */
void
webhook_probe_answer(Oid dboid)
{
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PROBES; i++)
		if (worker_state->probes[i].dboid == dboid)
			worker_state->probes[i].answered = true;
	SpinLockRelease(&worker_state->lock);
}

/*
 * The probe of database dboid is over (its worker is gone, or runs):
 * forget it, and return whether it answered.  Launcher only.
 */
bool
webhook_probe_end(Oid dboid)
{
	bool		answered = false;
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PROBES; i++)
		if (worker_state->probes[i].dboid == dboid)
		{
			answered = worker_state->probes[i].answered;
			worker_state->probes[i].dboid = InvalidOid;
		}
	SpinLockRelease(&worker_state->lock);
	return answered;
}

/*
 * Forget every probe: a launcher that starts knows of none in flight, and
 * those of a launcher that died before it are ended.  Launcher only.
 */
void
webhook_probes_forget(void)
{
	int			i;

	SpinLockAcquire(&worker_state->lock);
	for (i = 0; i < MAX_PROBES; i++)
		worker_state->probes[i].dboid = InvalidOid;
	SpinLockRelease(&worker_state->lock);
}

/* Publish (or, with NULL, withdraw) the launcher's latch.  Launcher only. */
void
webhook_set_launcher_latch(Latch *latch)
{
	SpinLockAcquire(&worker_state->lock);
	worker_state->launcher_latch = latch;
	SpinLockRelease(&worker_state->lock);
}

/*
 * Wake the launcher now, for a round: a database's worker 0 took its slot,
 * and the others are to be started.
 */
void
webhook_wake_launcher(void)
{
	Latch	   *latch;

	if (worker_state == NULL)
		return;
	SpinLockAcquire(&worker_state->lock);
	latch = worker_state->launcher_latch;
	SpinLockRelease(&worker_state->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * Wake the launcher now, to look for the extension at once in the n
 * databases of dboids (or, with all, in every database) if it has no
 * workers there.
 */
static void
request_probes(const Oid *dboids, int n, bool all)
{
	Latch	   *latch;
	int			i;

	if (worker_state == NULL)
		return;
	SpinLockAcquire(&worker_state->lock);
	if (all)
		worker_state->probe_all = true;
	for (i = 0; i < n; i++)
		request_probe_locked(dboids[i]);
	latch = worker_state->launcher_latch;
	SpinLockRelease(&worker_state->lock);
	if (latch != NULL)
		SetLatch(latch);
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
				webhook_wake_worker(news, n_news, news_unknown);
			if (probe_all_pending || n_probes_pending > 0)
				request_probes(probes_pending, n_probes_pending, probe_all_pending);
			wake_pending = probe_all_pending = false;
			news_unknown = false;
			n_news = n_probes_pending = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* COMMIT PREPARED wakes the workers (webhook.c), maybe elsewhere */
			wake_pending = probe_all_pending = false;
			news_unknown = false;
			n_news = n_probes_pending = 0;
			break;
		default:
			break;
	}
}

static void
register_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * Ask for this database's workers to be woken when the current transaction
 * commits, to look at every hook (the transaction may have given any of
 * them work: redeliver(), replay(), webhook.wake()).
 */
void
webhook_wake_at_commit(void)
{
	news_unknown = true;
	if (wake_pending)
		return;
	register_xact_callback();
	wake_pending = true;
}

/*
 * Ask for this database's workers to be woken when the current transaction
 * commits, to look at the n hooks of hook_ids, which it gave events to read
 * in their logs or, with made, deliveries (rows of webhook.delivery: a
 * worker then reads theirs; news of those is the hook's id negated).
 * Cheap enough to call for every row: a few comparisons, once the
 * transaction has named its hooks (past WEBHOOK_MAX_NEWS, only a flag).
 */
void
webhook_wake_at_commit_for(const Datum *hook_ids, int n, bool made)
{
	int			i;

	if (n == 0)
		return;
	for (i = 0; i < n && !news_unknown; i++)
	{
		int64		id = made ? -DatumGetInt64(hook_ids[i]) : DatumGetInt64(hook_ids[i]);
		int			j;

		for (j = n_news - 1; j >= 0; j--)
			if (news[j] == id)
				break;
		if (j >= 0)
			continue;
		if (n_news == WEBHOOK_MAX_NEWS)
			news_unknown = true;
		else
			news[n_news++] = id;
	}
	if (wake_pending)
		return;
	register_xact_callback();
	wake_pending = true;
}

/*
 * The databases whose probe was asked for since the launcher last asked,
 * into dboids (WEBHOOK_MAX_PROBE_REQUESTS at most), forgotten here; returns
 * how many, or -1 when every database is to be probed.  Launcher only.
 */
int
webhook_take_probe_requests(Oid *dboids)
{
	int			n;

	SpinLockAcquire(&worker_state->lock);
	n = worker_state->probe_all ? -1 : worker_state->n_probe_requests;
	if (n > 0)
		memcpy(dboids, worker_state->probe_requests, sizeof(Oid) * n);
	worker_state->probe_all = false;
	worker_state->n_probe_requests = 0;
	SpinLockRelease(&worker_state->lock);
	return n;
}

/*
 * Ask for the launcher to probe database dboid when the current transaction
 * commits (a CREATE EXTENSION there, an ALTER DATABASE that may let it be
 * served): at once, and that database only.  A transaction naming more
 * databases than WEBHOOK_MAX_PROBE_REQUESTS has every one probed.
 */
void
webhook_probe_at_commit(Oid dboid)
{
	int			i;

	register_xact_callback();
	for (i = 0; i < n_probes_pending; i++)
		if (probes_pending[i] == dboid)
			return;
	if (n_probes_pending == WEBHOOK_MAX_PROBE_REQUESTS)
		probe_all_pending = true;
	else
		probes_pending[n_probes_pending++] = dboid;
}
