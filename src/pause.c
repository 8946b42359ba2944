/*-------------------------------------------------------------------------
 *
 * pause.c
 *	  The commands that need a database alone: DROP DATABASE, ALTER
 *	  DATABASE RENAME TO and SET TABLESPACE (of the database itself), and
 *	  CREATE DATABASE (of its template, with either strategy).
 *
 * PostgreSQL refuses these while another session is connected to the
 * database ("database is being accessed by other users"), and our workers
 * always are.  The utility hook (webhook.c) therefore pauses the database
 * first: the launcher starts no worker there, a worker that was starting
 * gives up (shmem.c), and those that run get SIGTERM, whose effect we wait
 * for, a bounded time.  What a stopped worker held stays pending in the
 * queue and the next worker sends it again: delivery stays at least once.
 * Only the database's owner pauses it: a tenant's DROP DATABASE fails
 * anyway, and must not stop the workers first.
 *
 * The pause lasts until the statement fails, or else until its transaction
 * ends, committed, rolled back or prepared, and has released its locks.
 * Each of these commands holds a lock on the database that keeps new
 * connections out until then anyway, so a worker started earlier would
 * only wait for it (and, after a rename, find its old name gone).  ALTER DATABASE
 * RENAME TO may run in a transaction block: the database is then unserved
 * until the block ends.  A pause cannot outlive its transaction: a backend
 * that exits aborts it first, and one that crashes takes the shared memory
 * with it (the postmaster reinitializes it).
 *
 * When its pauses end, the backend wakes the launcher to probe the paused
 * databases, and only those (shmem.c): the workers come back in the
 * database, under its new name if webhook.database_name names that one
 * (probed by oid, which a rename keeps).  A new database copied from a
 * template with the extension gets its own workers if the setting names
 * it, at once, even from template1 when its owner runs CREATE DATABASE:
 * the launcher, woken by the template's pause ending, probes any database
 * it sees for the first time.  A rename or a copy that leaves a served
 * database unserved because the setting does not name it is told with a
 * WARNING.
 *
 * An ALTER DATABASE that may make a database one to serve again
 * (ALLOW_CONNECTIONS true, IS_TEMPLATE false: the launcher leaves alone the
 * others) has the launcher probe that database when it commits, as a
 * CREATE EXTENSION does its own, instead of leaving it unserved until the
 * launcher's next nap ends.  Its owner may run it without being a
 * superuser, in a loop: each costs one probe, in that database.
 *
 * IDENTIFICATION
 *	  src/pause.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pause.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

/* how long a command waits for the database's workers to exit */
#define STOP_TIMEOUT_MS 10000

/* this backend holds pauses, which end with its transaction */
static bool pauses_held = false;
static bool release_callback_registered = false;

/* The option called name among a statement's options, or NULL. */
static DefElem *
find_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, name) == 0)
			return opt;
	}
	return NULL;
}

/*
 * The name of the database that a utility statement needs alone, or NULL:
 * the database dropped, renamed or moved, or the template copied.
 */
static const char *
database_needed_alone(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return ((DropdbStmt *) parsetree)->dbname;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				return ((RenameStmt *) parsetree)->subname;
			return NULL;
		case T_AlterDatabaseStmt:
			{
				AlterDatabaseStmt *stmt = (AlterDatabaseStmt *) parsetree;

				if (find_option(stmt->options, "tablespace") != NULL)
					return stmt->dbname;
				return NULL;
			}
		case T_CreatedbStmt:
			{
				DefElem    *template = find_option(((CreatedbStmt *) parsetree)->options,
												   "template");

				/* as in createdb(): no template, or DEFAULT, is template1 */
				if (template == NULL || template->arg == NULL)
					return "template1";
				return defGetString(template);
			}
		default:
			return NULL;
	}
}

/*
 * At the end of a transaction that paused databases (committed, rolled
 * back or prepared), lift its pauses, which has the launcher probe those
 * databases again: once its locks are gone, not at commit.  A worker started
 * while a rename's lock on the database is still held waits for it, then
 * finds its database's old name gone and exits; the launcher, having
 * probed the database, would not try again before LAUNCHER_NAP_MS.
 */
