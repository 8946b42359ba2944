/*-------------------------------------------------------------------------
 *
 * api.c
 *	  SQL-callable C entry points that are neither the trigger nor signing:
 *	  waking the worker, waiting for it, register()'s reachability check,
 *	  the caller of the SECURITY DEFINER API, preview(), the workers'
 *	  shared-memory gauges for metrics(), the sizes of an event's values,
 *	  stored and as text, for the claim, and the cluster's identifier for
 *	  the log's cursors.
 *
 * IDENTIFICATION
 *	  src/api.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/xlog.h"
#include "attempt.h"
#include "fmgr.h"
#include "funcapi.h"
#include "http.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "queue.h"
#include "transform.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(webhook_wake);
PG_FUNCTION_INFO_V1(webhook_wake_for);
PG_FUNCTION_INFO_V1(webhook_wake_launcher_sql);
PG_FUNCTION_INFO_V1(webhook_wait_until_running);
PG_FUNCTION_INFO_V1(webhook_is_preloaded);
PG_FUNCTION_INFO_V1(webhook_system_identifier);
PG_FUNCTION_INFO_V1(webhook_http_head);
PG_FUNCTION_INFO_V1(webhook_caller);
PG_FUNCTION_INFO_V1(webhook_preview);
PG_FUNCTION_INFO_V1(webhook_workers_sql);

/*
 * webhook.wake(): wake the worker when the calling transaction commits.
 */
Datum
webhook_wake(PG_FUNCTION_ARGS)
{
	webhook_wake_at_commit();
	PG_RETURN_VOID();
}

/*
 * webhook_internal.wake_for(hook_id): wake the worker when the calling transaction
 * commits, naming the hook it gave work (redeliver(), replay(), ping()): a
 * claim then looks at that hook, not at every hook (worker.c).
 */
Datum
webhook_wake_for(PG_FUNCTION_ARGS)
{
	Datum		hook_id = PG_GETARG_DATUM(0);

	webhook_wake_at_commit_for(&hook_id, 1, true);
	PG_RETURN_VOID();
}

/*
 * webhook_internal.wake_launcher(): have the launcher probe this database
 * when the calling transaction commits (the install script calls it).
 */
Datum
webhook_wake_launcher_sql(PG_FUNCTION_ARGS)
{
	webhook_probe_at_commit(MyDatabaseId);
	PG_RETURN_VOID();
}

/*
 * webhook.wait_until_running(timeout interval): true once the database's
 * webhook.workers workers run (have taken their slots), false if the
 * timeout passes first.
 */
Datum
webhook_wait_until_running(PG_FUNCTION_ARGS)
{
	Interval   *timeout = PG_GETARG_INTERVAL_P(0);
	TimestampTz deadline;

	if (timeout->time < 0 || timeout->day < 0 || timeout->month < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	/* months as 30 days, as interval comparison counts them */
	deadline = GetCurrentTimestamp() + timeout->time +
		((int64) timeout->month * DAYS_PER_MONTH + timeout->day) * USECS_PER_DAY;

	if (!webhook_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("webhook must be loaded via shared_preload_libraries")));

	while (webhook_workers_running(MyDatabaseId) < webhook_workers)
	{
		if (GetCurrentTimestamp() >= deadline)
			PG_RETURN_BOOL(false);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_BOOL(true);
}

Datum
webhook_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(webhook_preloaded);
}

/*
 * The cluster's system identifier, as pg_control_system() shows it, from
 * memory (pg_control_system() reads the control file).
 */
Datum
webhook_system_identifier(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) GetSystemIdentifier());
}

/* An optional text argument as a C string, or NULL. */
static char *
optional_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * webhook_internal.http_head(url, timeout_ms, tls_verify, ca_file, client_cert_file,
 * client_key_file, client_key_password): the status code of a HEAD request
 * to url, with a transport's TLS settings, or NULL when nothing answered.
 * The request policy (no redirects, the address policy) is the worker's:
 * http_head() in http.c.
 */
Datum
webhook_http_head(PG_FUNCTION_ARGS)
{
	HttpTarget	target = {0};
	int			status;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("url and timeout_ms must not be null")));
	target.url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	target.timeout_ms = PG_GETARG_INT32(1);
	target.tls_verify = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	target.ca_file = optional_text(fcinfo, 3);
	target.client_cert_file = optional_text(fcinfo, 4);
	target.client_key_file = optional_text(fcinfo, 5);
	target.client_key_password = optional_text(fcinfo, 6);

	status = http_head(&target);
	if (status == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(status);
}

