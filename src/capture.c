/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The row trigger webhook.capture() and webhook.emit(): changes become
 *	  events in the writing transaction (transactional outbox); and what a
 *	  hook is owed from that log of events.
 *
 * An event is logged (stored) when a hook of its tenant subscribes to its
 * type, active or not, whatever the hooks' filters; it is stored with the
 * hooks whose filter it passes, active or not, ordered or not, which read
 * it through their cursors once the transaction has committed (an
 * inactive hook's cursor stays where the hook stopped: re-enabled, it
 * reads on from there; enqueue.c), so a rolled-back change leaves nothing
 * and a committed one is in the queue.
 * The workers are woken when the transaction commits, for the active
 * hooks.  A hook replayed or made to start in the past is sent what it is
 * owed from the log by webhook_internal.queue_from_log(), with the
 * trigger's own matching of types and filters (hook_wants()).
 *
 * Caches, all backend-local:
 *	- the hooks (id, active, event type patterns, filter) of each tenant the
 *	  session has had an event of, read when its first event comes, with
 *	  that tenant's hooks only: a tenant with many hooks costs the sessions
 *	  that write other tenants' events neither memory nor time.  A relcache
 *	  invalidation of webhook.hook or webhook.transport, which the trigger
 *	  webhook_internal.hooks_changed() sends on every change to them that matters,
 *	  makes every tenant's entry stale; each is read again at its tenant's
 *	  next event, so a change costs a session a read of the tenants it
 *	  writes, not of all of them;
 *	- the attribute numbers of a watched table's columns, per statement, in
 *	  the trigger's fn_extra.
 *
 * A hook's filter is evaluated in the writer (payload @@ filter) and never
 * fails the write: the filters that can raise an error are evaluated in a
 * subtransaction, the others (most: keys compared with constants) without.
 *
 * Privileges: both entry points run as their caller, so whatever a row's
 * types run while the row is read (output functions, casts to json) runs
 * with the writer's rights, never more.  Only the hook list read and the
 * queue insert run as the extension's owner (the owner of the C function),
 * as PostgreSQL's foreign-key triggers do; writers of a watched table need
 * no rights on the webhook schema.  That SQL runs under the caller's
 * search_path: every function and operator in it is schema-qualified.
 *
 * The trigger's arguments are the watch settings: resource, tenant column,
 * id column, state column (empty for none).  webhook.watch() writes them,
 * and an event trigger (webhook_internal.follow_alter_table) follows renames.  A
 * watched column that was dropped is no reason to fail the writer: without
 * the state column updates are <RESOURCE>_UPDATE, without the id column
 * events have no resource_id, and without the tenant column nothing is
 * captured, since the rows can no longer be routed to a tenant.
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "enqueue.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "spi_util.h"
#include "storage/lmgr.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

/* One hook, as far as logging and fan-out need it. */
typedef struct CachedHook
{
	int64		id;
	bool		active;
	int			npatterns;
	char	  **patterns;		/* "*", "PREFIX_*" or an exact type */
	JsonPath   *filter;			/* NULL: every event of those types */
	bool		filter_guarded; /* evaluate it in a subtransaction */
} CachedHook;

/*
 * The hooks of one tenant, active or not: an entry of hook_cache, loaded
 * when the session first has an event of that tenant and again at its
 * first event after an invalidation.
 */
typedef struct TenantHooks
{
	char	   *tenant;			/* the key; a copy in hook_cache_cxt */
	bool		loaded;
	uint64		loaded_at;		/* hooks_invalidations before it was read */
	MemoryContext cxt;			/* hooks' memory; NULL while there are none */
	int			nhooks;
	CachedHook *hooks;
} TenantHooks;

/*
 * What an event's tenant and type select: whether any hook subscribes to
 * it (the event is then logged), and the hooks it is to be delivered to,
 * active or not, before their filters: their ids, and copies of their
 * filters (NULL for none), safe from a reload of the cache while the row
 * is serialised.
 */
typedef struct MatchedHooks
{
	bool		subscribed;
	int			n;
	Datum	   *ids;
	JsonPath  **filters;
	bool	   *guarded;
	bool	   *active;			/* the workers are woken for these */
} MatchedHooks;

/*
 * More tenants than this in one session's cache and it starts afresh: a
 * session that writes events of ever new tenants (most with no hook) keeps
 * a bounded cache.
 */
#define HOOK_CACHE_MAX_TENANTS 10000

/*
 * A filter whose jsonpath is longer than this is evaluated in a
 * subtransaction whatever it holds: its evaluation recurses as deep as it
 * nests (filter_may_fail).
 */
#define FILTER_GUARD_SIZE 1024

static MemoryContext hook_cache_cxt = NULL;
static HTAB *hook_cache = NULL;	/* tenant -> TenantHooks */
static uint64 hooks_invalidations = 0;
static Oid	hook_relid = InvalidOid;
static Oid	transport_relid = InvalidOid;
static bool inval_callback_registered = false;

