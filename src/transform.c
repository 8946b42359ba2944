/*-------------------------------------------------------------------------
 *
 * transform.c
 *	  A hook's transform: the body it sends, made by a SQL function of the
 *	  event (webhook.hook.transform), run with the rights of the role that
 *	  set it (webhook.hook.transform_role) and never with more.
 *
 * The worker calls transform_body() for each claimed request of such a
 * hook, inside its claim transaction; webhook.preview() does the same.  The
 * function runs in a subtransaction that is always rolled back (whatever it
 * wrote or set, a setting of the session included, is undone: only its
 * result is kept), as its role, in a security-restricted operation (as
 * PostgreSQL runs index expressions, and in which the webhook API refuses
 * to act), under a statement timeout in the worker.  Whatever it does
 * wrong (an error, no result, taking too long, a role that may no longer
 * execute it, or a function whose owner lacks that role's rights) fails
 * that request alone, with the reason as the attempt's error, to be retried
 * like any failed attempt.
 *
 * Each function is looked up once per transaction (the worker's claim
 * calls it for a whole batch), and its language's own caches serve what
 * they can: PL/pgSQL's compiled function and plans across transactions; a
 * SQL function is planned again at each call, since each runs in a
 * subtransaction of its own.  The lookup is not kept longer: a
 * function replaced meanwhile, perhaps in another language, would leave it
 * pointing at the old handler and the old handler's freed state.
 *
 * IDENTIFICATION
 *	  src/transform.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "miscadmin.h"
#include "spi_util.h"
#include "storage/proc.h"
#include "transform.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

/* functions looked up in this transaction; forgotten past this many */
#define MAX_CACHED_FUNCTIONS 64

typedef struct CachedFunction
{
	Oid			fn;
	FmgrInfo	flinfo;
} CachedFunction;

static MemoryContext function_cxt = NULL;
static CachedFunction *functions = NULL;
static int	n_functions = 0;
static LocalTransactionId functions_lxid = InvalidLocalTransactionId;

/*
 * The FmgrInfo of fn, looked up once in this transaction; an error if fn
 * no longer exists.
 */
static FmgrInfo *
lookup_function(Oid fn)
{
	int			i;

	if (functions_lxid != MyProc->lxid)
		n_functions = 0;
	for (i = 0; i < n_functions; i++)
		if (functions[i].fn == fn)
			return &functions[i].flinfo;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(fn)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("transform function %u does not exist", fn)));
	if (function_cxt == NULL || n_functions == 0 || n_functions == MAX_CACHED_FUNCTIONS)
	{
		if (function_cxt == NULL)
			function_cxt = AllocSetContextCreate(TopMemoryContext,
												 "webhook transforms",
												 ALLOCSET_SMALL_SIZES);
		MemoryContextReset(function_cxt);
		functions = MemoryContextAlloc(function_cxt,
									   sizeof(CachedFunction) * MAX_CACHED_FUNCTIONS);
		n_functions = 0;
		functions_lxid = MyProc->lxid;
	}
	functions[n_functions].fn = fn;
	fmgr_info_cxt(fn, &functions[n_functions].flinfo, function_cxt);
	return &functions[n_functions++].flinfo;
}

/*
 * Disarm the worker's statement timeout; if it fired after the function
 * returned, forget the cancel it asked for, which would hit whatever the
 * worker does next.
 */
static void
stop_timer(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
		QueryCancelPending = false;
}

/*
 * Call the transform as its role, within timeout_ms if not 0; the body as
 * text, allocated in cxt.  Raises an error for anything that keeps it from
 * giving one.
 */
static char *
call_transform(Attempt *req, int timeout_ms, MemoryContext cxt)
{
	FmgrInfo   *flinfo = lookup_function(req->transform);
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;
	WebhookSavedUser saved;
	char	   *role;

	role = OidIsValid(req->transform_role)
		? GetUserNameFromId(req->transform_role, true) : NULL;
	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the role that set transform %s no longer manages the hook's tenant",
						format_procedure(req->transform))));
	if (pg_proc_aclcheck(req->transform, req->transform_role, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role %s may not execute transform %s",
						role, format_procedure(req->transform))));
	/* its owner could change what runs with these rights otherwise */
	if (!has_privs_of_role(webhook_function_owner(req->transform), req->transform_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("transform %s is owned by a role without the rights of %s",
						format_procedure(req->transform), role)));

	InitFunctionCallInfoData(*fcinfo, flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = req->event;
	fcinfo->args[0].isnull = false;

	webhook_become(req->transform_role, true, &saved);
	if (timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);
	result = FunctionCallInvoke(fcinfo);
	if (timeout_ms > 0)
		stop_timer();
	webhook_restore_user(&saved);

	if (fcinfo->isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("transform %s returned NULL", format_procedure(req->transform))));
	return MemoryContextStrdup(cxt, JsonbToCString(NULL,
												   &DatumGetJsonbP(result)->root,
												   VARSIZE(DatumGetPointer(result))));
}

/* call_transform() as try_in_subtransaction() calls it */
typedef struct TransformCall
{
	Attempt    *req;
	int			timeout_ms;
} TransformCall;

static void
transform_call(void *arg)
{
	TransformCall *call = (TransformCall *) arg;

	call->req->body = call_transform(call->req, call->timeout_ms, call->req->cxt);
}

/* It failed: the rollback restores the user, not the timer. */
static void
transform_failed(void *arg)
{
	TransformCall *call = (TransformCall *) arg;

	if (call->timeout_ms > 0)
		stop_timer();
}

/*
 * Set req->body from the hook's transform, or, when it fails, req->error
 * (the request is then not sent; its attempt records the error).  The
 * worker gives a timeout_ms (its own statements have no statement_timeout);
 * a session passes 0, and its statement_timeout applies.  Caller is in a
 * transaction.
 */
void
transform_body(Attempt *req, int timeout_ms)
{
	TransformCall call = {req, timeout_ms};
	ErrorData  *edata;

	/* whatever else it did is undone: the subtransaction is rolled back */
	edata = try_in_subtransaction(transform_call, transform_failed, &call, false);
	if (edata != NULL)
	{
		req->error = MemoryContextStrdup(req->cxt,
										 psprintf("transform failed: %s", edata->message));
		FreeErrorData(edata);
	}
}
