/*-------------------------------------------------------------------------
 *
 * housekeeping.c
 *	  The SQL of the worker's periodic chores besides delivery: disabling
 *	  the hooks whose deliveries have all died for webhook.disable_after,
 *	  pruning the deliveries older than webhook.retention in small
 *	  batches, and rotating the event and attempt logs.
 *
 * As in queue.c, each statement is kept as a prepared plan for the
 * worker's life, and the caller (worker.c) owns the transactions: each
 * chore runs in short transactions of its own, so that it never holds up
 * the recording and claiming of deliveries, nor holds a lock that the
 * capture trigger or the worker's own statements wait for.
 *
 * Endpoint health is kept per hook, in three columns of webhook.hook that
 * the worker's record statement (queue.c) writes only when they change: on
 * a death, and on the first success after deaths, which clears them.  So
 * finding the hooks to disable reads the hook table only, never the
 * history of deliveries or attempts.
 *
 * Pruning walks the deliveries in id order (their primary key), a window
 * of PRUNE_BATCH_ROWS rows at a time, deleting what in the window is
 * finished and older than the bound, and stops at the first window that
 * reaches rows created after the bound (ids follow time, nearly): a batch
 * reads a bounded number of rows, wherever the table stands, and a round
 * reads what is old, plus one window.  Pending and failed deliveries are
 * never deleted, but what an inactive hook missed: it is owed what the log
 * holds, so its cursor does not keep the log, and its deliveries never
 * tried go as the log does (a receiver that answers 410 must not make the
 * database keep every event from then on).  A row kept so is looked at
 * again by every round until it goes.
 *
 * The logs are never deleted from row by row: they go by whole slots
 * (webhook.attempt's partitions, the tables webhook.event's slots are),
 * each emptied by a TRUNCATE once what it holds is older than
 * webhook.retention, the events still needed (by a delivery row, or an
 * active hook's cursor) copied to the current slot first; the next slot
 * becomes the one written (webhook_internal.rotate_logs(),
 * src/sql/code/34_deliveries.sql).  A round rotates last, once the
 * deliveries that kept events are gone.  A TRUNCATE waits for whoever
 * reads that slot, and makes whoever comes after wait for it: it gives up
 * after a short lock_timeout, and the next round tries again.  The
 * worker's record statement and the writers write the current slot only,
 * never the one emptied.  A deleted delivery's attempts stay until their
 * slot is emptied.
 *
 * IDENTIFICATION
 *	  src/housekeeping.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "catalog/pg_type.h"
#include "housekeeping.h"
#include "spi_util.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

/*
 * Disable the hooks whose every delivery has died for disable_after ($1):
 * a death since the last success at least that long ago (failing_since),
 * and one within it (last_death_at, so that a hook with no traffic since
 * its last death is left alone).  For the hooks of this worker's
 * transports ($2, $3), those not paused already (disabled_reason), and
 * never waiting: a hook a transaction holds locked is left for the next
 * look.  Their waiting deliveries are kept (the claim skips inactive
 * hooks): re-enabled, the hook sends them.  Returns what the log says:
 * the hook, its URL's host (no path, no query key), since when and how
 * many deaths.
 */
static const char *disable_sql =
"UPDATE webhook.hook h"
"   SET active = false,"
"       disabled_reason = pg_catalog.format("
"           'every delivery died for longer than webhook.disable_after (%s): %s since %s, "
"no success; re-enable with update_hook(id, active => true)',"
"           $1, CASE WHEN h.failing_deaths = 1 THEN '1 death'"
"                    ELSE h.failing_deaths || ' deaths' END, h.failing_since),"
"       updated_at = pg_catalog.now()"
"  FROM webhook.transport t"
" WHERE t.id = h.transport_id"
"   AND h.id IN (SELECT x.id FROM webhook.hook x"
"                 WHERE x.active AND x.disabled_reason IS NULL"
"                   AND x.failing_since <= pg_catalog.now() OPERATOR(pg_catalog.-) $1"
"                   AND x.last_death_at > pg_catalog.now() OPERATOR(pg_catalog.-) $1"
"                   AND x.transport_id OPERATOR(pg_catalog.%) $2 OPERATOR(pg_catalog.=) $3"
"                   FOR UPDATE SKIP LOCKED)"
" RETURNING h.id,"
"           pg_catalog.substring(t.base_url, '^[A-Za-z]+://(\\[[^]]*\\]|[^/?#:]+)'),"
"           h.failing_deaths, h.failing_since::text";