/*
 * webhook_internal.caller(): the role the session acts as (its login role, or the
 * role of SET ROLE).  The API's SECURITY DEFINER functions run as the
 * extension's owner, so current_user there is the owner; the outer user is
 * who called them, and the one whose tenant grants they check.  Security
 * definer functions in between (ours or anybody's) do not change it.
 *
 * Code PostgreSQL or this extension runs on somebody's behalf (a transform
 * in the worker or in preview(), an index expression under autovacuum)
 * runs as a security-restricted operation, under an outer user that is not
 * its author: there, nobody may act through the API.
 */
Datum
webhook_caller(PG_FUNCTION_ARGS)
{
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the webhook API cannot be used within a security-restricted operation"),
				 errdetail("Transforms, index expressions and maintenance commands run as such.")));
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * The credentials of a header line masked, as the listings show them:
 * "Authorization: Bearer ********".
 */
static char *
masked_header(char *line)
{
	const char *space;

	if (pg_strncasecmp(line, "Authorization:", strlen("Authorization:")) != 0)
		return line;
	space = strchr(line + strlen("Authorization: "), ' ');
	return psprintf("%.*s ********",
					space ? (int) (space - line) : (int) strlen("Authorization:"), line);
}

/*
 * webhook_internal.preview(hook_id, event_id): the request the worker would send
 * the hook for the event now: its URL, header lines (User-Agent and
 * signatures included, credentials and query key masked; curl adds Host,
 * Accept and Content-Length) and body, made by the hook's transform if it has one.
 * webhook.preview() checks the caller's right to see them first.
 */
Datum
webhook_preview(PG_FUNCTION_ARGS)
{
	int64		hook_id = PG_GETARG_INT64(0);
	int64		event_id = PG_GETARG_INT64(1);
	Attempt    *req;
	List	   *lines;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	req = queue_preview(hook_id, event_id, CurrentMemoryContext);
	if (req == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("hook " INT64_FORMAT " or event " INT64_FORMAT " does not exist",
						hook_id, event_id)));
	if (OidIsValid(req->transform))
	{
		transform_body(req, 0);
		if (req->error != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("%s", req->error),
					 errhint("The worker records this as the attempt's error and retries.")));
	}

	lines = attempt_header_lines(req, (int64) time(NULL));
	elems = palloc(sizeof(Datum) * Max(list_length(lines), 1));
	foreach(lc, lines)
		elems[n++] = CStringGetTextDatum(masked_header(lfirst(lc)));

	values[0] = CStringGetTextDatum(req->log_url);
	values[1] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = CStringGetTextDatum(req->body);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * webhook_internal.workers(): one row (worker, up, pid, in_flight, held,
 * config_generation) per
 * delivery worker this database should have (webhook.workers of them,
 * numbered from 1): whether it runs, and what it last published in shared
 * memory (shmem.c): the requests it has on the wire, and the deliveries it
 * holds (claimed, not yet recorded; they are 'pending' in the table), and
 * how many configuration reloads (SIGHUPs) it has taken since it started,
 * which the end-to-end tests poll after pg_reload_conf().
 * Without the library preloaded no worker runs.
 */
Datum
webhook_workers_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WebhookWorkerInfo running[WEBHOOK_MAX_SLOTS];
	int			n_running;
	int			w;

	InitMaterializedSRF(fcinfo, 0);
	n_running = webhook_workers_of(MyDatabaseId, running, WEBHOOK_MAX_SLOTS);
	for (w = 0; w < webhook_workers; w++)
	{
		Datum		values[6] = {Int32GetDatum(w + 1), BoolGetDatum(false), 0,
		Int32GetDatum(0), Int32GetDatum(0), 0};
		bool		nulls[6] = {false, false, true, false, false, true};
		int			i;

		for (i = 0; i < n_running; i++)
		{
			if (running[i].index != w)
				continue;
			values[1] = BoolGetDatum(true);
			values[2] = Int32GetDatum(running[i].pid);
			nulls[2] = false;
			values[3] = Int32GetDatum(running[i].in_flight);
			values[4] = Int32GetDatum(running[i].held);
			values[5] = Int64GetDatum(running[i].config_generation);
			nulls[5] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