/* Per-statement state of one capture trigger, in fn_extra. */
typedef struct CaptureState
{
	Oid			tgoid;
	Oid			owner;			/* who writes the queue: the extension's owner */
	char	   *resource;
	char	   *type_prefix;	/* resource upper-cased, non-alphanumerics "_" */
	AttrNumber	tenant_attnum;	/* 0 when events go to tenant "default" */
	bool		tenant_dropped; /* the tenant column is gone: capture nothing */
	AttrNumber	id_attnum;		/* 0 when events have no resource_id */
	AttrNumber	state_attnum;	/* 0 without a state column */
	FmgrInfo   *to_jsonb;		/* the table's rows as jsonb */
} CaptureState;

/*
 * The owner of a function: for ours, the extension's owner (transform.c
 * asks it of transforms too).
 */
Oid
webhook_function_owner(Oid fn_oid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Act as role until webhook_restore_user(saved), what the backend acted as
 * before kept in *saved.  restricted: as a security-restricted operation,
 * as foreign-key triggers run theirs (our own catalog access as the
 * extension's owner, a transform as the role that set it).  An error in
 * between needs no restoring: (sub)transaction abort resets the user.
 */
void
webhook_become(Oid role, bool restricted, WebhookSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(role, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
}

/* Act as the backend did before webhook_become(saved) again. */
void
webhook_restore_user(const WebhookSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * The backend's one relcache callback of ours, registered before the first
 * event is stored: a change to webhook.hook or webhook.transport makes every
 * tenant's hooks stale (they are read again at that tenant's next event;
 * the invalidation does not say which tenant changed), and enqueue.c hears
 * of every one (the queue tables).
 */
static void
hooks_inval_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == hook_relid || relid == transport_relid)
		hooks_invalidations++;
	enqueue_forget_tables(relid);
}

/* hook_cache's keys are tenants, by pointer: hashed and compared as strings */
static uint32
tenant_key_hash(const void *key, Size keysize)
{
	const char *tenant = *(char *const *) key;

	return hash_bytes((const unsigned char *) tenant, strlen(tenant));
}

static int
tenant_key_compare(const void *a, const void *b, Size keysize)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The cache's memory context and its table of tenants, made empty; when
 * the session has seen too many tenants, everything it holds is dropped.
 */
static void
reset_hook_cache(void)
{
	HASHCTL		ctl;

	if (hook_cache_cxt == NULL)
		hook_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											   "webhook hook cache",
											   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(hook_cache_cxt);
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(TenantHooks);
	ctl.hash = tenant_key_hash;
	ctl.match = tenant_key_compare;
	ctl.hcxt = hook_cache_cxt;
	hook_cache = hash_create("webhook hooks by tenant", 16, &ctl,
							 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/*
 * Run a kept plan with the latest snapshot, not the statement's: a hook
 * committed after this transaction began has already invalidated the
 * cache, and must be in what we read now.
 */
static void
read_latest(SPIPlanPtr plan, Datum arg)
{
	spi_check(SPI_execute_snapshot(plan, &arg, NULL, GetLatestSnapshot(),
								   InvalidSnapshot, true, false, 0),
			  SPI_OK_SELECT, false, "loading hooks");
}

/*
 * Can evaluating this jsonpath item (and those after it) raise an error
 * that the @@ operator's silent mode does not turn into a non-match?  Those
 * are: .datetime()'s own errors; like_regex's (the regex engine's limits);
 * ** (any depth), which recurses as deep as the payload nests, so that a
 * row with a deeply nested jsonb column exhausts the stack; and
 * .keyvalue(), which copies the values it pairs with their keys, as deep
 * as they nest.  Every other item recurses only as deep as the jsonpath
 * itself nests, which the size limit bounds (filter_needs_guard), and its
 * errors (a missing key, a wrong type, a division by zero) are silenced.
 */
static bool
filter_may_fail(JsonPathItem *item)
{
	JsonPathItem cur = *item;
	JsonPathItem arg;
	JsonPathItem next;

	for (;;)
	{
		switch (cur.type)
		{
			case jpiAny:
			case jpiDatetime:
			case jpiKeyValue:
			case jpiLikeRegex:
				return true;
			case jpiAnd:
			case jpiOr:
			case jpiEqual:
			case jpiNotEqual:
			case jpiLess:
			case jpiGreater:
			case jpiLessOrEqual:
			case jpiGreaterOrEqual:
			case jpiAdd:
			case jpiSub:
			case jpiMul:
			case jpiDiv:
			case jpiMod:
			case jpiStartsWith:
				jspGetLeftArg(&cur, &arg);
				if (filter_may_fail(&arg))
					return true;
				jspGetRightArg(&cur, &arg);
				if (filter_may_fail(&arg))
					return true;
				break;
			case jpiNot:
			case jpiIsUnknown:
			case jpiExists:
			case jpiPlus:
			case jpiMinus:
			case jpiFilter:
				jspGetArg(&cur, &arg);
				if (filter_may_fail(&arg))
					return true;
				break;
			case jpiIndexArray:
				{
					int			i;

					for (i = 0; i < cur.content.array.nelems; i++)
					{
						JsonPathItem to;
						bool		range = jspGetArraySubscript(&cur, &arg, &to, i);

						if (filter_may_fail(&arg) || (range && filter_may_fail(&to)))
							return true;
					}
					break;
				}
			default:
				break;			/* no argument: a literal, key, accessor or
								 * method */
		}
		if (!jspGetNext(&cur, &next))
			return false;
		cur = next;
	}
}

/*
 * Must this filter be evaluated in a subtransaction (guarded_filter_matches)?
 * Only those that can fail are, so that the common filter (keys compared
 * with constants) costs the writer no subtransaction.  A long one is not
 * looked into: its evaluation, and this walk of it, recurse as deep as it
 * nests.
 */
static bool
filter_needs_guard(JsonPath *filter)
{
	JsonPathItem root;

	if (VARSIZE(filter) > FILTER_GUARD_SIZE)
		return true;
	jspInit(&root, filter);
	return filter_may_fail(&root);
}

/*
 * Read the tenant's hooks, active or not, into its entry, with an SPI
 * connection of its own.  An error leaves the entry not loaded, to be read
 * again at the next event.
 */
static void
load_tenant_hooks(TenantHooks *th)
{
	static SPIPlanPtr transports_plan = NULL;
	static SPIPlanPtr hooks_plan = NULL;
	Oid			text_type = TEXTOID;
	Oid			ids_type = INT8ARRAYOID;
	Oid			nsp;
	uint64		i;
	uint64		invalidations = hooks_invalidations;
	Datum		transport_ids;
	bool		isnull;
	uint64		nhooks;

	th->loaded = false;
	th->nhooks = 0;
	th->hooks = NULL;
	if (th->cxt != NULL)
		MemoryContextReset(th->cxt);

	spi_connect_checked();
	nsp = get_namespace_oid("webhook", false);
	hook_relid = get_relname_relid("hook", nsp);
	transport_relid = get_relname_relid("transport", nsp);

	/*
	 * The ids of the tenant's transports (both lookups are indexed:
	 * transport's unique (tenant, name), hook's transport_id); then their
	 * hooks, the inactive ones too (their events are logged).  Operators
	 * are qualified: this runs as the extension's owner under the caller's
	 * search_path.
	 *
	 * Both plans are kept, and planned anew for each execution with its
	 * argument's value (CURSOR_OPT_CUSTOM_PLAN): the hooks of a tenant are
	 * looked up by the ids of its transports, and only their values tell
	 * the planner, from the column's statistics, that a small tenant's
	 * hooks are a few rows of an index beside a large tenant's thousands (a
	 * generic plan, or a join, reads every hook).
	 */
	read_latest(spi_kept_plan(&transports_plan,
							  "SELECT pg_catalog.array_agg(id) FROM webhook.transport"
							  " WHERE tenant OPERATOR(pg_catalog.=) $1",
							  1, &text_type, CURSOR_OPT_CUSTOM_PLAN),
				CStringGetTextDatum(th->tenant));
	transport_ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	nhooks = 0;					/* no transport, no hook */
	if (!isnull)
	{
		read_latest(spi_kept_plan(&hooks_plan,
								  "SELECT id, event_types, filter, active FROM webhook.hook"
								  " WHERE transport_id OPERATOR(pg_catalog.=) ANY ($1)",
								  1, &ids_type, CURSOR_OPT_CUSTOM_PLAN),
					transport_ids);
		nhooks = SPI_processed;
	}

	if (nhooks > 0 && th->cxt == NULL)
	{
		th->cxt = AllocSetContextCreate(hook_cache_cxt, "webhook tenant hooks",
										ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(th->cxt, th->tenant);
	}
	if (nhooks > 0)
		th->hooks = MemoryContextAllocZero(th->cxt, sizeof(CachedHook) * nhooks);
	for (i = 0; i < nhooks; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		CachedHook *hook = &th->hooks[th->nhooks];
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int			j;
		Datum		filter;
		MemoryContext old;

		hook->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		hook->active = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nelems);

		old = MemoryContextSwitchTo(th->cxt);
		hook->patterns = palloc(sizeof(char *) * Max(nelems, 1));
		for (j = 0; j < nelems; j++)
			if (!nulls[j])
				hook->patterns[hook->npatterns++] = TextDatumGetCString(elems[j]);
		filter = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull)
		{
			hook->filter = DatumGetJsonPathPCopy(filter);
			hook->filter_guarded = filter_needs_guard(hook->filter);
		}
		MemoryContextSwitchTo(old);
		th->nhooks++;
	}
	SPI_finish();

	th->loaded_at = invalidations;
	th->loaded = true;
}

/*
 * The tenant's entry in the cache, current: read if it is new or stale (an
 * invalidation came since, or while, it was read).  Other tenants' entries
 * are neither read nor looked at.
 */
static TenantHooks *
tenant_hooks(const char *tenant)
{
	TenantHooks *th;
	bool		found;

	if (!inval_callback_registered)
	{
		CacheRegisterRelcacheCallback(hooks_inval_callback, (Datum) 0);
		inval_callback_registered = true;
	}
	if (hook_cache == NULL ||
		(hash_get_num_entries(hook_cache) >= HOOK_CACHE_MAX_TENANTS &&
		 hash_search(hook_cache, &tenant, HASH_FIND, NULL) == NULL))
		reset_hook_cache();

	th = hash_search(hook_cache, &tenant, HASH_ENTER, &found);
	if (!found)
	{
		th->tenant = MemoryContextStrdup(hook_cache_cxt, tenant);
		th->loaded = false;
		th->cxt = NULL;
		th->nhooks = 0;
		th->hooks = NULL;
	}
	if (!th->loaded || th->loaded_at != hooks_invalidations)
		load_tenant_hooks(th);
	return th;
}

static bool
pattern_matches(const char *pattern, const char *event_type)
{
	size_t		len = strlen(pattern);

	if (len > 0 && pattern[len - 1] == '*')
		return strncmp(pattern, event_type, len - 1) == 0;
	return strcmp(pattern, event_type) == 0;
}

/* Does one of the patterns select event_type? */
static bool
patterns_match(char *const *patterns, int npatterns, const char *event_type)
{
	int			j;

	for (j = 0; j < npatterns; j++)
		if (pattern_matches(patterns[j], event_type))
			return true;
	return false;
}

/*
 * The hooks of tenant subscribed to event_type, active or not (m.active
 * says), their filters not yet applied (hooks_to_send does that, once the
 * payload is known).  No SPI unless the tenant's hooks are not cached or
 * stale.
 */
static MatchedHooks
matching_hooks(const char *tenant, const char *event_type)
{
	MatchedHooks m = {false, 0, NULL, NULL, NULL, NULL};
	TenantHooks *th = tenant_hooks(tenant);
	int			i;

	for (i = 0; i < th->nhooks; i++)
	{
		CachedHook *hook = &th->hooks[i];

		if (!patterns_match(hook->patterns, hook->npatterns, event_type))
			continue;
		if (m.ids == NULL)
		{
			m.ids = palloc(sizeof(Datum) * th->nhooks);
			m.filters = palloc(sizeof(JsonPath *) * th->nhooks);
			m.guarded = palloc(sizeof(bool) * th->nhooks);
			m.active = palloc(sizeof(bool) * th->nhooks);
		}
		m.ids[m.n] = Int64GetDatum(hook->id);
		m.filters[m.n] = hook->filter == NULL ? NULL :
			DatumGetJsonPathPCopy(PointerGetDatum(hook->filter));
		m.guarded[m.n] = hook->filter_guarded;
		m.active[m.n] = hook->active;
		m.n++;
	}
	m.subscribed = m.n > 0;
	return m;
}

/*
 * Does the payload match the hook's filter (payload @@ filter)?  The
 * operator's silent mode makes a missing key, a wrong type or a result that
 * is not a boolean a non-match, never an error (and PostgreSQL checks a
 * like_regex pattern when the filter is stored).
 */
static bool
filter_matches(JsonPath *filter, Datum payload)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = payload;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = PointerGetDatum(filter);
	fcinfo->args[1].isnull = false;
	result = jsonb_path_match_opr(fcinfo);
	return !fcinfo->isnull && DatumGetBool(result);
}

/* filter_matches() as try_in_subtransaction() calls it */
typedef struct FilterCall
{
	JsonPath   *filter;
	Datum		payload;
	bool		matches;
} FilterCall;

static void
filter_call(void *arg)
{
	FilterCall *call = (FilterCall *) arg;

	call->matches = filter_matches(call->filter, call->payload);
}

/*
 * filter_matches() for the filters that can fail anyway (filter_needs_guard:
 * .datetime(), like_regex, ** or .keyvalue() over a deeply nested payload,
 * a very long filter).  Such an error (stack depth and out of memory included) must not
 * fail the application's write: it is caught in a subtransaction, reported
 * as a WARNING naming the hook, and the event goes to the hook as if it
 * matched (nothing is lost).  A cancel is not caught.
 */
static bool
guarded_filter_matches(int64 hook_id, JsonPath *filter, Datum payload)
{
	FilterCall	call = {filter, payload, true};
	ErrorData  *edata = try_in_subtransaction(filter_call, NULL, &call, true);

	if (edata == NULL)
		return call.matches;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	ereport(WARNING,
			(errmsg("webhook: the filter of hook " INT64_FORMAT " failed: %s",
					hook_id, edata->message),
			 errdetail("The event goes to the hook as if it matched.")));
	FreeErrorData(edata);
	return true;
}

/*
 * Keep the matched hooks whose filters the payload passes (their ids first
 * in m->ids); return how many.
 */
static int
hooks_to_send(MatchedHooks *m, Datum payload)
{
	int			n = 0;
	int			i;

	for (i = 0; i < m->n; i++)
		if (m->filters[i] == NULL ||
			(m->guarded[i]
			 ? guarded_filter_matches(DatumGetInt64(m->ids[i]), m->filters[i], payload)
			 : filter_matches(m->filters[i], payload)))
		{
			m->active[n] = m->active[i];
			m->ids[n++] = m->ids[i];
		}
	return n;
}

/* Upper-case, with every non-alphanumeric byte replaced by "_". */
static char *
event_type_part(const char *s)
{
	char	   *out = pstrdup(s);
	char	   *p;

	for (p = out; *p; p++)
	{
		if ((*p >= 'a' && *p <= 'z'))
			*p = *p - 'a' + 'A';
		else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			*p = '_';
	}
	return out;
}

/*
 * A row as jsonb: to_jsonb() of it, through an FmgrInfo that tells
 * to_jsonb the row's type (it reads its argument's type from fn_expr).
 * Made once per statement, in fn_mcxt.
 */
static FmgrInfo *
to_jsonb_call(TupleDesc desc, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	FmgrInfo   *flinfo = palloc0(sizeof(FmgrInfo));

	fmgr_info_cxt(F_TO_JSONB, flinfo, cxt);
	flinfo->fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
											list_make1(makeNullConst(desc->tdtypeid, -1,
																	 InvalidOid)),
											InvalidOid, InvalidOid,
											COERCE_EXPLICIT_CALL);
	MemoryContextSwitchTo(old);
	return flinfo;
}