/*
 * The logs' rotation with webhook.retention ($1), moving at most $2 events
 * of a slot's that must stay, of slot $3 alone unless NULL: what it did, a
 * row per slot (slot, outcome, size).
 */
static const char *rotate_sql =
"SELECT r.slot, r.outcome, r.size FROM webhook_internal.rotate_logs($1, $2, $3) r";

/*
 * One batch of deliveries: of the window of $3 deliveries after id $1, the
 * finished ones (succeeded, dead, cancelled) finished before now() - $2,
 * and those older than that of hooks deleted meanwhile (nobody sends
 * them).  The conditions are on the row deleted, so that a row changed
 * meanwhile is judged as it is now.  Their attempts stay, until their slot
 * is emptied.
 */
static const char *prune_deliveries_sql =
"WITH win AS ("
"    SELECT d.id, d.created_at FROM webhook.delivery d"
"     WHERE d.id > $1 ORDER BY d.id LIMIT $3"
"), gone AS ("
"    DELETE FROM webhook.delivery d USING win"
"     WHERE d.id = win.id"
"       AND d.created_at < pg_catalog.now() OPERATOR(pg_catalog.-) $2"
"       AND ((d.state IN ('succeeded', 'dead', 'cancelled')"
"             AND coalesce(d.finished_at, d.created_at)"
"                 < pg_catalog.now() OPERATOR(pg_catalog.-) $2)"
"            OR " INACTIVE_MISSED("d")
"            OR NOT EXISTS (SELECT 1 FROM webhook.hook h WHERE h.id = d.hook_id))"
"    RETURNING d.id"
")"
"SELECT (SELECT pg_catalog.max(win.id) FROM win),"
"       (SELECT pg_catalog.count(*) FROM win),"
"       (SELECT pg_catalog.bool_or(win.created_at >= pg_catalog.now() OPERATOR(pg_catalog.-) $2)"
"          FROM win),"
"       (SELECT pg_catalog.count(*) FROM gone)";

static SPIPlanPtr disable_plan = NULL;
static SPIPlanPtr rotate_plan = NULL;
static SPIPlanPtr prune_deliveries_plan = NULL;

/* An interval in milliseconds, a month counted as 30 days. */
int64
interval_ms(const Interval *span)
{
	return span->time / 1000 +
		((int64) span->month * DAYS_PER_MONTH + span->day) * SECS_PER_DAY * 1000;
}

/*
 * Disable the failing hooks of this worker's transports (disable_sql), with
 * a WARNING for each.  Returns how many.  Caller is in a transaction.
 */
int
housekeeping_disable_failing_hooks(const Interval *disable_after, int index,
								   int n_workers)
{
	Oid			types[3] = {INTERVALOID, INT8OID, INT8OID};
	Datum		values[3];
	uint64		i;
	int			n;

	values[0] = IntervalPGetDatum(disable_after);
	values[1] = Int64GetDatum(n_workers);
	values[2] = Int64GetDatum(index);
	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(&disable_plan, disable_sql, 3, types, 0),
							   values, NULL, false, 0),
			  SPI_OK_UPDATE_RETURNING, false, "disabling failing hooks");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *host = SPI_getvalue(tup, desc, 2);

		ereport(WARNING,
				(errmsg("webhook: hook %s (host %s) disabled: every delivery died for longer than webhook.disable_after, %s deaths since %s and no success",
						SPI_getvalue(tup, desc, 1), host ? host : "?",
						SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4)),
				 errhint("Its waiting deliveries are kept; fix the receiver, then re-enable it with webhook.update_hook(id, active => true).")));
	}
	n = (int) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * Rotate the logs (rotate_sql), and say what it did: a LOG line for
 * each slot emptied, and for the slot now recorded in; for a slot left
 * because a session holds a lock on it, a LOG line the first time, DEBUG1
 * while it stays so (the next round tries again); for a slot whose
 * events that must stay are being moved (PRUNE_MOVED_EVENTS a call), the
 * same.  Looks at slot only_slot alone, unless it is -1.  Returns the slot
 * whose events are being so moved, or -1: the caller calls again soon for
 * that slot alone, a short transaction each, rather than move them all in
 * one while no tenant is delivered to.  worker is the worker's number, for
 * the log.  Caller is in a transaction.
 */
