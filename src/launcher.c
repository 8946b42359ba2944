/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: starts the delivery workers of every database that
 *	  webhook.database_name names (or of every database, with '*') where
 *	  the extension is installed.
 *
 * The launcher connects to no database: it reads the shared catalog
 * pg_database, as the autovacuum launcher does, and leaves alone the
 * databases that accept no connections (or are templates, or not named by
 * webhook.database_name).  It cannot see which databases have the
 * extension, so it probes: for a database without a running worker it
 * starts worker 0, which exits at once (and cleanly) when the extension is
 * not there, and otherwise takes its slot (shmem.c) and wakes the launcher,
 * which then starts the database's other workers.  A database is probed
 * when the launcher first sees it, and then, while it has no extension,
 * every LAUNCHER_NAP_MS, or at once when a command asks for it: a CREATE
 * EXTENSION that commits there (its install script asks), an ALTER
 * DATABASE of it that may let it be served (ALLOW_CONNECTIONS true,
 * IS_TEMPLATE false: pause.c), the end of its pause.  Such a command names
 * its database, by oid (a renamed database keeps it), in a small set in
 * shared memory that the launcher takes at each round (shmem.c); only when
 * more databases were named between two rounds than the set holds does the
 * launcher probe them all.  So a command run in a loop, by a database's
 * owner who need not be a superuser, costs one worker start in that
 * database per command (or fewer: one whose probe runs still is probed
 * once more, after it), never one in every database.  A database that was
 * served and lost its workers (its extension was dropped, say) is probed
 * at once, and then as any other.
 *
 * A probe that exits cleanly without taking its slot says so first
 * (shmem.c): the database has no extension, or is not to be served now.
 * One that dies before it can tell (a FATAL while it connects, because the
 * database stopped accepting connections meanwhile, say, or an error, or a
 * pg_terminate_backend) tells nothing: the database is probed again after
 * PROBE_RETRY_MIN_MS, then after twice as long at each probe that dies so,
 * up to LAUNCHER_NAP_MS.  A database whose probes always die costs one
 * worker start, and its FATAL, per step; the launcher says so once, at the
 * first step (later ones at DEBUG1).
 *
 * DROP DATABASE, and the other commands that need a database alone, would
 * fail while our workers are connected to it: they pause it first
 * (pause.c), and the launcher starts nothing in a paused database.  When
 * the pause ends the launcher is woken to probe that database: it gets its
 * workers back, under its new name if it was renamed and
 * webhook.database_name names that; a copy of it, which the launcher sees
 * then for the first time, gets its own.
 *
 * Workers are dynamic background workers that are never restarted by the
 * postmaster: the launcher starts them again when they are gone, so that a
 * worker whose database was dropped meanwhile does not fail forever.
 *
 * IDENTIFICATION
 *	  src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "top_array.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

/* how often databases without a worker are probed for the extension */
#define LAUNCHER_NAP_MS 60000

/* the first wait before probing again after a probe that died */
#define PROBE_RETRY_MIN_MS 1000

/* What the launcher knows of a database to serve. */
typedef struct DatabaseState
{
	Oid			dboid;
	bool		serving;		/* its workers were seen running */
	bool		probing;		/* its probe was started and not yet seen
								 * to end */
	bool		requested;		/* a command asked for a probe, not yet
								 * started */
	TimestampTz last_probe;
	int			retry_ms;		/* the last back-off after a probe that died,
								 * or 0 */
	TimestampTz retry_at;		/* when to probe again after one, or 0 */
} DatabaseState;

static DatabaseState *databases = NULL;
static int	n_databases = 0;
static int	max_databases = 0;

/* A worker the launcher started. */
typedef struct StartedWorker
{
	Oid			dboid;
	int			index;
	BackgroundWorkerHandle *handle;
} StartedWorker;

static StartedWorker *started = NULL;
static int	n_started = 0;
static int	max_started = 0;

/* Does webhook.database_name name the database datname ('*': all)? */
bool
webhook_database_wanted(const char *datname)
{
	char	   *raw = pstrdup(webhook_database_name);
	List	   *names;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &names))
		return false;
	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		if (strcmp(name, "*") == 0 || strcmp(name, datname) == 0)
			return true;
	}
	return false;
}

