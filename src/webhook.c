/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Module entry point: settings, shared memory and utility hooks, and
 *	  the background worker's registration.  Nothing else happens here.
 *
 * Loaded through shared_preload_libraries, the library registers the
 * launcher (launcher.c), which starts webhook.workers delivery workers in
 * each database that webhook.database_name names (or every one, with '*')
 * where the extension is installed.  Loaded any other way (CREATE EXTENSION in a
 * session), it only defines the settings; the install script then warns that
 * no deliveries will be made.
 *
 * Every setting is checked when it is set (check hooks): a bad value is
 * refused and the previous one stays, rather than failing later where it
 * is used.
 *
 * IDENTIFICATION
 *	  src/webhook.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include <curl/curl.h>

#include "address.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "pause.h"
#include "spi_util.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *webhook_database_name = NULL;
int			webhook_max_in_flight = 64;
int			webhook_batch_size = 200;
int			webhook_max_response_bytes = 4096;
int			webhook_max_body_bytes = 4 * 1024 * 1024;
char	   *webhook_user_agent = NULL;
bool		webhook_enabled = true;
char	   *webhook_deny_networks = NULL;
int			webhook_workers = 1;
static char *webhook_retention = NULL;
static char *webhook_disable_after = NULL;
Interval	webhook_retention_span;
Interval	webhook_disable_after_span;
bool		webhook_auto_prune = true;
bool		webhook_debug_sql_claims = false;

/*
 * What a tenant may configure (webhook_internal.tenant_limit(), read by the API's checks
 * and the catalog's write triggers).  PGC_SUSET: a tenant's role cannot
 * raise them with SET; an administrator sets them in postgresql.conf, or a
 * superuser for a session.
 */
static int	webhook_max_timeout = 300000;	/* ms */
static int	webhook_max_retry_steps = 50;
static int	webhook_max_event_types = 100;
static int	webhook_max_hooks_per_tenant = 10000;
static int	webhook_max_transports_per_tenant = 1000;

bool		webhook_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

void		_PG_init(void);

static void
webhook_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	webhook_shmem_request();
}

static void
webhook_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	webhook_shmem_startup();
}

/*
 * After DROP ROLE: in this database, if it has the extension (of a catalog
 * that knows how), the grants of the roles dropped go, and the hooks whose
 * transform they set lose it and are disabled
 * (webhook_internal.forget_dropped_roles()), so that a role that gets one of their
 * oids later is given nothing.  Run as the function's owner, the
 * extension's: whoever may drop roles may have no rights on the schema.
 * Other databases' grants are inert meanwhile (webhook_internal.tenants_of() joins
 * pg_roles) and go at their next grant_tenant() or DROP ROLE.
 */
static void
forget_dropped_roles(void)
{
	Oid			fn;
	WebhookSavedUser saved;

	if (!OidIsValid(get_extension_oid("webhook", true)))
		return;
	fn = LookupFuncName(list_make2(makeString("webhook_internal"),
								   makeString("forget_dropped_roles")),
						0, NULL, true);
	if (!OidIsValid(fn))
		return;

	webhook_become(webhook_function_owner(fn), false, &saved);
	spi_connect_checked();
	spi_check(SPI_execute("SELECT webhook_internal.forget_dropped_roles()", false, 0),
			  SPI_OK_SELECT, false, "forgetting dropped roles");
	SPI_finish();
	webhook_restore_user(&saved);
}

/*
 * Run a utility statement.  Before DROP DATABASE, and the other commands
 * that need a database alone, pause that database (pause.c): its workers'
 * connections would make them fail.  After COMMIT PREPARED,
 * wake the workers: the prepared transaction may have enqueued deliveries,
 * and its wake-up was not owed to the session that prepared it (shmem.c).
 */