int
housekeeping_rotate_logs(const Interval *retention, int worker, int only_slot)
{
	static bool said_locked = false;
	static bool said_moving = false;
	Oid			types[3] = {INTERVALOID, INT8OID, INT2OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', only_slot < 0 ? 'n' : ' '};
	const char *setting = GetConfigOption("webhook.retention", false, false);
	bool		locked = false;
	int			moving = -1;
	uint64		i;

	values[0] = IntervalPGetDatum(retention);
	values[1] = Int64GetDatum(PRUNE_MOVED_EVENTS);
	values[2] = Int16GetDatum((int16) only_slot);
	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(&rotate_plan, rotate_sql, 3, types, 0),
							   values, nulls, false, 0),
			  SPI_OK_SELECT, false, "rotating the logs");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *slot = SPI_getvalue(tup, desc, 1);
		char	   *outcome = SPI_getvalue(tup, desc, 2);

		if (strcmp(outcome, "emptied") == 0)
			ereport(LOG,
					(errmsg("webhook worker %d emptied log slot %s (%s), whose attempts and events were all older than webhook.retention (%s)",
							worker, slot, SPI_getvalue(tup, desc, 3), setting)));
		else if (strcmp(outcome, "current") == 0)
			ereport(LOG,
					(errmsg("webhook worker %d writes attempts and events in slot %s from now on",
							worker, slot)));
		else if (strcmp(outcome, "moving") == 0)
		{
			ereport(said_moving ? DEBUG1 : LOG,
					(errmsg("webhook worker %d moved %s events of log slot %s to the current slot: older than webhook.retention (%s), they are still to be sent",
							worker, SPI_getvalue(tup, desc, 3), slot, setting),
					 errdetail("The slot is emptied once none is left; the worker moves at most %d a step, between its deliveries.",
							   PRUNE_MOVED_EVENTS)));
			moving = atoi(slot);
		}
		else
		{
			ereport(said_locked ? DEBUG1 : LOG,
					(errmsg("webhook worker %d left log slot %s as it is: %s",
							worker, slot ? slot : "(all)",
							slot ? "another session holds a lock on it"
							: "another session rotates the slots"),
					 errdetail("The next pruning round tries again.")));
			locked = true;
		}
	}
	said_locked = locked;
	said_moving = moving >= 0;
	SPI_finish();
	return moving;
}

/* Run one pruning batch statement and read what it did into batch. */
static void
prune_batch(SPIPlanPtr *plan, const char *sql, const Interval *retention,
			int64 after_id, PruneBatch *batch)
{
	Oid			types[3] = {INT8OID, INTERVALOID, INT4OID};
	Datum		values[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		seen;
	Datum		d;

	values[0] = Int64GetDatum(after_id);
	values[1] = IntervalPGetDatum(retention);
	values[2] = Int32GetDatum(PRUNE_BATCH_ROWS);
	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(plan, sql, 3, types, 0), values, NULL, false, 0),
			  SPI_OK_SELECT, true, "pruning");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	batch->last_id = isnull ? after_id : DatumGetInt64(d);
	seen = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	batch->done = seen < PRUNE_BATCH_ROWS || (!isnull && DatumGetBool(d));
	batch->deleted = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	SPI_finish();
}

/*
 * One batch of deliveries after after_id (prune_deliveries_sql).  Caller
 * is in a transaction.
 */
void
housekeeping_prune_deliveries(const Interval *retention, int64 after_id,
							  PruneBatch *batch)
{
	prune_batch(&prune_deliveries_plan, prune_deliveries_sql, retention,
				after_id, batch);
}