/* The oids of the databases to serve: connectable, not templates, wanted. */
static List *
databases_to_serve(void)
{
	List	   *oids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate &&
			db->datconnlimit != DATCONNLIMIT_INVALID_DB &&
			webhook_database_wanted(NameStr(db->datname)))
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			oids = lappend_oid(oids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oids;
}

/* Is worker number index of database dboid starting or running? */
static bool
worker_alive(Oid dboid, int index)
{
	int			i;

	for (i = 0; i < n_started; i++)
	{
		pid_t		pid;

		if (started[i].dboid != dboid || started[i].index != index)
			continue;
		if (GetBackgroundWorkerPid(started[i].handle, &pid) != BGWH_STOPPED)
			return true;
		/* gone: forget it */
		pfree(started[i].handle);
		started[i--] = started[--n_started];
	}
	return false;
}

/*
 * Start worker number index of database dboid.  Returns false, with a
 * WARNING, when no background worker is free.
 */
static bool
start_worker(Oid dboid, int index)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	bool		ok;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "webhook");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "webhook_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "webhook worker %d for database %u",
			 index + 1, dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "webhook worker");
	worker.bgw_main_arg = Int32GetDatum(index);
	memcpy(worker.bgw_extra, &dboid, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	/* the handle outlives the round */
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("webhook launcher could not start a worker for database %u", dboid),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	started = top_array_room(started, n_started, &max_started, sizeof(StartedWorker));
	started[n_started].dboid = dboid;
	started[n_started].index = index;
	started[n_started].handle = handle;
	n_started++;
	return true;
}

/* The launcher's state of database dboid, made on first use. */
static DatabaseState *
database_state(Oid dboid)
{
	int			i;

	for (i = 0; i < n_databases; i++)
		if (databases[i].dboid == dboid)
			return &databases[i];
	databases = top_array_room(databases, n_databases, &max_databases,
							   sizeof(DatabaseState));
	databases[n_databases].dboid = dboid;
	databases[n_databases].serving = false;
	databases[n_databases].probing = false;
	databases[n_databases].requested = false;
	databases[n_databases].last_probe = 0;
	databases[n_databases].retry_ms = 0;
	databases[n_databases].retry_at = 0;
	return &databases[n_databases++];
}

/* The database's probes tell again: no back-off. */
static void
forget_failed_probes(DatabaseState *db)
{
	db->retry_ms = 0;
	db->retry_at = 0;
}

/*
 * The probe of database db died before it could tell whether the extension
 * is there: probe it again after PROBE_RETRY_MIN_MS, or twice as long as
 * the last time, up to LAUNCHER_NAP_MS.  Said once per run of such probes,
 * then at DEBUG1: its FATAL is in the log already.
 */
static void
retry_probe_later(DatabaseState *db, TimestampTz now)
{
	bool		first = (db->retry_ms == 0);

	db->retry_ms = first ? PROBE_RETRY_MIN_MS : Min(db->retry_ms * 2, LAUNCHER_NAP_MS);
	db->retry_at = TimestampTzPlusMilliseconds(now, db->retry_ms);
	ereport(first ? LOG : DEBUG1,
			(errmsg("webhook launcher will probe database %u again in %d s",
					db->dboid, db->retry_ms / 1000),
			 errdetail("Its probe worker exited before it could tell whether the extension is installed there.")));
}

/*
 * Step: see which probes have ended since the last round, in every database
 * probed, served or not now.  A probe is over once its worker took its slot
 * (workers run there) or is gone; gone without having answered (shmem.c)
 * nor leaving workers behind, it died before it could tell.
 */
static void
collect_probes(TimestampTz now)
{
	int			i;

	for (i = 0; i < n_databases; i++)
	{
		DatabaseState *db = &databases[i];
		bool		alive;
		bool		answered;

		if (!db->probing)
			continue;
		alive = worker_alive(db->dboid, 0);
		if (alive && webhook_workers_running(db->dboid) == 0)
			continue;			/* still looking */
		db->probing = false;
		answered = webhook_probe_end(db->dboid);
		if (alive || answered || webhook_workers_running(db->dboid) > 0)
			forget_failed_probes(db);
		else
			retry_probe_later(db, now);
	}
}

/*
 * Is database db, which has no running worker, due for a probe?  When a
 * command asked for one (a CREATE EXTENSION there committed, its pause
 * ended: webhook_take_probe_requests()), when its workers were seen
 * running, when its back-off after a probe that died has passed, or else
 * when it was not probed for LAUNCHER_NAP_MS (at once, for a database the
 * launcher sees for the first time).
 */