static void
pause_release_callback(ResourceReleasePhase phase, bool isCommit,
					   bool isTopLevel, void *arg)
{
	if (!pauses_held || !isTopLevel || phase != RESOURCE_RELEASE_AFTER_LOCKS)
		return;
	webhook_pause_release_all();
	pauses_held = false;
}

/*
 * Before a utility statement: if it needs a database alone, pause that
 * database and wait, a bounded time, for its workers to exit.  Returns the
 * pause, for pause_statement_failed(), or -1; *stopped is set to how many
 * workers were stopped.
 */
int
pause_before_statement(Node *parsetree, int *stopped)
{
	const char *dbname = database_needed_alone(parsetree);
	Oid			dboid;
	int			pause;
	TimestampTz deadline;

	*stopped = 0;
	if (dbname == NULL)
		return -1;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid))
		return -1;				/* the statement itself says so */
	/*
	 * Each of these commands needs its database's owner (a template marked
	 * so may be copied by others, but no worker serves a template): anybody
	 * else's would only fail, after stopping the workers for nothing.
	 */
	if (!pg_database_ownercheck(dboid, GetUserId()))
		return -1;

	if (!release_callback_registered)
	{
		RegisterResourceReleaseCallback(pause_release_callback, NULL);
		release_callback_registered = true;
	}
	pause = webhook_pause_take(dboid, stopped);
	if (pause < 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("the webhook workers of database \"%s\" were not stopped", dbname),
				 errdetail("Too many databases are paused at once."),
				 errhint("If the command fails because they are connected, run it again.")));
		return -1;
	}
	pauses_held = true;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), STOP_TIMEOUT_MS);
	while (webhook_workers_running(dboid) > 0 && GetCurrentTimestamp() < deadline)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return pause;
}

/*
 * The statement failed: the database it paused (pause, or -1) may have
 * its workers back at once, whether or not the transaction goes on (a
 * savepoint, an exception block): lifting the pause has it probed.
 */
void
pause_statement_failed(int pause)
{
	if (pause < 0)
		return;
	webhook_pause_release(pause);
}

/*
 * Does ALTER DATABASE stmt allow connections, or make the database no
 * template: may the launcher serve it now, when it could not before?
 */
static bool
database_may_be_served_now(AlterDatabaseStmt *stmt)
{
	DefElem    *allow = find_option(stmt->options, "allow_connections");
	DefElem    *template = find_option(stmt->options, "is_template");

	return (allow != NULL && defGetBoolean(allow)) ||
		(template != NULL && !defGetBoolean(template));
}

/*
 * After a statement that succeeded: warn when it leaves a served database,
 * or the copy of one, unserved because webhook.database_name does not name
 * its new name; and have the launcher probe the database an ALTER DATABASE
 * may let it serve, when the statement's transaction commits.  stopped: how
 * many workers the statement's pause stopped.
 */
void
pause_after_statement(Node *parsetree, int stopped)
{
	if (IsA(parsetree, AlterDatabaseStmt) &&
		database_may_be_served_now((AlterDatabaseStmt *) parsetree))
	{
		Oid			dboid = get_database_oid(((AlterDatabaseStmt *) parsetree)->dbname,
											 true);

		if (OidIsValid(dboid))
			webhook_probe_at_commit(dboid);
	}
	else if (IsA(parsetree, RenameStmt) &&
		((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
	{
		RenameStmt *stmt = (RenameStmt *) parsetree;

		if (webhook_database_wanted(stmt->subname) &&
			!webhook_database_wanted(stmt->newname))
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("the webhook workers will not serve database \"%s\"",
							stmt->newname),
					 errdetail("The setting webhook.database_name names its old name \"%s\", not its new one.",
							   stmt->subname),
					 errhint("Add \"%s\" to webhook.database_name (or set it to *) and restart PostgreSQL.",
							 stmt->newname)));
	}
	else if (IsA(parsetree, CreatedbStmt) && stopped > 0)
	{
		CreatedbStmt *stmt = (CreatedbStmt *) parsetree;

		if (!webhook_database_wanted(stmt->dbname))
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("the webhook workers will not serve database \"%s\"",
							stmt->dbname),
					 errdetail("It is a copy of database \"%s\", which they serve, but webhook.database_name does not name it.",
							   database_needed_alone(parsetree)),
					 errhint("Add \"%s\" to webhook.database_name (or set it to *) and restart PostgreSQL.",
							 stmt->dbname)));
	}
}