/*
 * The number of a watched column; 0 for none, and for one that was dropped
 * (*dropped is then set; webhook_internal.follow_alter_table has warned of it).
 */
static AttrNumber
column_attnum(Relation rel, const char *name, bool *dropped)
{
	AttrNumber	attnum;

	*dropped = false;
	if (name == NULL || name[0] == '\0')
		return 0;
	attnum = SPI_fnumber(RelationGetDescr(rel), name);
	if (attnum > 0)
		return attnum;
	*dropped = true;
	return 0;
}

/*
 * The capture settings of this trigger, cached in fn_extra for the
 * statement.
 */
static CaptureState *
capture_state(FunctionCallInfo fcinfo, TriggerData *trigdata)
{
	CaptureState *state = (CaptureState *) fcinfo->flinfo->fn_extra;
	Trigger    *trigger = trigdata->tg_trigger;
	Relation	rel = trigdata->tg_relation;
	bool		dropped;

	if (state != NULL && state->tgoid == trigger->tgoid)
		return state;

	if (trigger->tgnargs != 4)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("webhook.capture() expects 4 trigger arguments, got %d",
						trigger->tgnargs),
				 errhint("Install the trigger with webhook.watch().")));

	state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CaptureState));
	state->tgoid = trigger->tgoid;
	state->owner = webhook_function_owner(fcinfo->flinfo->fn_oid);
	state->resource = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, trigger->tgargs[0]);
	state->type_prefix = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt,
											 event_type_part(trigger->tgargs[0]));
	state->tenant_attnum = column_attnum(rel, trigger->tgargs[1], &state->tenant_dropped);
	state->id_attnum = column_attnum(rel, trigger->tgargs[2], &dropped);
	state->state_attnum = column_attnum(rel, trigger->tgargs[3], &dropped);
	state->to_jsonb = to_jsonb_call(RelationGetDescr(rel), fcinfo->flinfo->fn_mcxt);
	fcinfo->flinfo->fn_extra = state;
	return state;
}

