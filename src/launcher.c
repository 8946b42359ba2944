/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: starts the delivery workers of every database that
 *	  webhook.database_name names (or of every database, with '*') where
 *	  the extension is installed.
 *
 * The launcher connects to no database: it reads the shared catalog
 * pg_database, as the autovacuum launcher does.  It cannot see which
 * databases have the extension, so it probes: for a database without a
 * running worker it starts worker 0, which exits at once (and cleanly) when
 * the extension is not there, and otherwise takes its slot (shmem.c) and
 * wakes the launcher, which then starts the database's other workers.  A
 * database without the extension is probed again every LAUNCHER_NAP_MS, or
 * at once when a CREATE EXTENSION commits anywhere (its install script
 * wakes the launcher).  A database that was served and lost its workers
 * (its extension was dropped, say) is probed at once, and then as any other.
 *
 * DROP DATABASE, and the other commands that need a database alone, would
 * fail while our workers are connected to it: they pause it first
 * (pause.c), and the launcher starts nothing in a paused database.  When
 * the pause ends the launcher is woken to probe every database: the
 * database gets its workers back, under its new name if it was renamed
 * and webhook.database_name names that, and a copy of it gets its own.
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

/* What the launcher knows of a database to serve. */
typedef struct DatabaseState
{
	Oid			dboid;
	bool		serving;		/* its workers were seen running */
	TimestampTz last_probe;
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

/* Start worker number index of database dboid. */
static void
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
		return;
	}
	started = top_array_room(started, n_started, &max_started, sizeof(StartedWorker));
	started[n_started].dboid = dboid;
	started[n_started].index = index;
	started[n_started].handle = handle;
	n_started++;
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
	databases[n_databases].last_probe = 0;
	return &databases[n_databases++];
}

/*
 * One round: a database to serve whose workers run gets all of them; one
 * without gets worker 0, as a probe, when it is due for one.  probe_all:
 * every database is due (a CREATE EXTENSION committed).
 */
static void
launch_round(bool probe_all)
{
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	foreach(lc, databases_to_serve())
	{
		Oid			dboid = lfirst_oid(lc);
		DatabaseState *db = database_state(dboid);
		int			i;

		if (webhook_database_paused(dboid))
			continue;
		if (webhook_workers_running(dboid) > 0)
		{
			db->serving = true;
			for (i = 0; i < webhook_workers; i++)
				if (!worker_alive(dboid, i))
					start_worker(dboid, i);
		}
		else if (!worker_alive(dboid, 0) &&
				 (probe_all || db->serving ||
				  TimestampDifferenceExceeds(db->last_probe, now, LAUNCHER_NAP_MS)))
		{
			db->serving = false;
			db->last_probe = now;
			start_worker(dboid, 0);
		}
	}
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
	ereport(LOG, (errmsg("webhook launcher started")));

	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		old = MemoryContextSwitchTo(round_cxt);
		launch_round(webhook_take_probe_request());
		MemoryContextSwitchTo(old);
		MemoryContextReset(round_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