static void
webhook_process_utility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	int			stopped;
	int			pause = pause_before_statement(parsetree, &stopped);

	PG_TRY();
	{
		if (prev_process_utility_hook)
			prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
									  params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		pause_statement_failed(pause);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pause_after_statement(parsetree, stopped);

	if (IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
		webhook_wake_worker(NULL, 0, true);

	if (IsA(parsetree, DropRoleStmt))
		forget_dropped_roles();
}

/*
 * The check of an interval setting (what names it in a message): an
 * interval, not negative.  Its value
 * is passed, as *extra, to the assign hook, which keeps it for the worker.
 */
static bool
check_interval_setting(const char *what, char **newval, void **extra)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_itm_in itm;
	Interval	span;
	int			rc;

	rc = ParseDateTime(*newval, workbuf, sizeof(workbuf), field, ftype,
					   MAXDATEFIELDS, &nf);
	if (rc == 0)
		rc = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm);
	if (rc == DTERR_BAD_FORMAT)
		rc = DecodeISO8601Interval(*newval, &dtype, &itm);
	if (rc != 0 || dtype != DTK_DELTA || itmin2interval(&itm, &span) != 0)
	{
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		GUC_check_errhint("Give an interval such as '30 days'.");
		return false;
	}
	if (span.time < 0 || span.day < 0 || span.month < 0)
	{
		GUC_check_errdetail("The %s must not be negative.", what);
		return false;
	}
	/* GUC frees what extra points to with free() */
	*extra = malloc(sizeof(Interval));
	if (*extra == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	memcpy(*extra, &span, sizeof(Interval));
	return true;
}

/* check hook of webhook.retention */
static bool
check_retention(char **newval, void **extra, GucSource source)
{
	return check_interval_setting("retention", newval, extra);
}

static void
assign_retention(const char *newval, void *extra)
{
	memcpy(&webhook_retention_span, extra, sizeof(Interval));
}

/* check hook of webhook.disable_after; 0 turns endpoint health off */
static bool
check_disable_after(char **newval, void **extra, GucSource source)
{
	return check_interval_setting("disable_after", newval, extra);
}

static void
assign_disable_after(const char *newval, void *extra)
{
	memcpy(&webhook_disable_after_span, extra, sizeof(Interval));
}

/* check hook of webhook.user_agent: it becomes a header line */
static bool
check_user_agent(char **newval, void **extra, GucSource source)
{
	const char *p;

	for (p = *newval; *p; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7F)
		{
			GUC_check_errdetail("The user agent must not contain control characters.");
			return false;
		}
	}
	return true;
}

PG_FUNCTION_INFO_V1(webhook_limit);

/*
 * webhook_internal.tenant_limit(name): the value of one of the settings above, by its
 * name without the prefix (max_timeout in milliseconds).  A C function, so
 * that calling it loads the library, which defines the settings: a value a
 * user gave the placeholder before that is then refused (PGC_SUSET), never
 * read.
 */
Datum
webhook_limit(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strcmp(name, "max_timeout") == 0)
		PG_RETURN_INT32(webhook_max_timeout);
	if (strcmp(name, "max_retry_steps") == 0)
		PG_RETURN_INT32(webhook_max_retry_steps);
	if (strcmp(name, "max_event_types") == 0)
		PG_RETURN_INT32(webhook_max_event_types);
	if (strcmp(name, "max_hooks_per_tenant") == 0)
		PG_RETURN_INT32(webhook_max_hooks_per_tenant);
	if (strcmp(name, "max_transports_per_tenant") == 0)
		PG_RETURN_INT32(webhook_max_transports_per_tenant);
	elog(ERROR, "unknown webhook limit \"%s\"", name);
	PG_RETURN_NULL();
}