/* A column's value as text, or NULL; attnum 0 gives NULL. */
static char *
column_text(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	if (attnum == 0)
		return NULL;
	return SPI_getvalue(tuple, desc, attnum);
}

/*
 * The names of the columns whose values differ between two versions of a
 * row, as a text[]; NULL when none does.  Binary comparison: a value that
 * was rewritten identically counts as unchanged.
 */
static ArrayType *
changed_columns(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	Datum	   *names = NULL;
	int			n = 0;
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		oldnull;
		bool		newnull;
		Datum		oldval;
		Datum		newval;

		if (att->attisdropped)
			continue;
		oldval = heap_getattr(oldtup, i + 1, desc, &oldnull);
		newval = heap_getattr(newtup, i + 1, desc, &newnull);
		if (oldnull && newnull)
			continue;
		if (oldnull == newnull &&
			datumIsEqual(oldval, newval, att->attbyval, att->attlen))
			continue;
		if (names == NULL)
			names = palloc(sizeof(Datum) * desc->natts);
		names[n++] = CStringGetTextDatum(NameStr(att->attname));
	}
	if (n == 0)
		return NULL;
	return construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
}

static Datum
row_jsonb(CaptureState *state, HeapTuple tuple, TupleDesc desc)
{
	return FunctionCall1(state->to_jsonb, heap_copy_tuple_as_datum(tuple, desc));
}