static bool
probe_due(DatabaseState *db, TimestampTz now)
{
	if (db->requested || db->serving)
		return true;
	if (db->retry_at != 0)
		return now >= db->retry_at;
	return TimestampDifferenceExceeds(db->last_probe, now, LAUNCHER_NAP_MS);
}

/*
 * Probe database db: start its worker 0, recording the probe first so that
 * the worker can answer it.  Not now when MAX_PROBES are in flight: one of
 * them ending wakes the launcher.
 */
static void
start_probe(DatabaseState *db, TimestampTz now)
{
	if (!webhook_probe_begin(db->dboid))
		return;
	db->serving = false;
	db->last_probe = now;
	db->retry_at = 0;
	if (start_worker(db->dboid, 0))
	{
		db->probing = true;
		db->requested = false;
	}
	else
		(void) webhook_probe_end(db->dboid);
}

/* Start whichever workers of database db, served, are not running. */
static void
serve_database(DatabaseState *db)
{
	int			i;

	db->serving = true;
	db->requested = false;
	forget_failed_probes(db);
	for (i = 0; i < webhook_workers; i++)
		if (!worker_alive(db->dboid, i))
			start_worker(db->dboid, i);
}

/* Is dboid one of the n of dboids (n < 0: every database)? */
static bool
probe_requested(Oid dboid, const Oid *dboids, int n)
{
	int			i;

	if (n < 0)
		return true;
	for (i = 0; i < n; i++)
		if (dboids[i] == dboid)
			return true;
	return false;
}

/*
 * One round: the probes that ended are looked at; then a database to serve
 * whose workers run gets all of them, and one without gets worker 0, as a
 * probe, when it is due for one.  The n of requests are the databases that
 * commands asked to be probed since the last round (n < 0: all of them);
 * one whose probe cannot start now (one runs there already, a command
 * paused the database) stays due until it starts.  Returns when the next
 * probe after a back-off is due, or 0 for none.
 */
static TimestampTz
launch_round(const Oid *requests, int n_requests)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_retry = 0;
	ListCell   *lc;

	collect_probes(now);
	foreach(lc, databases_to_serve())
	{
		Oid			dboid = lfirst_oid(lc);
		DatabaseState *db = database_state(dboid);

		if (probe_requested(dboid, requests, n_requests))
			db->requested = true;
		if (webhook_database_paused(dboid))
			continue;
		if (webhook_workers_running(dboid) > 0)
			serve_database(db);
		else if (!worker_alive(dboid, 0) && probe_due(db, now))
			start_probe(db, now);
		if (db->retry_at > now && (next_retry == 0 || db->retry_at < next_retry))
			next_retry = db->retry_at;
	}
	return next_retry;
}

/*
 * How long the launcher may sleep after a round: LAUNCHER_NAP_MS, or until
 * the next probe after a back-off (next_retry, 0 for none) is due.
 */
static long
nap_ms(TimestampTz next_retry)
{
	if (next_retry == 0)
		return LAUNCHER_NAP_MS;
	/* rounded up, so that the next round finds it due */
	return Min(LAUNCHER_NAP_MS,
			   TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_retry) + 1);
}

static void
withdraw_latch(int code, Datum arg)
{
	webhook_set_launcher_latch(NULL);
}

/*
 * Entry point of the launcher background worker.  Never returns; SIGTERM
 * ends it through die().
 */
void
webhook_launcher_main(Datum main_arg)
{
	MemoryContext round_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("webhook launcher");

	round_cxt = AllocSetContextCreate(TopMemoryContext, "webhook launcher round",
									  ALLOCSET_DEFAULT_SIZES);
	webhook_set_launcher_latch(MyLatch);
	before_shmem_exit(withdraw_latch, (Datum) 0);
	webhook_probes_forget();
	ereport(LOG, (errmsg("webhook launcher started")));

	for (;;)
	{
		MemoryContext old;
		TimestampTz next_retry;
		Oid			requests[WEBHOOK_MAX_PROBE_REQUESTS];
		int			n_requests;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		old = MemoryContextSwitchTo(round_cxt);
		n_requests = webhook_take_probe_requests(requests);
		next_retry = launch_round(requests, n_requests);
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap_ms(next_retry), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