static void
define_settings(void)
{
	/*
	 * A postmaster setting can only be defined while preloading; loaded into
	 * one session, where there is no worker to configure, it is shown only.
	 */
	DefineCustomStringVariable("webhook.database_name",
							   "Databases whose deliveries are sent: a comma-separated list, or * for every database with the extension.",
							   NULL,
							   &webhook_database_name,
							   "postgres",
							   process_shared_preload_libraries_in_progress
							   ? PGC_POSTMASTER : PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.workers",
							"Number of delivery workers per database; each sends the deliveries of its share of the transports.",
							NULL,
							&webhook_workers,
							1, 1, WEBHOOK_MAX_WORKERS,
							process_shared_preload_libraries_in_progress
							? PGC_POSTMASTER : PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_in_flight",
							"Maximum number of HTTP requests in flight across the hooks of one worker.",
							NULL,
							&webhook_max_in_flight,
							64, 1, 10000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.batch_size",
							"Maximum number of deliveries claimed from the queue at once.",
							NULL,
							&webhook_batch_size,
							200, 1, 10000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("webhook.retention",
							   "How long finished deliveries are kept, and attempts and events at least: by webhook.prune(), and by the worker with webhook.auto_prune.",
							   NULL,
							   &webhook_retention,
							   "30 days",
							   PGC_USERSET, 0,
							   check_retention, assign_retention, NULL);
	DefineCustomBoolVariable("webhook.auto_prune",
							 "The worker deletes finished deliveries older than webhook.retention, and empties the slots of attempts and events older than it.",
							 NULL,
							 &webhook_auto_prune,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("webhook.disable_after",
							   "A hook whose every delivery died for this long is disabled; 0 never disables one.",
							   NULL,
							   &webhook_disable_after,
							   "5 days",
							   PGC_SIGHUP, 0,
							   check_disable_after, assign_disable_after, NULL);
	DefineCustomIntVariable("webhook.max_response_bytes",
							"Bytes of each response body kept in webhook.attempt.",
							NULL,
							&webhook_max_response_bytes,
							4096, 0, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_body_bytes",
							"Largest event sent, as stored, and largest request body: a larger one dies unsent.",
							NULL,
							&webhook_max_body_bytes,
							4 * 1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("webhook.user_agent",
							   "User-Agent header of every request.",
							   NULL,
							   &webhook_user_agent,
							   "pg-webhook/" WEBHOOK_VERSION,
							   PGC_SIGHUP, 0,
							   check_user_agent, NULL, NULL);
	DefineCustomBoolVariable("webhook.enabled",
							 "Sends deliveries; off pauses sending (events are still recorded).",
							 NULL,
							 &webhook_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("webhook.deny_networks",
							   "Networks (CIDR list) that deliveries may never connect to.",
							   NULL,
							   &webhook_deny_networks,
							   "169.254.0.0/16,fe80::/10",
							   PGC_SIGHUP, 0,
							   deny_networks_check, deny_networks_assign, NULL);

	DefineCustomIntVariable("webhook.max_timeout",
							"Longest connect_timeout and timeout a transport may be given.",
							NULL,
							&webhook_max_timeout,
							300000, 1000, 86400000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_retry_steps",
							"Most steps a hook's retry_schedule may have.",
							NULL,
							&webhook_max_retry_steps,
							50, 0, 10000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_event_types",
							"Most event type patterns a hook may have.",
							NULL,
							&webhook_max_event_types,
							100, 1, 100000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_hooks_per_tenant",
							"Most hooks a tenant may have.",
							NULL,
							&webhook_max_hooks_per_tenant,
							10000, 1, 10000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("webhook.max_transports_per_tenant",
							"Most transports a tenant may have.",
							NULL,
							&webhook_max_transports_per_tenant,
							1000, 1, 10000000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("webhook.debug_sql_claims",
							 "Claims with the claim's SQL statements only, never the claim of listed logs in C.",
							 "A developer option: the tests check that both ways of claiming keep the same rules.",
							 &webhook_debug_sql_claims,
							 false,
							 PGC_SIGHUP, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("webhook");
}

void
_PG_init(void)
{
	BackgroundWorker worker;

	define_settings();

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	webhook_preloaded = true;

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("webhook could not initialize libcurl")));

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = webhook_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = webhook_shmem_startup_hook;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = webhook_process_utility;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "webhook");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "webhook_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "webhook launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "webhook launcher");
	RegisterBackgroundWorker(&worker);
}