PG_FUNCTION_INFO_V1(webhook_capture);
PG_FUNCTION_INFO_V1(webhook_hooks_changed);
PG_FUNCTION_INFO_V1(webhook_emit);

/*
 * webhook.capture(): AFTER ... FOR EACH ROW trigger of a watched table.
 */
Datum
webhook_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	CaptureState *state;
	HeapTuple	row;			/* the row the event is about */
	HeapTuple	oldtup = NULL;
	ArrayType  *changed = NULL;
	const char *suffix;
	char	   *tenant;
	char	   *event_type;
	MatchedHooks matched;
	int			n_hooks;
	NewEvent	ev;
	Datum		payload;
	Datum		old_payload;
	char	   *resource_id;
	WebhookSavedUser saved;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("webhook.capture() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("webhook.capture() must be an AFTER ... FOR EACH ROW trigger"),
				 errhint("Install it with webhook.watch().")));

	desc = RelationGetDescr(trigdata->tg_relation);
	state = capture_state(fcinfo, trigdata);
	if (state->tenant_dropped)
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		row = trigdata->tg_trigtuple;
		suffix = "CREATE";
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		row = trigdata->tg_trigtuple;
		suffix = "DELETE";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		row = trigdata->tg_newtuple;
		changed = changed_columns(oldtup, row, desc);
		if (changed == NULL)
			return PointerGetDatum(NULL);	/* an update that changed nothing */
		suffix = "UPDATE";
		if (state->state_attnum != 0)
		{
			char	   *oldstate = column_text(oldtup, desc, state->state_attnum);
			char	   *newstate = column_text(row, desc, state->state_attnum);

			if (newstate != NULL &&
				(oldstate == NULL || strcmp(oldstate, newstate) != 0))
				suffix = event_type_part(newstate);
		}
	}
	else
		return PointerGetDatum(NULL);	/* TRUNCATE: nothing row-level to say */

	tenant = column_text(row, desc, state->tenant_attnum);
	if (tenant == NULL)
		tenant = "default";
	event_type = psprintf("%s_%s", state->type_prefix, suffix);

	/* an event no hook subscribes to costs nothing more */
	webhook_become(state->owner, true, &saved);
	matched = matching_hooks(tenant, event_type);
	webhook_restore_user(&saved);
	if (!matched.subscribed)
		return PointerGetDatum(NULL);

	/*
	 * the row is read with the writer's rights ...; logged, even when no
	 * active hook's filter takes it
	 */
	resource_id = column_text(row, desc, state->id_attnum);
	payload = row_jsonb(state, row, desc);
	n_hooks = hooks_to_send(&matched, payload);
	old_payload = oldtup ? row_jsonb(state, oldtup, desc) : (Datum) 0;

	/* ... and only the queue is written with the owner's */
	webhook_become(state->owner, true, &saved);
	spi_connect_checked();
	ev.tenant = tenant;
	ev.event_type = event_type;
	ev.resource = state->resource;
	ev.resource_id = resource_id;
	ev.payload = payload;
	ev.old_row = old_payload;
	ev.changed = changed;
	enqueue_event(&ev, matched.ids, matched.active, n_hooks);
	SPI_finish();
	webhook_restore_user(&saved);
	return PointerGetDatum(NULL);
}

/*
 * webhook_internal.hooks_changed(): trigger on webhook.hook and
 * webhook.transport, which makes every session reload its list of hooks;
 * and webhook_internal.log_slot_changed(), on webhook_internal.log_slot,
 * which makes every writer look again for the event log's current slot
 * (enqueue.c).  Both invalidate their table's relcache entry, which
 * hooks_inval_callback() hears of.
 */
Datum
webhook_hooks_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger",
						format_procedure(fcinfo->flinfo->fn_oid))));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

#define EVENT_TYPE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
/*
 * The characters of the domain webhook.tenant_id, which defines a tenant's
 * id.  emit() checks them here, with the message of the SQL validator
 * (webhook_internal.check_tenant), rather than by calling it: an
 * application's emit() must not depend on the extension's internal
 * functions, which a new library may find not yet updated in the catalog.
 */
#define TENANT_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* Is s non-empty and made of the characters of allowed only? */
static bool
made_of(const char *s, const char *allowed)
{
	return s[0] != '\0' && strspn(s, allowed) == strlen(s);
}

/*
 * Does the role manage the tenant (webhook_internal.tenants_of)?  Called as the
 * owner, inside SPI, so that every grant is read.
 */
static bool
manages_tenant(Oid role, const char *tenant)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(role), CStringGetTextDatum(tenant)};
	bool		isnull;
	Datum		result;

	spi_check(SPI_execute_with_args("SELECT coalesce(x.t IS NULL OR $2 = ANY (x.t), false)"
									"  FROM webhook_internal.tenants_of($1) AS x(t)",
									2, argtypes, values, NULL, true, 1),
			  SPI_OK_SELECT, true, "reading the tenant grants");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(result);
}

/*
 * webhook.emit(event_type, payload, tenant, resource, resource_id): an event
 * raised by application SQL.  It is always stored, and delivered to the
 * hooks of the tenant subscribed to its type.  The caller must manage the
 * tenant (a superuser, a member of webhook_admin or a role granted it).
 */
Datum
webhook_emit(PG_FUNCTION_ARGS)
{
	char	   *event_type;
	Jsonb	   *payload;
	char	   *tenant;
	char	   *resource = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *resource_id = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	Datum		uid;
	Oid			caller;
	MatchedHooks matched;
	NewEvent	ev;
	WebhookSavedUser saved;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_type, payload and tenant must not be null")));
	event_type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	payload = PG_GETARG_JSONB_P(1);
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (!made_of(event_type, EVENT_TYPE_CHARS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event type \"%s\"", event_type),
				 errhint("Event types are upper-case letters, digits and underscores, such as \"ORDER_SETTLED\".")));
	if (!made_of(tenant, TENANT_CHARS))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid tenant name \"%s\"", tenant),
				 errhint("Tenant names are made of ASCII letters, digits, \"_\" and \"-\".")));


	caller = GetUserId();
	webhook_become(webhook_function_owner(fcinfo->flinfo->fn_oid), true, &saved);
	spi_connect_checked();
	if (!superuser_arg(caller) && !manages_tenant(caller, tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant),
				 errhint("A member of webhook_admin can grant it with webhook.grant_tenant(role, tenant).")));
	matched = matching_hooks(tenant, event_type);
	ev.tenant = tenant;
	ev.event_type = event_type;
	ev.resource = resource;
	ev.resource_id = resource_id;
	ev.payload = JsonbPGetDatum(payload);
	ev.old_row = (Datum) 0;
	ev.changed = NULL;
	uid = enqueue_event(&ev, matched.ids, matched.active,
						hooks_to_send(&matched, ev.payload));
	uid = SPI_datumTransfer(uid, false, UUID_LEN);
	SPI_finish();
	webhook_restore_user(&saved);
	PG_RETURN_DATUM(uid);
}

PG_FUNCTION_INFO_V1(webhook_hook_wants);
PG_FUNCTION_INFO_V1(webhook_queue_from_log);

/*
 * webhook_internal.hook_wants(hook_id, event_types, filter, event_type,
 * payload): would the writer have sent this event to a hook of these
 * patterns and filter (NULL: none)?  The trigger's own matching, for the
 * SQL that reads the log: a filter that fails is a WARNING and a match, as
 * in the writer.
 */
Datum
webhook_hook_wants(PG_FUNCTION_ARGS)
{
	Datum	   *patterns;
	bool	   *nulls;
	int			npatterns;
	char	   *event_type;
	bool		subscribed = false;
	JsonPath   *filter;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
					  &patterns, &nulls, &npatterns);
	event_type = text_to_cstring(PG_GETARG_TEXT_PP(3));
	for (i = 0; i < npatterns && !subscribed; i++)
		subscribed = !nulls[i] &&
			pattern_matches(TextDatumGetCString(patterns[i]), event_type);
	if (!subscribed || PG_ARGISNULL(2))
		PG_RETURN_BOOL(subscribed);
	filter = PG_GETARG_JSONPATH_P(2);
	PG_RETURN_BOOL(filter_needs_guard(filter)
				   ? guarded_filter_matches(PG_GETARG_INT64(0), filter, PG_GETARG_DATUM(4))
				   : filter_matches(filter, PG_GETARG_DATUM(4)));
}

/*
 * Lock webhook.event and the tables of its slots (AccessShareLock), before
 * a snapshot is taken to read them: a rotation that empties a slot holds
 * it until it commits, and a snapshot taken before that would see neither
 * the slot's rows (truncated) nor their copies in the current slot.
 */
static void
lock_event_log(void)
{
	Oid			event = get_relname_relid("event", get_namespace_oid("webhook", true));

	if (!OidIsValid(event))
		return;
	LockRelationOid(event, AccessShareLock);
	list_free(find_all_inheritors(event, AccessShareLock, NULL));
}

/*
 * What queue_from_log() runs: the events of the log a hook is owed, oldest
 * first, as pending deliveries, each due a microsecond after the one
 * before (so that they are claimed in event order), from the statement's
 * start: after the transaction took its id, as every new delivery
 * (src/queue.c, floors).  An event that names the hook among its hook_ids
 * and that its cursor has not read yet is the cursor's to deliver, unless
 * it has a delivery row or an attempt already: the worker read it, and
 * recorded its attempt, before the stored cursor moved (a moment later;
 * a success at the first attempt leaves no delivery row).
 */
static const char *queue_from_log_sql =
"INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at, resource_key)"
" SELECT o.id, $1, o.t0 OPERATOR(pg_catalog.+)"
"                  (o.n OPERATOR(pg_catalog.*) interval '1 microsecond')," 
"        CASE WHEN (SELECT h.ordered = 'resource' FROM webhook.hook h"
"                    WHERE h.id OPERATOR(pg_catalog.=) $1)"
"             THEN webhook_internal.resource_key(o.resource_id) END"
"   FROM (SELECT e.id, e.resource_id, t.t0,"
"                pg_catalog.row_number() OVER (ORDER BY e.id) AS n"
"           FROM webhook.event e, (SELECT pg_catalog.clock_timestamp() AS t0) t"
"          WHERE e.tenant OPERATOR(pg_catalog.=) $2"
"            AND ($5::timestamptz IS NULL OR e.created_at OPERATOR(pg_catalog.>=) $5)"
"            AND NOT EXISTS (SELECT FROM webhook.delivery d"
"                             WHERE d.event_id OPERATOR(pg_catalog.=) e.id"
"                               AND d.hook_id OPERATOR(pg_catalog.=) $1"
"                               AND (NOT $6 OR d.state IN ('pending', 'failed')))"
"            AND NOT (e.txid IS NOT NULL AND $1 OPERATOR(pg_catalog.=) ANY (e.hook_ids)"
"                     AND NOT EXISTS (SELECT FROM webhook_internal.cursor c"
"                                      WHERE c.hook_id OPERATOR(pg_catalog.=) $1"
"                                        AND " LOG_READ_BY("e", "c") ")"
"                     AND NOT EXISTS (SELECT FROM webhook.delivery d"
"                                      WHERE d.event_id OPERATOR(pg_catalog.=) e.id"
"                                        AND d.hook_id OPERATOR(pg_catalog.=) $1)"
"                     AND NOT EXISTS (SELECT FROM webhook.attempt a"
"                                      WHERE a.event_id OPERATOR(pg_catalog.=) e.id"
"                                        AND a.hook_id OPERATOR(pg_catalog.=) $1))"
"            AND webhook_internal.hook_wants($1, $3, $4, e.event_type, e.payload)) o"
"  ORDER BY o.id";

/*
 * webhook_internal.queue_from_log(hook_id, tenant, event_types, filter,
 * since, queued_only): queue for the hook the tenant's events of those
 * types (filter applied) since the time since (NULL: no bound), but those
 * that have a delivery to it already (queued_only: a pending or failed
 * one); returns how many.  The log is read as it is now, not as the
 * transaction's snapshot shows it (REPEATABLE READ).  Run as the
 * extension's owner, by the API.
 */
Datum
webhook_queue_from_log(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[6] = {INT8OID, TEXTOID, TEXTARRAYOID, JSONPATHOID, TIMESTAMPTZOID,
	BOOLOID};
	Datum		values[6];
	char		nulls[6];
	int			i;
	uint64		n;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hook_id, tenant, event_types and queued_only must not be null")));
	for (i = 0; i < 6; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	(void) GetTopTransactionId();
	lock_event_log();
	spi_connect_checked();
	spi_check(SPI_execute_snapshot(spi_kept_plan(&plan, queue_from_log_sql, 6, types,
												 CURSOR_OPT_CUSTOM_PLAN),
								   values, nulls, GetLatestSnapshot(), InvalidSnapshot,
								   false, true, 0),
			  SPI_OK_INSERT, false, "queueing events from the log");
	n = SPI_processed;
	SPI_finish();
	PG_RETURN_INT32((int32) Min(n, PG_INT32_MAX));
}

PG_FUNCTION_INFO_V1(webhook_renamed_column);

/*
 * webhook_internal.renamed_column(command pg_ddl_command): for the event trigger
 * that follows watched tables, the old and new name of the column that an
 * ALTER TABLE ... RENAME COLUMN renamed; nulls for any other command.
 */
Datum
webhook_renamed_column(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	TupleDesc	desc;
	Datum		values[2] = {0, 0};
	bool		nulls[2] = {true, true};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (cmd->type == SCT_Simple && cmd->parsetree != NULL &&
		IsA(cmd->parsetree, RenameStmt) &&
		((RenameStmt *) cmd->parsetree)->renameType == OBJECT_COLUMN)
	{
		RenameStmt *stmt = (RenameStmt *) cmd->parsetree;

		values[0] = CStringGetTextDatum(stmt->subname);
		values[1] = CStringGetTextDatum(stmt->newname);
		nulls[0] = nulls[1] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
