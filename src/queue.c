/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  All SQL the delivery worker runs: claim due deliveries and read the
 *	  log, record attempts and schedule retries, move the hooks' cursors,
 *	  and drop rotated secrets whose overlap is over.
 *
 * Each statement is set-based (one per batch) and kept as a prepared plan
 * for the worker's life.  The commonest claim (of the hooks the worker
 * lists, their logs only) reads those hooks' rows and their stored
 * cursors by key, and keeps its policy (claim_policy.c) and reads and
 * renders the events (log_claim.c) in C.
 * Callers (worker.c) own the transactions: every function here must be
 * called inside one, and none of them opens a network connection, nor
 * knows anything of curl: it fills and records attempts (attempt.h).
 *
 * Delivery states: pending -> succeeded, or failed (due again at
 * next_attempt_at), or dead (schedule exhausted, 410 Gone, or an event
 * larger than webhook.max_body_bytes, never sent); a 410 also
 * disables the hook and cancels its other deliveries.  A hook's first
 * attempt of an event is read from the log through the hook's cursor
 * (FRESH); the record makes its delivery row, with its outcome, unless it
 * succeeded (its attempt row is then all there is of it); a row is
 * claimed for a retry, or an ordered hook's event that waited behind an
 * earlier one of its group (FRESH_IN_ORDER).
 * A claim writes no delivery: the worker is the only one sending, and
 * keeps what it holds in memory (and where it has read each hook's log
 * to: cursor.c), passing it to the next claim to skip.  So a crash leaves
 * what it held pending, or not read yet by the stored cursor, to be
 * claimed again by the next worker: delivery is at least once.  (A claim
 * writes a cursor only at a full look, for a hook with nothing to read.)
 * An attempt is recorded only on the delivery it was made for
 * (attempts = attempt_no - 1), never twice.
 *
 * Recording a batch also adds its attempts to their hooks' counters in
 * webhook.hook_metrics (webhook.metrics() reads them): one row per hook,
 * updated once per batch, in the same statement, so that the counters are
 * exactly the attempts and deaths recorded, and cost O(hooks in the batch).
 *
 * Hooks with ordered = 'hook' or 'resource' have one delivery in flight at
 * a time per hook or per resource, in event order; on_dead = 'stop' pauses
 * such a hook when one dies: it stays active, so that new events still go
 * to it, but nothing of it is claimed nor read while its disabled_reason
 * says why it stopped (claim_sql, record_sql).
 *
 * IDENTIFICATION
 *	  src/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "webhook.h"

#include "access/detoast.h"
#include "access/heaptoast.h"
#include "access/transam.h"
#include "access/twophase.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "attempt.h"
#include "attempt_log.h"
#include "hook_counters.h"
#include "claim_policy.h"
#include "log_claim.h"
#include "miscadmin.h"
#include "queue.h"
#include "spi_util.h"
#include "top_array.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/*
 * An event, by its id, with the columns cols of it (e): a look-up in each
 * slot of the event log (src/sql/catalog/20_tables.sql), unless rel, the
 * table it was read from in the same statement, names one: a slot that is
 * not that one is passed over (a one-time filter, its index not read).  An
 * event whose table is not known (a row of webhook.delivery names its id
 * only) is looked up in each slot until found.  Read through webhook.event,
 * each look-up read all four keys.
 */
#define SLOT_LOOKUP(table, cols, rel, id) \
"SELECT " cols " FROM ONLY " table " e" \
" WHERE (" rel " IS NULL" \
"        OR " rel " OPERATOR(pg_catalog.=) '" table "'::pg_catalog.regclass::pg_catalog.oid)" \
"   AND e.id OPERATOR(pg_catalog.=) " id
#define EVENT_LOOKUP(cols, rel, id) \
"(" SLOT_LOOKUP("webhook.event", cols, rel, id) \
" UNION ALL " SLOT_LOOKUP("webhook_internal.event_1", cols, rel, id) \
" UNION ALL " SLOT_LOOKUP("webhook_internal.event_2", cols, rel, id) \
" UNION ALL " SLOT_LOOKUP("webhook_internal.event_3", cols, rel, id) \
" LIMIT 1)"

/*
 * What a request needs, for one row c(id, event_id, hook_id, attempts,
 * floor_at, size, fits, rel) of the delivery queue and its event's columns
 * ev (EVENT_COLUMNS): request_from_row() reads these columns in this
 * order.  An event that does not fit (as stored, or
 * as its body would be, above webhook.max_body_bytes: BODY_SIZE) is
 * neither rendered nor read whole: its delivery dies unsent (worker.c).
 * A hook with a transform gets no rendered body, but the event, for the
 * transform to make one (transform.c), and the role to run it as: none
 * when that role no longer manages the hook's tenant.  The event's row is
 * made a value for such a hook only: made for every request, it was a
 * tuple formed, and read whole, to be dropped.
 */
#define REQUEST_COLUMNS 32
/*
 * and the claim's: the event, the positions, and the order kept
 * (read_from_row()), whether hooks were left out (READERS_CUT), and the
 * hooks read at a full look (READ_HOOKS)
 */
#define CLAIM_COLUMNS (REQUEST_COLUMNS + 17)
/* the claim's parameters */
#define CLAIM_ARGS 27
/*
 * A request's columns of its hook h and transport t, the same for every
 * event (request_of_hook() reads them, from the first HOOK_COLUMN on, in
 * the order of HookColumn): the claim of listed logs reads them once a
 * hook (listed_hooks_sql).
 */
typedef enum HookColumn
{
	HOOK_TRANSPORT_ID,
	HOOK_URL,
	HOOK_QUERY_KEY,
	HOOK_HEADERS,
	HOOK_AUTH_TYPE,
	HOOK_AUTH_USER,
	HOOK_AUTH_SECRET,
	HOOK_CONNECT_TIMEOUT_MS,
	HOOK_TIMEOUT_MS,
	HOOK_TLS_VERIFY,
	HOOK_CA_FILE,
	HOOK_CLIENT_CERT_FILE,
	HOOK_CLIENT_KEY_FILE,
	HOOK_CLIENT_KEY_PASSWORD,
	HOOK_SIGNATURE,
	HOOK_SECRET,
	HOOK_SIGNATURE_HEADER,
	HOOK_MAX_IN_FLIGHT,
	HOOK_ID,
	HOOK_PREVIOUS_SECRET,
	HOOK_TRANSFORM,
	HOOK_TRANSFORM_ROLE,
	HOOK_MAX_PER_SECOND,
	HOOK_TENANT,
	HOOK_COLUMNS				/* how many */
} HookColumn;
#define HOOK_COLUMN 9
StaticAssertDecl(REQUEST_COLUMNS == HOOK_COLUMN - 1 + HOOK_COLUMNS,
				 "a request's columns end with its hook's");
#define HOOK_REQUEST_COLUMNS \
"       t.id, webhook_internal.hook_url(t.base_url, h.path), t.query_key, t.headers," \
"       t.auth->>'type', t.auth->>'username'," \
"       coalesce(t.auth->>'password', t.auth->>'token')," \
"       pg_catalog.ceil(pg_catalog.date_part('epoch', t.connect_timeout) * 1000)::bigint," \
"       pg_catalog.ceil(pg_catalog.date_part('epoch', t.timeout) * 1000)::bigint," \
"       t.tls_verify, t.ca_file, t.client_cert_file, t.client_key_file," \
"       t.client_key_password, h.signature, h.secret, h.signature_header," \
"       t.max_in_flight, h.id," \
"       CASE WHEN h.previous_secret_until > pg_catalog.now()" \
"            THEN h.previous_secret END," \
"       h.transform::oid," \
"       CASE WHEN h.transform IS NULL THEN NULL" \
"            WHEN (SELECT x IS NULL OR t.tenant = ANY (x)" \
"                    FROM webhook_internal.tenants_of(h.transform_role) AS x)" \
"            THEN h.transform_role::oid END," \
"       coalesce(t.max_per_second, 0), t.tenant"
#define REQUEST_SELECT \
"SELECT c.id, c.attempts + 1, ev.uid::text," \
"       CASE WHEN h.transform IS NULL AND c.fits" \
"            THEN webhook_internal.render_body(h.payload_format::text, ev.uid, ev.tenant," \
"                                              ev.event_type, ev.resource, ev.resource_id," \
"                                              ev.payload, ev.previous, ev.created_at," \
"                                              h.uid) END," \
"       CASE WHEN h.transform IS NOT NULL AND c.fits" \
"            THEN " EVENT_LOOKUP("e::webhook.event", "c.rel", "c.event_id") " END," \
"       c.floor_at, c.size, c.fits," HOOK_REQUEST_COLUMNS
#define REQUEST_JOINS(ev) \
"  JOIN webhook.hook h ON h.id = c.hook_id" \
"  JOIN webhook.transport t ON t.id = h.transport_id" \
"  CROSS JOIN LATERAL " ev " ev"
/*
 * the event's columns that REQUEST_SELECT reads (ev): a claim has read
 * them with its size (CLAIM_TAIL)
 */
#define EVENT_COLUMNS \
"e.uid, e.tenant, e.event_type, e.resource, e.resource_id, e.payload, e.previous, e.created_at"

/*
 * Candidates come from three branches: the events read from the log
 * (FRESH, and for ordered hooks FRESH_IN_ORDER), and the due delivery rows,
 * one branch per kind of hook.  Unordered hooks (ordered = 'none') take
 * their due deliveries, earliest due first, from delivery_due_idx, up to
 * the transport's room, from the hook's floor on (floors, below).
 *
 * An ordered hook sends a delivery row only when it is the earliest unfinished
 * one (pending or failed, in event id order) of its group: the hook
 * (ordered = 'hook'), or the hook's events of one resource_id (ordered =
 * 'resource'; those without one are a group of their own), and only when it
 * is due and no delivery of its group is held.  A failed delivery waiting
 * for its retry is unfinished, and so holds its group up, as does a held
 * one, still pending or failed in the table; "no delivery of the group
 * held" keeps one in flight also when an earlier event turns up meanwhile
 * (a writer that committed late, a redeliver()).  How each kind finds
 * them: ORDERED_CANDIDATES.  The ordered
 * branch finds its hooks through hook_ordered_idx, empty without ordered
 * hooks, and busy is inlined into each branch: the unordered branch keeps
 * its plan, and its cost.  The worker leaves the ordered branch out of most
 * claims while it is costly, and while no hook is ordered (a statement
 * without it, claim_sql): see worker.c's claim().
 */
/*
 * Hooks h with their transport t, and r.room: what the worker may still
 * hold of it.  A rate-limited transport gets about a second's worth, so that
 * what waits for its tokens does not fill the worker's room for the others;
 * none while it is stalled (its next token more than a second away, as the
 * worker tells for the limit it knows; a changed limit ends that).  Each
 * hook's transport is read by its key, in a LATERAL subquery that OFFSET 0
 * keeps from being flattened: joined plainly, the generic plan (the
 * partition's condition on t.id estimated to keep one transport of all)
 * read the transports first and every hook again for each, 1.7 s a full
 * look with 10,000 hooks over 100 transports.
 */
#define HOOKS_WITH_ROOM(hooks) \
"      FROM " hooks " h" \
"      CROSS JOIN LATERAL (SELECT x.* FROM webhook.transport x" \
"                           WHERE x.id = h.transport_id OFFSET 0) t" \
"      CROSS JOIN LATERAL (" \
"          SELECT CASE WHEN EXISTS (SELECT FROM stalled s WHERE s.tid = t.id" \
"                                     AND s.lim = t.max_per_second) THEN 0" \
"                 ELSE GREATEST(LEAST(" CppAsString2(QUEUE_HOLD_FACTOR) " * t.max_in_flight::bigint," \
"                                     coalesce(pg_catalog.ceil(t.max_per_second)::bigint," \
"                                              " CppAsString2(QUEUE_HOLD_FACTOR) " * t.max_in_flight::bigint))" \
"                               - coalesce((SELECT busy.n FROM busy WHERE busy.tid = t.id), 0)," \
"                               0) END AS room) r"

/*
 * An event's stored size, read from the headers of its values without
 * reading them whole (webhook_internal.stored_bytes); an event above $15
 * (webhook.max_body_bytes) is neither read nor rendered.  Under it, the
 * size its body will have is counted (webhook_internal.rendered_bytes, which stops
 * counting past $15) before it is built: the stored size does not bound
 * it (a number such as 1e131071 takes a few bytes, and prints as 131,072
 * digits).  That is what a claim counts against the bytes the worker may
 * hold of each tenant ($17, or $14 for a tenant it holds nothing of): a
 * claim takes a tenant's deliveries, earliest due first, while what it took
 * of that tenant before each is below that, so the worker holds at most
 * that many bytes of bodies per tenant, plus one.  An event that does not
 * fit counts for nothing: it is not rendered, and dies (worker.c).
 */
#define STORED_SIZE \
"webhook_internal.stored_bytes(e.payload) + coalesce(webhook_internal.stored_bytes(e.previous), 0)" \
" + coalesce(pg_catalog.octet_length(e.resource_id), 0)" \
" + coalesce(pg_catalog.octet_length(e.resource), 0)" \
" + pg_catalog.octet_length(e.event_type) + 256"
#define BODY_SIZE \
"webhook_internal.rendered_bytes(e.payload, $15)" \
" + coalesce(webhook_internal.rendered_bytes(e.previous, $15), 0)" \
" + 2 * coalesce(pg_catalog.octet_length(e.resource_id), 0)" \
" + 2 * coalesce(pg_catalog.octet_length(e.resource), 0)" \
" + pg_catalog.octet_length(e.event_type) + 256"

/*
 * Fresh deliveries, read from the log.  A hook's events are not rows of
 * webhook.delivery (enqueue.c): each claim reads, for each hook it
 * looks at, the events its cursor has not read, up to the hook's room, in
 * (txid, id) order, and ranks them with the due deliveries; the record
 * makes the row of each that did not succeed, with its outcome
 * (record_sql).  A cursor
 * (webhook_internal.cursor) is a snapshot lo, every committed event of
 * which was read, and one hi, whose were read up to a (txid, id) key.
 * The claim reads first the rest of the interval between lo and hi (events
 * of transactions that lo showed in progress, or that began after it, and
 * that hi shows committed), then what committed since hi; each through
 * event_log_idx, by the tenant's transactions: those a snapshot showed in
 * progress by key, the others as a range, each arm limited to the hook's
 * take (and one more: READ_ALL), so that a backlog is never read whole:
 * its room, but no more than its share of the claim's limit ($1: TAKE).
 * The ranking takes the tenants' first events before their second ones
 * (ties in a random order), a tenant's hooks' in turn, so a hook's events
 * past that share would not be taken; read, each of 200 busy hooks' 128
 * made a claim rank 25,600 rows to take 97 (174 requests a second,
 * against 14,000 for one hook: bench/delivery.sh with 200 transports).
 * Shared among every hook read, a tenant of many busy hooks cut another's
 * one hook to an event a claim (test_fairness).
 *
 * The worker reads ahead of the cursor that is stored: it holds the
 * position after what it claimed, per hook, and passes it to the next
 * claim ($20-$25: cursor.c); the stored one moves only once every attempt
 * up to there is recorded, so that a crash sends again what was not (at
 * least once).  Each fresh request is returned with the position after it
 * (the ranking takes a prefix of each hook's events: each is due a
 * microsecond after the one before it, from the claim's start):
 *	- all was read and taken (no more than the take): the claim's snapshot,
 *	  whole;
 *	- within the interval: the key of the last taken;
 *	- past it: hi becomes lo, the claim's snapshot hi, and the key that of
 *	  the last taken;
 * and the stored position it was read from (when the worker held none),
 * which the stored one must still be when the worker moves it (cursor.c).
 * A hook without a cursor is not read: every hook gets one when it is
 * made (create_hook()), and a restore brings a hook's before the cursor's
 * (pg_dump restores webhook_internal's data after webhook's), which must
 * not be read from the start meanwhile.  One whose cursor another
 * transaction holds (spill(), an update_hook()), or that was moved last in
 * another database or cluster (a restore: spill() adopts it), is not read
 * this time.  A hook
 * with nothing to read and nothing held moves its stored cursor to the
 * claim's snapshot at a full look (once a second) that reads it, so that
 * a hook that has nothing of a busy tenant's events reads at most a
 * second of them at a time, and a claim writes no other cursor.  (A
 * tenant with more hooks than its share of a claim has them read in
 * turn, HOOKS_READ: each such hook's cursor moves at one full look of
 * every so many, and reads that much more of its tenant's log.)
 */
/*
 * An arm of the read: events of the hook's tenant and of transactions past
 * a (txid, id) key, up to one, that the hook reads; its first rows by key.
 * The key is a row comparison, which the index scan starts from, and the
 * bound a plain one, where it stops: a backlog of one transaction is read
 * from where the last claim stopped, not from its first event.
 */
#define LOG_ARM(part, from_txid, from_id, cond, cols) \
"(SELECT " #part " AS part, e.txid, e.id, e.tableoid AS rel" cols(e) " FROM webhook.event e" \
"  WHERE e.tenant OPERATOR(pg_catalog.=) h.tenant AND e.txid IS NOT NULL" \
"    AND (e.txid, e.id) OPERATOR(pg_catalog.>) (" from_txid ", " from_id ")" \
"    AND " cond \
"    AND h.hook_id OPERATOR(pg_catalog.=) ANY (e.hook_ids)" \
"  ORDER BY e.txid, e.id LIMIT h.take + 1)"
/*
 * the same, of each transaction snap showed in progress (OFFSET 0 keeps the
 * look-up inside the loop over them: flattened, the plan made while the
 * log was small read the tenant's whole log and matched it against them)
 */
#define LOG_XIP_ARM(part, snap, from_id, cond, cols) \
"(SELECT " #part " AS part, e.txid, e.id, e.rel" cols(e) \
"   FROM pg_catalog.pg_snapshot_xip(" snap ") AS x(txid)" \
"   CROSS JOIN LATERAL (" \
"       SELECT e.txid, e.id, e.tableoid AS rel" cols(e) " FROM webhook.event e" \
"        WHERE e.tenant OPERATOR(pg_catalog.=) h.tenant AND e.txid IS NOT NULL" \
"          AND (e.txid, e.id) OPERATOR(pg_catalog.>) (x.txid, " from_id ")" \
"          AND e.txid OPERATOR(pg_catalog.<=) x.txid AND " cond \
"          AND h.hook_id OPERATOR(pg_catalog.=) ANY (e.hook_ids) OFFSET 0) e" \
"  ORDER BY e.txid, e.id LIMIT h.take + 1)"
/*
 * What a claim reads of the hooks, of the unordered ones only (UNORDERED)
 * or of every one (IN_ORDER, with what FRESH_IN_ORDER needs): which hooks
 * are read (KINDS), the columns an arm reads of each event e (COLS), and a
 * reader's (READER_COLS: whether an ordered one has unfinished rows), which
 * each event read carries (FRESH_COLS, with the reader's snapshots: joined
 * back to its reader by hook, each event was compared with each reader)
 */
#define UNORDERED_KINDS "h.ordered = 'none'"
#define UNORDERED_COLS(e) ""
#define UNORDERED_READER_COLS ""
#define UNORDERED_FRESH_COLS ""
#define IN_ORDER_KINDS "true"
#define IN_ORDER_COLS(e) ", " #e ".resource_id, " #e ".next_txid"
#define IN_ORDER_READER_COLS \
", h.ordered <> 'none' AND EXISTS (SELECT FROM webhook.delivery d" \
"                                  WHERE d.hook_id = h.id" \
"                                    AND d.state IN ('pending', 'failed')) AS with_rows"
#define IN_ORDER_FRESH_COLS ", h.with_rows, h.lo AS read_lo, h.hi AS read_hi"
/* within the interval: in hi, past the key read up to */
#define IN_HI "pg_catalog.pg_visible_in_snapshot(e.txid, h.hi)"
#define FROM_KEY(txid) \
"CASE WHEN h.last_txid OPERATOR(pg_catalog.=) " txid " THEN h.last_id ELSE -1 END"
/*
 * A hook's position, held by the worker ($20-$25: a hook's place in $20,
 * and its position at that place in the others).  Each hook read finds
 * its place with a walk of $20: joined with the positions unnested, each
 * hook read unnested them all again, which with 128 hooks read was a third
 * of a claim of 200 tenants' logs (16,384 rows made to keep 128).
 */
#define HELD_POSITION \
"          SELECT $21[p.i]::pg_catalog.pg_snapshot AS lo, $22[p.i]::pg_catalog.pg_snapshot AS hi," \
"                 coalesce($23[p.i]::pg_catalog.xid8, '0') AS last_txid," \
"                 coalesce($24[p.i], 0) AS last_id, $25[p.i] AS top_id," \
"                 $23[p.i] IS NOT NULL AS read_short, true AS held," \
"                 NULL AS from_lo, NULL AS from_hi," \
"                 NULL AS from_last_txid, NULL::bigint AS from_last_id" \
"            FROM (SELECT pg_catalog.array_position($20, h.id) AS i OFFSET 0) p" \
"           WHERE p.i IS NOT NULL"
/*
 * the stored cursors of the other hooks read (of this worker's transports:
 * another worker's are its own), those of ours locked
 */
#define STORED_CURSORS \
"cursors AS (" \
"    SELECT x.hook_id, x.system_identifier = $18 AND x.database = $19 AS ours" \
"      FROM webhook_internal.cursor x" \
"     WHERE x.hook_id IN (SELECT k.id FROM hooks_read k)" \
"       AND x.hook_id OPERATOR(pg_catalog.<>) ALL ($20)" \
"), locked AS (" \
"    SELECT x.hook_id, x.lo, x.hi, coalesce(x.last_txid, '0') AS last_txid," \
"           coalesce(x.last_id, 0) AS last_id, x.top_id, x.last_txid IS NOT NULL AS read_short," \
"           x.lo::text AS from_lo, x.hi::text AS from_hi," \
"           x.last_txid::text AS from_last_txid, x.last_id AS from_last_id" \
"      FROM webhook_internal.cursor x" \
"     WHERE x.hook_id IN (SELECT k.hook_id FROM cursors k WHERE k.ours)" \
"       FOR NO KEY UPDATE SKIP LOCKED" \
")"
/* held, or stored */
#define ANY_POSITION \
HELD_POSITION \
"          UNION ALL" \
"          SELECT l.lo, l.hi, l.last_txid, l.last_id, l.top_id, l.read_short, false," \
"                 l.from_lo, l.from_hi, l.from_last_txid, l.from_last_id" \
"            FROM locked l WHERE l.hook_id = h.id"
/*
 * The hooks a claim reads (hooks_read): of the hooks that may have work
 * (fresh_hooks), those of the order asked, active, of this worker's
 * transports and tenants with room (hooks_listed); of those, no more of
 * a transport's than its room, and then no more of a tenant's than its
 * share of the claim's limit ($1) among the tenants left, each in its
 * turn (fresh_hooks' turn: the worker's order, or a random one at a full
 * look).  Each hook
 * read costs a claim its position and four probes of the log, however few
 * of its events are taken, and a tenant is taken no more than its share
 * anyway: read whole, a tenant's 1,000 busy hooks made each claim cost
 * 14 ms, and its 2,000 some 2 s (a full look's cursor moves compared each
 * hook read with each event read), which cut another tenant's one hook
 * from 7,700 requests a second to 1,800, and to 41 (bench/crowd.sh).
 *
 * And, of the hooks the worker lists, no more tenants with a backlog (a
 * hook whose position, held or stored, stopped short of its log's end)
 * than would each be taken READ_AT_LEAST events, the first in turn (each
 * tenant's first hook's turn): the worker lists first the hooks with work
 * that it took from least recently (worker.c), so that such tenants take
 * turns.  Read every one, 200 tenants' backlogs were 128 hooks read for an
 * event each, 9.5 ms a claim of 128 (4,300 requests a second, against
 * 16,000 for one hook).  The others, whose last read took all there was,
 * are read whatever their number: news of theirs is not held back, and
 * one that has nothing (its news was of what it read already, its work is
 * a retry) cannot take a backlog's place.  A full look, a few a second at
 * most, reads every tenant's share: the hooks it read, taken from or not,
 * are listed from then on (READ_HOOKS).
 *
 * A claim that left hooks out says so (READERS_CUT): the worker then
 * claims again as for a backlog, which the hooks left out may have.
 *
 * The claim of listed logs keeps the same rules in C (claim_policy.c): a
 * change here is a change there.
 */
#define HOOKS_READ(order) \
"hooks_listed AS (" \
"    SELECT h.id, h.ordered, t.id AS transport_id, t.tenant, r.room, h.turn, s.short," \
"           pg_catalog.row_number() OVER (PARTITION BY t.id ORDER BY h.turn) AS transport_turn" \
HOOKS_WITH_ROOM("fresh_hooks") \
"      CROSS JOIN LATERAL (" \
"          SELECT CASE WHEN p.i IS NOT NULL THEN $23[p.i] IS NOT NULL" \
"                      ELSE EXISTS (SELECT FROM webhook_internal.cursor x" \
"                                    WHERE x.hook_id = h.id AND x.last_txid IS NOT NULL)" \
"                 END AS short" \
"            FROM (SELECT pg_catalog.array_position($20, h.id) AS i OFFSET 0) p) s" \
"      CROSS JOIN LATERAL (SELECT pg_catalog.array_position($9, t.tenant) AS i OFFSET 0) q" \
"     WHERE h.active AND h.disabled_reason IS NULL AND r.room > 0 AND " order##_KINDS \
"       AND coalesce($10[q.i], $13) > 0 AND coalesce($17[q.i], $14) > 0" \
"       AND t.id OPERATOR(pg_catalog.%) $5 OPERATOR(pg_catalog.=) $6" \
"), hooks_read AS (" \
"    SELECT x.* FROM (" \
"        SELECT y.*, pg_catalog.count(*) FILTER (WHERE y.tenant_turn = 1) OVER () AS n_tenants" \
"          FROM (" \
"            SELECT z.*, pg_catalog.dense_rank() OVER (PARTITION BY z.tenant_short" \
"                                                      ORDER BY z.tenant_first, z.tenant)" \
"                            AS short_no" \
"              FROM (SELECT z.*, pg_catalog.min(z.turn) OVER w AS tenant_first," \
"                           pg_catalog.bool_or(z.short) OVER w AS tenant_short," \
"                           pg_catalog.row_number() OVER (w ORDER BY z.turn) AS tenant_turn" \
"                      FROM hooks_listed z" \
"                     WHERE z.transport_turn OPERATOR(pg_catalog.<=) z.room" \
"                    WINDOW w AS (PARTITION BY z.tenant)) z) y" \
"         WHERE $16 IS NULL OR NOT y.tenant_short" \
"            OR y.short_no OPERATOR(pg_catalog.<=)" \
"                   pg_catalog.ceil($1::float8 / " CppAsString2(READ_AT_LEAST) ")) x" \
"     WHERE x.tenant_turn OPERATOR(pg_catalog.<=) pg_catalog.ceil($1::float8 / x.n_tenants)" \
")"
#define READERS_CUT \
"(SELECT pg_catalog.count(*) FROM hooks_listed)" \
" OPERATOR(pg_catalog.>) (SELECT pg_catalog.count(*) FROM hooks_read)"
/*
 * A full look's hooks that read some of their logs (each read's first
 * event), taken from or not: the worker lists them.  Those of a claim's
 * requests alone, a full look of 200 tenants' backlogs took from 128, and
 * the other 72 waited for the next full look, a second later.  No more
 * than the worker's list holds: the array is a column of every request
 * (of 100,000 tenants' backlogs, 800 kB each), and each hook named beyond
 * would put out another.
 */
#define READ_HOOKS \
"ARRAY(SELECT f.hook_id FROM fresh f WHERE f.rank = 1" \
"       LIMIT " CppAsString2(QUEUE_MAX_HOOKS_LISTED) ")"
/*
 * How many events the hook h reads (its take): its transport's room, but
 * no more than its share of the claim's limit ($1), which the ranking
 * would not take past (FRESH's comment).  A claim's requests are ranked
 * tenant by tenant in turn, and a tenant's hook by hook (FRESH_CANDIDATES),
 * so a hook's share is its tenant's share of the limit, among the tenants
 * read, split among the tenant's hooks read.  Among the tenants with work,
 * that is: a hook whose last read stopped short of its log's end (its
 * position names an event) has more, and shares with the others that
 * have; one that read all of its log had little, and reads its tenant's
 * share of the whole limit, split among all of its tenant's hooks read (a
 * claim of hooks that did not have work reads what they have, few rows).
 * Shared among every tenant read, a backlog beside 199 tenants noted as
 * recent would read an event a claim; not shared among tenants, 200
 * tenants with a backlog of one hook each read 97 events each, 19,400 to
 * rank for a claim of 97 (about 540 requests a second: bench/delivery.sh
 * with 200 transports of 200 tenants).  The tenants sharing are counted
 * as a sum, each of a tenant's short hooks counting its share of one.
 * (claim_policy_takes() takes the same, for the claim of listed logs.)
 */
#define TAKE(h) \
"LEAST(" h ".room," \
"      CASE WHEN " h ".read_short" \
"           THEN pg_catalog.ceil(pg_catalog.ceil($1::float8 / pg_catalog.round(" \
"                                    pg_catalog.sum(CASE WHEN " h ".read_short" \
"                                                        THEN 1.0 / " h ".n_short END)" \
"                                        OVER ())::float8)" \
"                                / " h ".n_short)" \
"           ELSE pg_catalog.ceil($1::float8 / " h ".n_hooks) END)::bigint"
/*
 * The hooks read (hooks_read) at their positions, those of the order
 * asked (above), and what each reads: FRESH, or FRESH_OF_HELD when the
 * worker holds the position of every hook of $16 (a claim's plan is
 * started whole: see CLAIM_HEAD).  What an ordered hook reads is cut by
 * FRESH_IN_ORDER, which gives each of its events its group, and by the
 * worker (order.c); an unordered hook's are in none, and none waits.
 */
#define READERS(position, order) \
"readers AS (" \
"    SELECT x.*, " TAKE("x") " AS take, x.lo::text AS lo_text, x.hi::text AS hi_text FROM (" \
"    SELECT h.id AS hook_id, h.transport_id, h.tenant, h.room," \
"           pg_catalog.count(*) OVER (PARTITION BY h.tenant) AS n_hooks," \
"           pg_catalog.count(*) FILTER (WHERE c.read_short) OVER (PARTITION BY h.tenant)" \
"               AS n_short," \
"           h.ordered" order##_READER_COLS ", c.*" \
"      FROM hooks_read h" \
"      CROSS JOIN LATERAL (" position ") c) x" \
")"
#define FRESH_READ(position, order) \
READERS(position, order) ", fresh AS (" \
"    SELECT h.hook_id, x.part, x.txid, x.id AS event_id, x.rel" order##_COLS(x) "," \
"           h.ordered, false AS in_order, NULL::text AS group_key, false AS waits," \
"           h.transport_id, h.tenant, h.room, " READER_CARRIED("h") order##_FRESH_COLS "," \
"           pg_catalog.count(*) OVER (PARTITION BY h.hook_id) AS n," \
"           pg_catalog.row_number() OVER (PARTITION BY h.hook_id" \
"                                        ORDER BY x.part, x.txid, x.id) AS rank" \
"      FROM readers h" \
"      CROSS JOIN LATERAL (" \
"          SELECT y.* FROM (" \
LOG_XIP_ARM(1, "h.lo", FROM_KEY("x.txid"), \
            "x.txid OPERATOR(pg_catalog.>=) h.last_txid AND " IN_HI, order##_COLS) \
"              UNION ALL " \
LOG_ARM(1, "GREATEST(pg_catalog.pg_snapshot_xmax(h.lo), h.last_txid)", \
        FROM_KEY("GREATEST(pg_catalog.pg_snapshot_xmax(h.lo), h.last_txid)"), \
        "e.txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax(h.hi) AND " IN_HI, \
        order##_COLS) \
"              UNION ALL " \
LOG_XIP_ARM(2, "h.hi", "-1", "true", order##_COLS) \
"              UNION ALL " \
LOG_ARM(2, "pg_catalog.pg_snapshot_xmax(h.hi)", "-1", "true", order##_COLS) \
"          ) y ORDER BY y.part, y.txid, y.id LIMIT h.take + 1) x" \
")"
#define FRESH(order) \
HOOKS_READ(order) ", " STORED_CURSORS ", " FRESH_READ(ANY_POSITION, order)
#define FRESH_OF_HELD(order) \
HOOKS_READ(order) ", " FRESH_READ(HELD_POSITION, order)

/*
 * The group of the event e for a hook whose ordered is given: its resource
 * (the first RESOURCE_KEY_CHARS characters of its resource_id, as
 * webhook_internal.resource_key() cuts them), for a hook ordered by
 * resource, else (no resource_id, or a hook ordered whole) the hook's
 * group of no key
 */
#define GROUP_KEY(e, ordered) \
"CASE WHEN " ordered " = 'resource'" \
"     THEN pg_catalog.left(" e ".resource_id, " CppAsString2(RESOURCE_KEY_CHARS) ") END"
/*
 * An event e of the log, of hook h's tenant, group and reading, that an
 * ordered hook must send before the event x: an earlier one (e.id < x.id)
 * that it has not read (unread: a condition on e) of a transaction whose
 * id is above x's.  Event order is id order, which for one row is commit
 * order (a writer waits for the row lock of the one before); the log is
 * read in order of transaction ids, by which an earlier event of one row
 * comes later when its transaction began after x's and committed before
 * x was written.  Such a transaction's id is below x's next_txid (the
 * next to be assigned when x was written; none when that was the one after
 * x's), so only the log between x's transaction id and that is looked at
 * (event_log_idx): a few entries, those of the transactions that ran
 * beside x's.
 */
#define EARLIER_UNREAD(h, ordered, tenant, group_key, x_txid, x_next_txid, x_id, unread) \
"(" x_next_txid " IS NOT NULL AND EXISTS (SELECT FROM webhook.event e" \
"         WHERE e.tenant OPERATOR(pg_catalog.=) " tenant " AND e.txid IS NOT NULL" \
"           AND e.txid OPERATOR(pg_catalog.>) " x_txid \
"           AND e.txid OPERATOR(pg_catalog.<) " x_next_txid \
"           AND e.id OPERATOR(pg_catalog.<) " x_id \
"           AND " h " OPERATOR(pg_catalog.=) ANY (e.hook_ids) AND " unread \
"           AND " GROUP_KEY("e", ordered) " IS NOT DISTINCT FROM " group_key "))"

/*
 * What an ordered hook reads of its log is taken in an order of its own.
 * Each event is in a group (GROUP_KEY), and a group's events go one at a
 * time, in event id order (order.c).  The claim tells, of each event, its
 * group and whether it must wait: when its group has an unfinished
 * delivery row (a failure waiting for its retry, or what waits behind it),
 * or when it must go after an earlier one of its group not read yet
 * (EARLIER_UNREAD).  And it cuts the hook's read before the first event
 * that does not wait of a group read before it in the same read (which
 * must wait for that one's outcome): what the worker would let go takes
 * no room of the claim, nor is it rendered.  The worker then takes what
 * is left in order, knowing the groups it holds (order.c): it may cut the
 * read shorter still.  Each event costs a probe of delivery_resource_idx
 * while its hook has unfinished rows, and one of event_log_idx while
 * transactions began beside its own.  (The whole order taken here, by
 * window functions over the events and the groups held sorted together,
 * cost a claim about 0.2 ms; this sort of its events by group, and the
 * probes, about 0.05 ms each.)
 */
#define FRESH_IN_ORDER \
"grouped AS (" \
"    SELECT f.hook_id, f.part, f.txid, f.event_id, f.rel, f.n, f.rank," \
"           f.transport_id, f.tenant, f.room, " READER_CARRIED("f") "," \
"           f.ordered <> 'none' AS in_order, k.group_key," \
"           CASE WHEN NOT f.with_rows THEN false" \
"                WHEN k.group_key IS NULL" \
"                THEN EXISTS (SELECT FROM webhook.delivery d" \
"                              WHERE d.hook_id = f.hook_id AND d.state IN ('pending', 'failed')" \
"                                AND d.resource_key IS NULL)" \
"                ELSE EXISTS (SELECT FROM webhook.delivery d" \
"                              WHERE d.hook_id = f.hook_id AND d.state IN ('pending', 'failed')" \
"                                AND d.resource_key OPERATOR(pg_catalog.=) k.group_key) END" \
"           OR (f.ordered <> 'none' AND " \
           EARLIER_UNREAD("f.hook_id", "f.ordered", "f.tenant", "k.group_key", "f.txid", \
                          "f.next_txid", "f.event_id", \
                          "NOT pg_catalog.pg_visible_in_snapshot(e.txid, CASE WHEN f.part = 1" \
                          " THEN f.read_lo ELSE f.read_hi END)") ") AS waits" \
"      FROM fresh f" \
"      CROSS JOIN LATERAL (SELECT " GROUP_KEY("f", "f.ordered") " AS group_key) k" \
"     WHERE f.rank OPERATOR(pg_catalog.<=) $1" \
"), fresh_in_order AS (" \
"    SELECT s.* FROM (" \
"        SELECT g.*, pg_catalog.min(g.rank) FILTER (WHERE g.in_order AND g.before > 0" \
"                                                     AND NOT g.waits)" \
"                        OVER (PARTITION BY g.hook_id) AS first_stop" \
"          FROM (SELECT g.*, pg_catalog.row_number() OVER" \
"                                (PARTITION BY g.hook_id, g.group_key COLLATE \"C\"" \
"                                 ORDER BY g.rank) - 1 AS before" \
"                  FROM grouped g) g) s" \
"     WHERE s.first_stop IS NULL OR s.rank OPERATOR(pg_catalog.<) s.first_stop" \
")"

/*
 * At a full look, a hook with nothing to read and nothing held moves its
 * stored cursor, which the claim locked, to the claim's snapshot (FRESH's
 * comment).  The hooks that read something are listed once (each read's
 * first event): asked of the events read hook by hook, the statement
 * being an update, each event read was made a whole row for each hook
 * (to recheck a row updated meanwhile), 800,000 of them at a full look of
 * 200 tenants' backlogs, a third of a second.
 */
#define FRESH_MOVED \
"moved AS (" \
"    UPDATE webhook_internal.cursor x" \
"       SET lo = pg_catalog.pg_current_snapshot(), hi = pg_catalog.pg_current_snapshot()," \
"           last_txid = NULL, last_id = NULL," \
"           top_id = (SELECT coalesce(pg_catalog.max(e.id), 0) FROM webhook.event e)" \
"      FROM readers h" \
"     WHERE x.hook_id = h.hook_id AND NOT h.held" \
"       AND h.hook_id OPERATOR(pg_catalog.<>)" \
"               ALL (ARRAY(SELECT f.hook_id FROM fresh f WHERE f.rank = 1))" \
")"

/*
 * What a request read from the log (FRESH) carries of its reader, for
 * the cursor: its take, the stored position it was read from (none when
 * the worker held it), and where it was read from, its snapshots as text
 * (CURSOR_AFTER).  Carried, not joined back by hook: without hash joins
 * (worker.c), a join of the requests with the hooks read compares each
 * with each, which with 200 hooks was most of a claim.  A due delivery's
 * are none (NO_READER).
 */
#define READER_CARRIED(r) \
r ".take, " r ".held, " r ".from_lo, " r ".from_hi, " r ".from_last_txid, " r ".from_last_id, " \
r ".lo_text, " r ".hi_text, " r ".top_id"
#define NO_READER \
"NULL::bigint AS take, NULL::boolean AS held, NULL::text AS from_lo, NULL::text AS from_hi," \
" NULL::text AS from_last_txid, NULL::bigint AS from_last_id, NULL::text AS lo_text," \
" NULL::text AS hi_text, NULL::bigint AS top_id"
/*
 * Where its hook's cursor is after the fresh request c (lo, hi,
 * last_txid, last_id, top_id): past its event, in the interval it was read
 * from (FRESH's part 1, or past hi: part 2), or, after the last of a read
 * that took all there was, at the claim's snapshot.  Each hook reads one
 * event more than its take, which tells whether it has more: a read that
 * filled its take exactly looked short of its log's end (its position
 * naming an event) until a full look, and counted its tenant among those
 * with work (TAKE), which cut another's backlog to an event a claim.  The
 * worker moves the cursor past the last one it keeps (cursor.c).
 */
#define READ_ALL(c) \
"(" c ".rank = " c ".n_read AND " c ".n_read OPERATOR(pg_catalog.<=) " c ".take)"
#define CURSOR_AFTER(c) \
"CASE WHEN " READ_ALL(c) " THEN (SELECT pg_catalog.pg_current_snapshot()::text)" \
"     WHEN " c ".part = 2 THEN " c ".hi_text ELSE " c ".lo_text END," \
"CASE WHEN " READ_ALL(c) " OR " c ".part = 2" \
"     THEN (SELECT pg_catalog.pg_current_snapshot()::text) ELSE " c ".hi_text END," \
"CASE WHEN NOT " READ_ALL(c) " THEN " c ".txid::text END," \
"CASE WHEN NOT " READ_ALL(c) " THEN " c ".event_id END," \
"CASE WHEN " READ_ALL(c) " OR " c ".part = 2" \
"     THEN (SELECT coalesce(pg_catalog.max(e.id), 0) FROM webhook.event e)" \
"     ELSE " c ".top_id END"

/*
 * The hooks whose cursors a claim reads through: those of $16 (news, and
 * the recent ones: FRESH_HOOKS_LISTED), or at a full look those of every
 * tenant with events in the log (a loose index scan of event_log_idx: one
 * descent per tenant) whose cursor may be behind: within an interval, or
 * older than the tenant's latest writer (FRESH_HOOKS_BEHIND).
 * A tenant whose hooks have read its log, and whose writers have all
 * finished since, costs a full look a descent or two; its hooks nothing.
 * An inactive or paused hook is not read: its cursor stays behind.  Each
 * comes with its turn among its tenant's (HOOKS_READ): its first place in
 * $16 (listed more than once, it is looked up once), or a random one.
 */
#define FRESH_HOOKS_LISTED \
"fresh_hooks AS (" \
"    SELECT k.*, u.turn" \
"      FROM (SELECT l.id, pg_catalog.min(l.n)::float8 AS turn" \
"              FROM pg_catalog.unnest($16::bigint[]) WITH ORDINALITY AS l(id, n)" \
"             GROUP BY l.id) u" \
"      CROSS JOIN LATERAL (SELECT x.* FROM webhook.hook x WHERE x.id = u.id OFFSET 0) k" \
")"
#define FRESH_HOOKS_BEHIND \
"log_tenants AS (" \
"    (SELECT e.tenant FROM webhook.event e" \
"      WHERE e.txid IS NOT NULL ORDER BY e.tenant LIMIT 1)" \
"    UNION ALL" \
"    SELECT n.tenant FROM log_tenants u" \
"      CROSS JOIN LATERAL (" \
"          SELECT e.tenant FROM webhook.event e" \
"           WHERE e.txid IS NOT NULL AND e.tenant OPERATOR(pg_catalog.>) u.tenant" \
"           ORDER BY e.tenant LIMIT 1) n" \
"), fresh_hooks AS (" \
"    SELECT k.*, pg_catalog.random() AS turn FROM log_tenants u" \
"      CROSS JOIN LATERAL (SELECT e.txid FROM webhook.event e" \
"                           WHERE e.tenant OPERATOR(pg_catalog.=) u.tenant" \
"                             AND e.txid IS NOT NULL" \
"                           ORDER BY e.txid DESC LIMIT 1) m" \
"      JOIN webhook.transport tt ON tt.tenant OPERATOR(pg_catalog.=) u.tenant" \
"      JOIN webhook.hook k ON k.transport_id = tt.id" \
"      JOIN webhook_internal.cursor x ON x.hook_id = k.id" \
"     WHERE k.active AND k.disabled_reason IS NULL" \
"       AND (x.lo::text <> x.hi::text" \
"            OR m.txid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin(x.hi))" \
")"


/*
 * The unordered hooks a claim looks at: only those of $16 (worker.c knows
 * which may have work: its news), or, $16 being NULL (a full look), those
 * whose earliest unfinished delivery is due.  A full look finds them in
 * delivery_due_idx itself (due_hooks, a loose index scan: one descent of
 * the index per hook that has unfinished deliveries, which yields that
 * hook's earliest), so a hook with nothing waiting costs it nothing: it
 * used to read every hook of the database, and probe the index for each.
 * The descent has no floor to start from: while a long transaction pins
 * the xmin horizon, it walks the dead entries at the head of each busy
 * hook's part of the index (some 15 ms for 80,000), once a second, as the
 * claim that follows the floors' reset does.  Each is its own statement
 * (claim_sql): a claim that looks at the hooks of $16 has no due_hooks.
 */
#define DUE_HOOKS \
"due_hooks AS (" \
"    (SELECT d.hook_id, d.next_attempt_at FROM webhook.delivery d" \
"      WHERE d.state IN ('pending', 'failed')" \
"      ORDER BY d.hook_id, d.next_attempt_at LIMIT 1)" \
"    UNION ALL" \
"    SELECT n.hook_id, n.next_attempt_at FROM due_hooks u" \
"      CROSS JOIN LATERAL (" \
"          SELECT d.hook_id, d.next_attempt_at FROM webhook.delivery d" \
"           WHERE d.state IN ('pending', 'failed')" \
"             AND d.hook_id OPERATOR(pg_catalog.>) u.hook_id" \
"           ORDER BY d.hook_id, d.next_attempt_at LIMIT 1) n" \
")"
#define LOOKED_AT_DUE \
"(SELECT k.* FROM due_hooks u" \
"   CROSS JOIN LATERAL (SELECT x.* FROM webhook.hook x WHERE x.id = u.hook_id OFFSET 0) k" \
"  WHERE u.next_attempt_at <= pg_catalog.now())"
#define LOOKED_AT_LISTED \
"(SELECT k.* FROM webhook.hook k WHERE k.id OPERATOR(pg_catalog.=) ANY ($16))"

/*
 * The claim, in parts: a claim runs the statement of the parts it needs
 * (queue_claim()), since its plan is started, every node of it, at every
 * claim, run or not: at one request a claim, that start was a third of
 * the worker's time.  The head: what the worker holds, by transport and
 * tenant, and the floors (and, at a full look, due_hooks, before the
 * candidates).
 */
#define CLAIM_HEAD \
"WITH RECURSIVE busy AS NOT MATERIALIZED (" \
"    SELECT b.tid, b.n FROM ROWS FROM (pg_catalog.unnest($2::bigint[])," \
"                                 pg_catalog.unnest($3::integer[])) AS b(tid, n)" \
"), stalled AS NOT MATERIALIZED (" \
"    SELECT s.tid, s.lim FROM ROWS FROM (pg_catalog.unnest($11::bigint[])," \
"                                        pg_catalog.unnest($12::float8[])) AS s(tid, lim)" \
"), tenant_room AS NOT MATERIALIZED (" \
"    SELECT x.tenant, x.room, x.bytes" \
"      FROM ROWS FROM (pg_catalog.unnest($9::text[]), pg_catalog.unnest($10::integer[])," \
"                      pg_catalog.unnest($17::bigint[]))" \
"           AS x(tenant, room, bytes)" \
"), floors AS NOT MATERIALIZED (" \
"    SELECT f.hook_id, f.floor FROM ROWS FROM (pg_catalog.unnest($7::bigint[])," \
"                                              pg_catalog.unnest($8::timestamptz[]))" \
"                                   AS f(hook_id, floor)"

/* The unordered hooks' due deliveries, of the hooks looked_at. */
#define UNORDERED_CANDIDATES(looked_at) \
"    SELECT x.id, x.event_id, x.hook_id, x.attempts, x.next_attempt_at," \
"           x.next_attempt_at AS floor_at, t.id AS transport_id, t.tenant, r.room," \
"           NULL::bigint AS rank, NULL::integer AS part, NULL::pg_catalog.xid8 AS txid," \
"           NULL::bigint AS n_read, NULL::pg_catalog.oid AS rel, false AS in_order," \
"           NULL::text AS group_key, false AS waits, " NO_READER \
HOOKS_WITH_ROOM(looked_at) \
"      CROSS JOIN LATERAL (" \
"          SELECT d.id, d.event_id, d.hook_id, d.attempts, d.next_attempt_at" \
"            FROM webhook.delivery d" \
"           WHERE d.hook_id = h.id" \
"             AND d.state IN ('pending', 'failed')" \
"             AND d.next_attempt_at <= pg_catalog.now()" \
"             AND d.next_attempt_at >= coalesce((SELECT f.floor FROM floors f" \
"                                                 WHERE f.hook_id = h.id)," \
"                                               '-infinity')" \
"             AND d.id OPERATOR(pg_catalog.<>) ALL ($4)" \
"           ORDER BY d.next_attempt_at" \
"           LIMIT r.room) x" \
"     WHERE h.active AND h.disabled_reason IS NULL AND h.ordered = 'none'" \
"       AND t.id OPERATOR(pg_catalog.%) $5 OPERATOR(pg_catalog.=) $6"
/*
 * The ordered hooks' (the comment above).  A hook ordered whole is one
 * group: its deliveries carry no resource_key (enqueue.c), and are ordered
 * as the deliveries of no resource of a hook ordered by resource are; only
 * its earliest may go, so the walk below is skipped for it (behind a
 * retry, it would probe 256 deliveries at every claim to find none).  Of
 * an ordered hook that has a delivery due, the resources of the deliveries
 * held ($4) are read first (by their pkey, OFFSET 0 keeping the plan from
 * the hook's part of a partial index; those unfinished: what the claim's
 * transaction just recorded is held until it commits, and its resource's
 * next delivery may go now), with the groups of the requests read from
 * its log that the worker holds ($26, $27).  Then its earliest ORDERED_WALK due
 * deliveries are walked in due order (delivery_due_idx), skipping the
 * held resources, and each is asked whether an earlier one of its
 * resource is unfinished (delivery_resource_idx, by the resource_key the
 * delivery carries: one probe, a subplan that OFFSET 0 keeps from becoming a join, which a plan
 * made while the table was small scans whole for each delivery), up to
 * the hook's room (win).  Only when that finds less than the room, the
 * earliest delivery of each of the hook's resources is read too (heads: a
 * loose index scan of delivery_resource_idx, one descent per resource with
 * a delivery unfinished, ORDERED_HEADS resources at most: a retry beyond
 * them waits until one of those is done): the walk may be all deliveries
 * that wait behind a retry not due yet, or behind those held, while the
 * retry that came due is deeper in due order.  So a claim reads about as
 * many deliveries as it takes, and a few hundred more at most, and
 * otherwise a descent per resource.  (It used to read every unfinished
 * delivery of the hook at every claim, with its event's resource_id, and
 * rank them: 120 to 160 ms with 20,000 waiting; a hook ordered whole
 * still did until its deliveries were made one group of no key.)
 */
#define ORDERED_WALK 256
/* at most this many resources' earliest deliveries are read by a claim */
#define ORDERED_HEADS 4096
/* the delivery d is of no resource held (held: see ORDERED_CANDIDATES) */
#define NOT_HELD(d) \
"CASE WHEN " d ".resource_key IS NULL THEN NOT held.none" \
"     ELSE " d ".resource_key OPERATOR(pg_catalog.<>) ALL (held.ids) END"
/*
 * The delivery row d (of the hook h, with its transport t) has no event
 * to go after that the hook has not read.  Its own event read from the log
 * (txid) past the stored cursor was read by a worker that holds the hook's
 * position ($20: then the events before it were read, and are held,
 * handed over or done), or by one that stopped before it recorded them (a
 * crash), whose successor must read them again first: so such a row waits
 * until the worker holds the position.  Then an earlier event of a later
 * transaction not read yet (EARLIER_UNREAD, past the stored cursor; one
 * the worker holds is of a group held).
 */
#define NO_EARLIER_UNREAD(d) \
"NOT EXISTS (SELECT FROM " EVENT_LOOKUP("e.id, e.txid, e.next_txid", "NULL", d ".event_id") " x" \
"             JOIN webhook_internal.cursor c ON c.hook_id = h.id" \
"            WHERE x.txid IS NOT NULL" \
"              AND ((h.id OPERATOR(pg_catalog.<>) ALL ($20) AND NOT " LOG_READ_BY("x", "c") ")" \
"                   OR " EARLIER_UNREAD("h.id", "h.ordered", "t.tenant", d ".resource_key", \
                                       "x.txid", "x.next_txid", d ".event_id", \
                                       "NOT " LOG_READ_BY("e", "c")) "))"
/* the earliest unfinished delivery of hook h of the resources cond */
#define RESOURCE_HEAD(cond) \
"SELECT d.id, d.event_id, d.hook_id, d.attempts, d.next_attempt_at, d.resource_key" \
"  FROM webhook.delivery d" \
" WHERE d.hook_id = h.id AND d.state IN ('pending', 'failed') AND " cond \
" ORDER BY d.resource_key, d.event_id, d.id LIMIT 1"
#define ORDERED_CANDIDATES \
"    UNION ALL" \
"    SELECT x.id, x.event_id, x.hook_id, x.attempts, x.next_attempt_at," \
"           NULL::timestamptz, t.id AS transport_id, t.tenant, r.room," \
"           NULL, NULL, NULL, NULL, NULL, false, NULL, false, " NO_READER \
HOOKS_WITH_ROOM("webhook.hook") \
"      CROSS JOIN LATERAL (" \
"          SELECT coalesce(pg_catalog.array_agg(g.resource_key)" \
"                              FILTER (WHERE g.resource_key IS NOT NULL), '{}') AS ids," \
"                 coalesce(pg_catalog.bool_or(g.resource_key IS NULL), false) AS none" \
"            FROM (SELECT g.hook_id, g.resource_key" \
"                    FROM (SELECT g.* FROM webhook.delivery g" \
"                           WHERE g.id OPERATOR(pg_catalog.=) ANY ($4) OFFSET 0) g" \
"                   WHERE g.state IN ('pending', 'failed')" \
"                  UNION ALL" \
"                  SELECT k.hook_id, k.group_key" \
"                    FROM ROWS FROM (pg_catalog.unnest($26::bigint[])," \
"                                    pg_catalog.unnest($27::text[])) AS k(hook_id, group_key)) g" \
"           WHERE g.hook_id = h.id) held" \
"      CROSS JOIN LATERAL (" \
"          WITH RECURSIVE win AS MATERIALIZED (" \
"              SELECT d.id, d.event_id, d.hook_id, d.attempts, d.next_attempt_at" \
"                FROM (SELECT w.* FROM webhook.delivery w" \
"                       WHERE w.hook_id = h.id AND h.ordered = 'resource'" \
"                         AND w.state IN ('pending', 'failed')" \
"                         AND w.next_attempt_at <= pg_catalog.now()" \
"                       ORDER BY w.next_attempt_at" \
"                       LIMIT " CppAsString2(ORDERED_WALK) ") d" \
"               WHERE " NOT_HELD("d") \
"                 AND NOT EXISTS (" \
"                     SELECT FROM webhook.delivery p" \
"                      WHERE p.hook_id = h.id AND p.state IN ('pending', 'failed')" \
"                        AND p.resource_key OPERATOR(pg_catalog.=) d.resource_key" \
"                        AND (p.event_id, p.id) OPERATOR(pg_catalog.<) (d.event_id, d.id)" \
"                     OFFSET 0)" \
"                 AND (d.resource_key IS NOT NULL OR NOT EXISTS (" \
"                     SELECT FROM webhook.delivery p" \
"                      WHERE p.hook_id = h.id AND p.state IN ('pending', 'failed')" \
"                        AND p.resource_key IS NULL" \
"                        AND (p.event_id, p.id) OPERATOR(pg_catalog.<) (d.event_id, d.id)" \
"                     OFFSET 0))" \
"                 AND " NO_EARLIER_UNREAD("d") \
"               ORDER BY d.next_attempt_at" \
"               LIMIT r.room" \
"          ), heads AS (" \
"              (" RESOURCE_HEAD("d.resource_key IS NOT NULL") ")" \
"              UNION ALL" \
"              SELECT n.* FROM heads u" \
"                CROSS JOIN LATERAL (" \
                   RESOURCE_HEAD("d.resource_key OPERATOR(pg_catalog.>) u.resource_key") ") n" \
"          )" \
"          SELECT w.* FROM win w" \
"          UNION ALL" \
"          (SELECT y.id, y.event_id, y.hook_id, y.attempts, y.next_attempt_at" \
"             FROM (SELECT * FROM (SELECT * FROM heads" \
"                                   LIMIT " CppAsString2(ORDERED_HEADS) ") u" \
"                   UNION ALL (" RESOURCE_HEAD("d.resource_key IS NULL") ")) y" \
"            WHERE (SELECT pg_catalog.count(*) FROM win) OPERATOR(pg_catalog.<) r.room" \
"              AND y.next_attempt_at <= pg_catalog.now() AND " NOT_HELD("y") \
"              AND y.id NOT IN (SELECT w.id FROM win w) AND " NO_EARLIER_UNREAD("y") \
"            ORDER BY y.next_attempt_at" \
"            LIMIT r.room)) x" \
"     WHERE h.active AND h.disabled_reason IS NULL" \
"       AND h.ordered <> 'none'" \
"       AND EXISTS (SELECT FROM webhook.delivery w" \
"                    WHERE w.hook_id = h.id AND w.state IN ('pending', 'failed')" \
"                      AND w.next_attempt_at <= pg_catalog.now())" \
"       AND t.id OPERATOR(pg_catalog.%) $5 OPERATOR(pg_catalog.=) $6"
/*
 * The events read from the log (FRESH): src, fresh or, with the ordered
 * hooks, fresh_in_order.
 */
#define FRESH_CANDIDATES(src) \
"    SELECT NULL::bigint AS id, f.event_id, f.hook_id, 0 AS attempts," \
"           pg_catalog.now() + pg_catalog.row_number() OVER (PARTITION BY f.tenant" \
"                                                            ORDER BY f.rank, f.hook_id)" \
"                              * interval '1 microsecond' AS next_attempt_at," \
"           NULL::timestamptz AS floor_at, f.transport_id, f.tenant, f.room, f.rank, f.part," \
"           f.txid, f.n AS n_read, f.rel, f.in_order, f.group_key, f.waits," \
"           " READER_CARRIED("f") \
"      FROM " src " f WHERE f.rank OPERATOR(pg_catalog.<=) f.take"
/*
 * What the worker may hold of them, their requests, and where they leave
 * the cursors.  Each request's event is looked up once, for its size and
 * for the columns its body is made of, which the claimed rows carry (a
 * value kept in TOAST as its pointer: an event that does not fit is never
 * read whole; one kept in the row, a few kilobytes at most, through the
 * claim's last sort).
 */
#define CLAIM_TAIL(read_hooks) \
"), within_transports AS (" \
"    SELECT c.*, pg_catalog.row_number() OVER" \
"               (PARTITION BY c.tenant ORDER BY c.next_attempt_at) AS tn" \
"      FROM (SELECT candidates.*, pg_catalog.row_number() OVER" \
"                   (PARTITION BY transport_id ORDER BY next_attempt_at) AS n" \
"              FROM candidates) c" \
"     WHERE c.n <= c.room" \
"), picked AS (" \
"    SELECT w.id, w.event_id, w.hook_id, w.attempts, w.next_attempt_at, w.floor_at, w.tenant," \
"           w.rank, w.part, w.txid, w.n_read, w.rel, w.in_order, w.group_key, w.waits," \
"           " READER_CARRIED("w") \
"      FROM within_transports w" \
"     WHERE w.tn <= coalesce((SELECT x.room FROM tenant_room x WHERE x.tenant = w.tenant), $13)" \
"     ORDER BY w.next_attempt_at, pg_catalog.random()" \
"     LIMIT $1" \
"), claimed AS (" \
"    SELECT z.* FROM (" \
"        SELECT p.id, p.event_id, p.hook_id, p.attempts, p.floor_at, y.size," \
"               y.body <= $15 AS fits, p.tenant, p.rank, p.part, p.txid, p.n_read, p.rel," \
"               p.in_order, p.group_key, p.waits, " READER_CARRIED("p") "," \
"               y.uid, y.event_tenant, y.event_type," \
"               y.resource, y.resource_id, y.payload, y.previous, y.created_at," \
"               pg_catalog.sum(y.held) OVER (PARTITION BY p.tenant" \
"                                           ORDER BY p.next_attempt_at, p.id" \
"                                           ROWS UNBOUNDED PRECEDING) - y.held AS before" \
"          FROM picked p" \
"          CROSS JOIN LATERAL (SELECT s.size, s.body," \
"                                     CASE WHEN s.body <= $15 THEN s.body ELSE 0 END AS held," \
"                                     e.uid, e.tenant AS event_tenant, e.event_type," \
"                                     e.resource, e.resource_id, e.payload, e.previous," \
"                                     e.created_at" \
"                                FROM " EVENT_LOOKUP(EVENT_COLUMNS, "p.rel", "p.event_id") " e," \
"                                     LATERAL (SELECT x.size," \
"                                                     CASE WHEN x.size <= $15" \
"                                                          THEN " BODY_SIZE " END AS body" \
"                                                FROM (SELECT " STORED_SIZE " AS size) x) s) y) z" \
"     WHERE z.before < coalesce((SELECT x.bytes FROM tenant_room x WHERE x.tenant = z.tenant)," \
"                               $14)" \
")" \
REQUEST_SELECT ", c.event_id, c.held, c.from_lo, c.from_hi, c.from_last_txid," \
"       c.from_last_id, " CURSOR_AFTER("c") "," \
"       c.in_order, c.group_key, c.waits, c.rank, " READERS_CUT ", " read_hooks \
"  FROM claimed c" \
REQUEST_JOINS("(SELECT c.uid, c.event_tenant AS tenant, c.event_type, c.resource," \
              "        c.resource_id, c.payload, c.previous, c.created_at)")

/*
 * Each claim's statement: at a full look, or of the hooks of $16 (of which
 * the worker holds every position, or not), with their due deliveries or
 * their logs only, with ordered hooks or not.  A claim of the hooks of $16
 * reads their due deliveries only when the worker knows that some may have
 * one (worker.c): most of its claims read logs only, and a full look, once
 * a second, reads every hook's due deliveries.  A claim of the logs only of
 * the hooks of $16, without ordered hooks, is the claim of listed logs
 * (claim_listed_logs(): claim_policy.c, log_claim.c): it has no statement
 * here.
 */
typedef enum ClaimLook
{
	CLAIM_LISTED,				/* the hooks of $16 */
	CLAIM_LISTED_LOG,			/* their logs only */
	CLAIM_HELD,					/* the hooks of $16, every position held */
	CLAIM_HELD_LOG,				/* their logs only */
	CLAIM_FULL					/* every hook with something due */
} ClaimLook;
#define CLAIM_LOOKS (CLAIM_FULL + 1)

#define LISTED_HEAD(fresh) \
CLAIM_HEAD "), " FRESH_HOOKS_LISTED ", " fresh ", candidates AS ("
#define FULL_HEAD(fresh) \
CLAIM_HEAD "), " DUE_HOOKS ", " FRESH_HOOKS_BEHIND ", " fresh ", " FRESH_MOVED ", candidates AS ("
#define LISTED_DUE_AND_FRESH(src) \
UNORDERED_CANDIDATES(LOOKED_AT_LISTED) "    UNION ALL" FRESH_CANDIDATES(src)
#define FULL_DUE_AND_FRESH(src) \
UNORDERED_CANDIDATES(LOOKED_AT_DUE) "    UNION ALL" FRESH_CANDIDATES(src)

/*
 * a look's statements: of the unordered hooks only, and of the ordered ones
 * too (their logs read in order, and their rows' branch)
 */
#define WITH_AND_WITHOUT_ORDERED(head, read, candidates, ordered_rows, tail) \
	{head(read(UNORDERED)) candidates("fresh") tail, \
	 head(read(IN_ORDER) ", " FRESH_IN_ORDER) candidates("fresh_in_order") \
	 ordered_rows tail}
/*
 * the statement of a look whose unordered hooks' claim is the claim of
 * listed logs (claim_listed_logs()): with the ordered ones only
 */
#define WITH_ORDERED_ONLY(head, read, candidates, ordered_rows, tail) \
	{NULL, head(read(IN_ORDER) ", " FRESH_IN_ORDER) candidates("fresh_in_order") \
	 ordered_rows tail}
/* a listed claim's hooks are listed already: a full look's read (READ_HOOKS) */
#define LISTED_TAIL CLAIM_TAIL("NULL::bigint[]")
#define FULL_TAIL CLAIM_TAIL(READ_HOOKS)

static const char *const claim_sql[CLAIM_LOOKS][2] = {
	[CLAIM_LISTED] = WITH_AND_WITHOUT_ORDERED(LISTED_HEAD, FRESH, LISTED_DUE_AND_FRESH,
											  ORDERED_CANDIDATES, LISTED_TAIL),
	[CLAIM_LISTED_LOG] = WITH_ORDERED_ONLY(LISTED_HEAD, FRESH, FRESH_CANDIDATES, "",
										   LISTED_TAIL),
	[CLAIM_HELD] = WITH_AND_WITHOUT_ORDERED(LISTED_HEAD, FRESH_OF_HELD, LISTED_DUE_AND_FRESH,
											ORDERED_CANDIDATES, LISTED_TAIL),
	[CLAIM_HELD_LOG] = WITH_ORDERED_ONLY(LISTED_HEAD, FRESH_OF_HELD, FRESH_CANDIDATES, "",
										 LISTED_TAIL),
	[CLAIM_FULL] = WITH_AND_WITHOUT_ORDERED(FULL_HEAD, FRESH, FULL_DUE_AND_FRESH,
											ORDERED_CANDIDATES, FULL_TAIL)
};

/*
 * The claim of listed logs (CLAIM_HELD_LOG and CLAIM_LISTED_LOG of
 * unordered hooks): its policy is claim_policy.c's, its reads
 * log_claim.c's; the SQL here reads what they need.  First the hooks the
 * worker lists ($1, each once; those of them it keeps no row of, or whose
 * position it does not hold: listed_hooks()) that are active, unordered
 * and of this worker's transports, one row each (ListedColumn): whether one whose
 * position the worker does not hold ($2) stopped short of its log's end
 * (its stored cursor names an event, HOOKS_READ's short), its payload
 * format and uid, and its requests' columns that are its hook's
 * (HOOK_REQUEST_COLUMNS).  Each a look-up by key.
 */
typedef enum ListedColumn
{
	LISTED_STORED_SHORT = 1,
	LISTED_PAYLOAD_FORMAT,
	LISTED_UID,
	LISTED_REQUEST				/* HOOK_REQUEST_COLUMNS */
} ListedColumn;
static const char *listed_hooks_sql =
"SELECT CASE WHEN h.id OPERATOR(pg_catalog.<>) ALL ($2)"
"            THEN EXISTS (SELECT FROM webhook_internal.cursor x"
"                          WHERE x.hook_id = h.id AND x.last_txid IS NOT NULL) END,"
"       h.payload_format::text, h.uid::text," HOOK_REQUEST_COLUMNS
"  FROM pg_catalog.unnest($1::bigint[]) AS l(id)"
"  CROSS JOIN LATERAL (SELECT x.* FROM webhook.hook x WHERE x.id = l.id OFFSET 0) h"
"  CROSS JOIN LATERAL (SELECT x.* FROM webhook.transport x"
"                       WHERE x.id = h.transport_id OFFSET 0) t"
" WHERE h.active AND h.disabled_reason IS NULL AND " UNORDERED_KINDS
"   AND t.id OPERATOR(pg_catalog.%) $3 OPERATOR(pg_catalog.=) $4";

/*
 * Then the stored cursors of the hooks read whose positions the worker
 * does not hold ($1): those of this database ($2, $3; another's are left
 * alone until queue_adopt_cursors() adopts them), locked, and none that
 * another transaction holds (STORED_CURSORS).  A hook read without a
 * position is not read.
 */
static const char *stored_positions_sql =
"SELECT l.n, x.lo::text, x.hi::text, x.last_txid::text, x.last_id, x.top_id"
"  FROM pg_catalog.unnest($1::bigint[]) WITH ORDINALITY AS l(id, n)"
"  JOIN webhook_internal.cursor x ON x.hook_id = l.id"
" WHERE x.system_identifier = $2 AND x.database = $3"
"   FOR NO KEY UPDATE OF x SKIP LOCKED";

/* The request a hook would be sent for an event (webhook.preview). */
static const char *preview_sql =
REQUEST_SELECT
"  FROM (VALUES (NULL::bigint, $2::bigint, $1::bigint, 0, NULL::timestamptz,"
"               NULL::bigint, true, NULL::pg_catalog.oid))"
"       AS c(id, event_id, hook_id, attempts, floor_at, size, fits, rel)"
REQUEST_JOINS(EVENT_LOOKUP(EVENT_COLUMNS, "c.rel", "c.event_id"));

/*
 * The hook h, unless another transaction holds its row (a tenant's open
 * update_hook(), say): the worker never waits for one.  What it would have
 * written there (a 410's disabling, an ordered hook's pause, the run of
 * failures) is skipped this once; a later answer does it.
 */
#define HOOK_NOT_HELD(id) \
"h.id IN (SELECT k.id FROM webhook.hook k WHERE k.id = " id \
"         FOR NO KEY UPDATE SKIP LOCKED)"

/*
 * The resource_key of a delivery row made of an event read from the log,
 * by the id of the event, for its hook whose ordered is given: its group
 * (FRESH_IN_ORDER), which the claim's ordered branch reads
 */
#define RESOURCE_KEY_OF(ordered, event_id) \
"CASE WHEN " ordered " = 'resource'" \
"     THEN (SELECT webhook_internal.resource_key(e.resource_id) FROM webhook.event e" \
"            WHERE e.id = " event_id ") END"

/* why a 410 disabled a hook, as the record statement writes and reads it */
#define GONE_REASON "the receiver answered 410 Gone"

/*
 * Why an ordered hook with on_dead = 'stop' was paused: the SQL of the
 * text, from the SQL of the dead delivery's id, last status and last error.
 */
#define STOPPED_REASON(id, status, error) \
"pg_catalog.format('delivery %s died (%s); on_dead is ''stop'': sending is " \
"paused so that the later deliveries keep their order; resume with " \
"update_hook(id, active => true)', " \
id ", coalesce('HTTP ' || " status ", " error ", 'no answer'))"

/*
 * The attempt duration histogram's upper bounds, in milliseconds (the
 * default buckets of Prometheus' client libraries, 5 ms to 10 s), each
 * applied to a macro; webhook_internal.duration_bounds() (src/sql/code/37_metrics.sql)
 * lists the same bounds, in seconds, for metrics() to name them.
 */
#define DURATION_BOUNDS_MS(X) \
	X(5) X(10) X(25) X(50) X(100) X(250) X(500) X(1000) X(2500) X(5000) X(10000)
/* the SQL of the cumulative count of a batch's attempts up to a bound */
#define BUCKET_COUNT(ms) \
"pg_catalog.count(*) FILTER (WHERE r.duration_ms <= " #ms "), "

/* added to a hook's counters (the row of its counters made, or not) */
#define COUNT_MERGE \
"    ON CONFLICT (hook_id) DO UPDATE" \
"       SET successes = m.successes + excluded.successes," \
"           failures = m.failures + excluded.failures," \
"           timeouts = m.timeouts + excluded.timeouts," \
"           errors = m.errors + excluded.errors," \
"           deaths = m.deaths + excluded.deaths," \
"           duration_sum = m.duration_sum + excluded.duration_sum," \
"           duration_buckets = ARRAY(" \
"               SELECT u.a + u.b" \
"                 FROM ROWS FROM (pg_catalog.unnest(m.duration_buckets)," \
"                                 pg_catalog.unnest(excluded.duration_buckets))" \
"                      WITH ORDINALITY AS u(a, b, i)" \
"                ORDER BY u.i)"

/*
 * The counters of the hooks of a batch, one upsert per hook (record_sql's
 * CTE counted): attempts by outcome (success: a 2xx answer; failure: any
 * other answer; timeout: none in time; error: none at all, or not sent),
 * deaths, and the duration histogram, cumulative, the last bucket (+Inf)
 * being the count.
 */
#define COUNT_BATCH \
"    INSERT INTO webhook.hook_metrics AS m" \
"           (hook_id, successes, failures, timeouts, errors, deaths," \
"            duration_sum, duration_buckets)" \
"    SELECT r.hook_id," \
"           pg_catalog.count(*) FILTER (WHERE r.status BETWEEN 200 AND 299)," \
"           pg_catalog.count(*) FILTER (WHERE r.status NOT BETWEEN 200 AND 299)," \
"           pg_catalog.count(*) FILTER (WHERE r.status IS NULL AND r.timed_out)," \
"           pg_catalog.count(*) FILTER (WHERE r.status IS NULL AND NOT r.timed_out)," \
"           pg_catalog.count(*) FILTER (WHERE r.new_state = 'dead')," \
"           pg_catalog.sum(r.duration_ms) / 1000," \
"           ARRAY[" DURATION_BOUNDS_MS(BUCKET_COUNT) "pg_catalog.count(*)]" \
"      FROM r GROUP BY r.hook_id" \
COUNT_MERGE
/* the histogram's buckets: one per bound, and the count */
#define N_BUCKETS 12

/*
 * A failure on a hook that a 410 disabled (in this batch, or before) is
 * cancelled, like the hook's waiting deliveries: it would never be claimed.
 * A hook that on_dead = 'stop' paused keeps its deliveries: a failure
 * there stays failed, to be retried once the hook is resumed.
 *
 * The death of a delivery of an ordered hook with on_dead = 'stop' (its
 * schedule exhausted; a 410 disables the hook anyway) pauses the hook in
 * the same statement: it stays active, so that new events still become its
 * deliveries, but its disabled_reason keeps the claim away from them all,
 * so that none goes before the dead one is dealt with.  Those of other resources already held
 * are still sent: each is the earliest of its own resource.
 *
 * Endpoint health (housekeeping.c): a death starts or lengthens the hook's
 * run of failures (failing_since, failing_deaths, last_death_at), a success
 * ends it; a batch with both ends the run and starts another.  The hook
 * row is written only then, so a healthy hook's successes write nothing,
 * and none of these columns is indexed: the update is HOT.  Not for a hook
 * a 410 disables, nor one that a death pauses (stopped): one statement
 * cannot update a row twice, and neither is sent to any more.  Nor one
 * that another transaction holds (HOOK_NOT_HELD, like the other two
 * updates of hooks here): that batch's deaths go uncounted.  The last
 * resort queue_record_failure() does not count its deaths.
 *
 * The attempts go into the current slot of webhook.attempt, read once for
 * the statement (an InitPlan), as webhook_internal.current_log_slot()
 * reads it: the column's default calls that function for each row, and a
 * call of it, once, cost a fifth of the insert of a hundred attempts.  The
 * slot emptied by a rotation is never the current one, so the record never
 * waits for it (housekeeping.c).
 */
/* the parameters of record_sql: an array per column of r */
#define RECORD_ARGS 15

/*
 * The batch r (the parameters, one array per column), each row with its
 * hook and the id of the delivery it is recorded on (row_id): the
 * delivery row whose attempt it is, so that none is recorded twice; or,
 * for a request read from the log (delivery_id 0) whose hook still
 * exists, a new id, which names a row only if it did not succeed
 * (fresh_made): a first attempt's success leaves its attempt row alone.
 */
#define RECORD_INPUT \
"(SELECT r.*, coalesce(d.hook_id, r.fresh_hook_id) AS hook_id," \
"        CASE WHEN r.delivery_id = 0" \
"             THEN pg_catalog.nextval('webhook.delivery_id_seq') ELSE r.delivery_id END AS row_id" \
"   FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::integer[])," \
"                   pg_catalog.unnest($3::timestamptz[]), pg_catalog.unnest($4::float8[])," \
"                   pg_catalog.unnest($5::text[]), pg_catalog.unnest($6::integer[])," \
"                   pg_catalog.unnest($7::jsonb[]), pg_catalog.unnest($8::text[])," \
"                   pg_catalog.unnest($9::text[]), pg_catalog.unnest($10::float8[])," \
"                   pg_catalog.unnest($11::boolean[]), pg_catalog.unnest($12::boolean[])," \
"                   pg_catalog.unnest($13::bigint[]), pg_catalog.unnest($14::bigint[])," \
"                   pg_catalog.unnest($15::boolean[]))" \
"        AS r(delivery_id, attempt_no, started_at, duration_ms, url, status," \
"             response_headers, response_body, error, retry_after, timed_out, final," \
"             event_id, fresh_hook_id, ended)" \
"   LEFT JOIN webhook.delivery d ON d.id = r.delivery_id" \
"                               AND d.attempts = r.attempt_no - 1" \
"  WHERE d.id IS NOT NULL" \
"     OR (r.delivery_id = 0" \
"         AND EXISTS (SELECT FROM webhook.hook h WHERE h.id = r.fresh_hook_id))) r"

/*
 * The batch's attempts, into the current slot (one read of it), each with
 * its event and hook: all there is of a delivery that succeeded at once.
 */
#define INSERT_ATTEMPTS \
"    INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, duration_ms," \
"                                 url, status_code, response_headers, response_body, error," \
"                                 slot, event_id, hook_id)" \
"    SELECT row_id, attempt_no, started_at, duration_ms, url, status," \
"           response_headers, response_body, error," \
"           (SELECT s.slot FROM webhook_internal.log_slot s" \
"             WHERE s.current_from IS NOT NULL AND s.current_until IS NULL)," \
"           event_id, hook_id" \
"      FROM r"

/*
 * A delivery with a row (an ordered hook's, or one queued by replay(),
 * redeliver() or spill()) that succeeds at its first attempt goes as one
 * read from the log does: its row is deleted, and its attempt, which names
 * its event and hook, is all there is of it (webhook.deliveries shows it
 * as succeeded).  A delete marks the row and adds no index entry, where an
 * update to 'succeeded' wrote a new version (not HOT: its state leaves the
 * partial indexes) with an entry in each of the others.
 */
#define SUCCEEDED_AT_ONCE(r) \
"(" r ".new_state = 'succeeded' AND " r ".attempt_no = 1)"
#define DELETE_SUCCEEDED_AT_ONCE \
"done_at_once AS (" \
"    DELETE FROM webhook.delivery d" \
"     USING r WHERE d.id = r.delivery_id AND " SUCCEEDED_AT_ONCE("r")

/*
 * The record of a batch: each attempt's outcome makes its delivery
 * succeeded, failed (tried again after its step of the hook's
 * retry_schedule), dead or cancelled.  An attempt the worker ended in
 * flight, its slot needed by another tenant (ended: worker.c), is never
 * its delivery's death, nor a step of its schedule: it fails, and is tried
 * again after the step it was on, the schedule's last past its end (a
 * minute with no schedule); the attempts after it count their steps
 * without it (ENDED_BEFORE).
 */
/*
 * How many of the attempts made before of the delivery with row id (one
 * that got no answer, status, is a failure; attempt_no its number) the
 * worker ended (http_end_early()'s error): a look at the delivery's
 * attempts by their key, only for a failure after the first attempt.  An
 * attempt recorded without its error (the record's fallbacks) is not told
 * of: it counts as a step.  Attempts older than
 * webhook.retention may be gone: the delivery then gets fewer attempts
 * back.
 */
#define ENDED_BEFORE(id, status, attempt_no) \
"(CASE WHEN " status " BETWEEN 200 AND 299 OR " attempt_no " = 1 THEN 0" \
"      ELSE (SELECT pg_catalog.count(*)::integer FROM webhook.attempt a" \
"             WHERE a.delivery_id = " id " AND a.error LIKE 'ended after %') END)"

static const char *record_sql =
"WITH input AS ("
"    SELECT r.*, h.retry_schedule, h.ordered,"
"           (NOT h.active AND h.disabled_reason = '" GONE_REASON "')"
"           OR pg_catalog.bool_or(r.status = 410) OVER (PARTITION BY r.hook_id) AS hook_gone,"
"           r.attempt_no - " ENDED_BEFORE("r.row_id", "r.status", "r.attempt_no") " AS tried"
"      FROM " RECORD_INPUT
"      JOIN webhook.hook h ON h.id = r.hook_id"
"), r AS MATERIALIZED ("
"    SELECT input.*,"
"           CASE WHEN input.status BETWEEN 200 AND 299 THEN 'succeeded'"
"                WHEN input.status = 410 THEN 'dead'"
"                WHEN input.hook_gone THEN 'cancelled'"
"                WHEN input.ended THEN 'failed'"
"                WHEN input.final THEN 'dead'"
"                WHEN input.tried > pg_catalog.cardinality(input.retry_schedule) THEN 'dead'"
"                ELSE 'failed' END AS new_state,"
"           CASE WHEN input.ended"
"                THEN coalesce(input.retry_schedule[LEAST(input.tried,"
"                         pg_catalog.cardinality(input.retry_schedule))], interval '1 minute')"
"                ELSE input.retry_schedule[input.tried] END AS step"
"      FROM input"
"), attempts AS (" INSERT_ATTEMPTS
"), deliveries AS ("
"    UPDATE webhook.delivery d"
"       SET state = r.new_state,"
"           attempts = r.attempt_no,"
"           last_status = r.status,"
"           last_error = r.error,"
"           finished_at = CASE WHEN r.new_state = 'failed' THEN NULL"
"                              ELSE pg_catalog.now() END,"
"           next_attempt_at = CASE WHEN r.new_state = 'failed'"
"               THEN webhook_internal.next_attempt(r.step, CASE WHEN r.status IN (429, 503)"
"                                                       THEN r.retry_after END)"
"               ELSE d.next_attempt_at END"
"      FROM r WHERE d.id = r.delivery_id AND NOT " SUCCEEDED_AT_ONCE("r")
"    RETURNING d.hook_id, d.state, d.next_attempt_at"
"), " DELETE_SUCCEEDED_AT_ONCE
"), fresh_made AS ("
"    INSERT INTO webhook.delivery (id, event_id, hook_id, state, attempts, last_status,"
"                                  last_error, next_attempt_at, finished_at, resource_key)"
"    SELECT r.row_id, r.event_id, r.hook_id, r.new_state, r.attempt_no, r.status, r.error,"
"           CASE WHEN r.new_state = 'failed'"
"                THEN webhook_internal.next_attempt(r.step, CASE WHEN r.status IN (429, 503)"
"                                                        THEN r.retry_after END)"
"                ELSE pg_catalog.now() END,"
"           CASE WHEN r.new_state = 'failed' THEN NULL ELSE pg_catalog.now() END,"
"           " RESOURCE_KEY_OF("r.ordered", "r.event_id")
"      FROM r WHERE r.delivery_id = 0 AND r.new_state <> 'succeeded'"
"    RETURNING hook_id, state, next_attempt_at"
"), gone AS ("
"    UPDATE webhook.hook h"
"       SET active = false,"
"           disabled_reason = '" GONE_REASON "',"
"           updated_at = pg_catalog.now()"
"     WHERE h.id IN (SELECT r.hook_id FROM r WHERE r.status = 410)"
"       AND " HOOK_NOT_HELD("h.id")
"), stopped AS ("
"    UPDATE webhook.hook h"
"       SET disabled_reason = " STOPPED_REASON("x.delivery_id", "x.status", "x.error") ","
"           updated_at = pg_catalog.now()"
"      FROM (SELECT DISTINCT ON (r.hook_id) r.hook_id, r.row_id AS delivery_id, r.status, r.error"
"              FROM r"
"             WHERE r.new_state = 'dead' AND NOT r.hook_gone"
"             ORDER BY r.hook_id, r.row_id) x"
"     WHERE h.id = x.hook_id AND h.active AND h.disabled_reason IS NULL"
"       AND h.ordered <> 'none' AND h.on_dead = 'stop'"
"       AND " HOOK_NOT_HELD("x.hook_id")
"), health AS ("
"    UPDATE webhook.hook h"
"       SET failing_since = CASE WHEN x.deaths = 0 THEN NULL"
"                                WHEN x.succeeded THEN pg_catalog.now()"
"                                ELSE coalesce(h.failing_since, pg_catalog.now()) END,"
"           failing_deaths = CASE WHEN x.deaths = 0 THEN 0"
"                                 WHEN x.succeeded THEN x.deaths"
"                                 ELSE h.failing_deaths + x.deaths END,"
"           last_death_at = CASE WHEN x.deaths > 0 THEN pg_catalog.now() END"
"      FROM (SELECT r.hook_id,"
"                   pg_catalog.count(*) FILTER (WHERE r.new_state = 'dead') AS deaths,"
"                   pg_catalog.bool_or(r.new_state = 'succeeded') AS succeeded"
"              FROM r WHERE NOT r.hook_gone GROUP BY r.hook_id) x"
"     WHERE h.id = x.hook_id"
"       AND (x.deaths > 0 OR (x.succeeded AND h.failing_since IS NOT NULL))"
"       AND NOT (x.deaths > 0 AND h.active AND h.disabled_reason IS NULL"
"                AND h.ordered <> 'none' AND h.on_dead = 'stop')"
"       AND " HOOK_NOT_HELD("x.hook_id")
"), counted AS ("
COUNT_BATCH
")"
"SELECT x.hook_id, pg_catalog.min(x.next_attempt_at)"
"  FROM (SELECT * FROM deliveries UNION ALL SELECT * FROM fresh_made) x"
" WHERE x.state = 'failed' GROUP BY x.hook_id";

/*
 * The same for a batch whose every attempt was answered with a 2xx, the
 * usual one: each delivery succeeded, no hook is disabled or paused, and a
 * health update only ends a run of failures (a hook a 410 disabled is left
 * as it is, as above: HEALTH_RESTORED, of the hooks of hooks).  Without the
 * other updates, the window over the batch and the retry schedules, it
 * costs two thirds of record_sql (64 successes, measured alone); it
 * returns no retry.
 */
#define HEALTH_RESTORED(hooks) \
"    UPDATE webhook.hook h" \
"       SET failing_since = NULL, failing_deaths = 0, last_death_at = NULL" \
"     WHERE h.id IN (SELECT x.hook_id FROM " hooks " x) AND h.failing_since IS NOT NULL" \
"       AND NOT (NOT h.active AND h.disabled_reason = '" GONE_REASON "')" \
"       AND " HOOK_NOT_HELD("h.id")
static const char *record_succeeded_sql =
"WITH r AS MATERIALIZED ("
"    SELECT r.*, 'succeeded' AS new_state FROM " RECORD_INPUT
"), attempts AS (" INSERT_ATTEMPTS
"), deliveries AS ("
"    UPDATE webhook.delivery d"
"       SET state = 'succeeded', attempts = r.attempt_no, last_status = r.status,"
"           last_error = r.error, finished_at = pg_catalog.now()"
"      FROM r WHERE d.id = r.delivery_id AND NOT " SUCCEEDED_AT_ONCE("r")
"), " DELETE_SUCCEEDED_AT_ONCE
"), health AS (" HEALTH_RESTORED("r")
"), counted AS (" COUNT_BATCH
")"
"SELECT NULL::bigint, NULL::timestamptz WHERE false";

/*
 * And when none of those has a row either (all read from the log, answered
 * at their first attempt), the commonest batch of all: its attempt rows are
 * all there is of it, which attempt_log.c appends without a statement (a
 * statement's plan, started at every batch, cost a third of it), and
 * whose hooks' counters hook_counters.c updates without one while it can.
 * Else this one, of its hooks ($1) that still exist, keeps their counters,
 * counted by the worker (record_read_batch(): $2 the successes, $3 the sum
 * of the durations in seconds, $4 the histogram's buckets, N_BUCKETS a
 * hook, one hook's after the other's), and ends their runs of failures; it returns
 * those hooks, and the slot the attempts are appended to (read once, as
 * INSERT_ATTEMPTS reads it).
 */
#define READ_BATCH_ARGS 4
static const char *record_read_sql =
"WITH b AS MATERIALIZED ("
"    SELECT u.hook_id, u.n, u.duration_sum, u.i"
"      FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::bigint[]),"
"                      pg_catalog.unnest($3::float8[]))"
"           WITH ORDINALITY AS u(hook_id, n, duration_sum, i)"
"     WHERE EXISTS (SELECT FROM webhook.hook h WHERE h.id = u.hook_id)"
"), health AS (" HEALTH_RESTORED("b")
"), counted AS ("
"    INSERT INTO webhook.hook_metrics AS m"
"           (hook_id, successes, failures, timeouts, errors, deaths,"
"            duration_sum, duration_buckets)"
"    SELECT b.hook_id, b.n, 0, 0, 0, 0, b.duration_sum,"
"           $4[(b.i - 1) * " CppAsString2(N_BUCKETS) " + 1 : b.i * " CppAsString2(N_BUCKETS) "]"
"      FROM b"
COUNT_MERGE
")"
"SELECT b.hook_id,"
"       (SELECT s.slot FROM webhook_internal.log_slot s"
"         WHERE s.current_from IS NOT NULL AND s.current_until IS NULL)"
"  FROM b";

/*
 * Their attempt rows when attempt_log.c cannot append them (the slot's
 * table is not as the extension made it: an admin's column or trigger),
 * with record_sql's parameters.
 */
static const char *record_attempts_sql =
"WITH r AS MATERIALIZED (SELECT * FROM " RECORD_INPUT ") " INSERT_ATTEMPTS;

/*
 * After a 410: the other deliveries of these hooks are cancelled, but for
 * those being sent ($2), which record_sql cancels when they are recorded.
 * A statement of its own, run only then: folded into record_sql, its
 * generic plan scanned every due delivery of every batch.
 */
static const char *cancel_sql =
"UPDATE webhook.delivery d"
"   SET state = 'cancelled', finished_at = pg_catalog.now(),"
"       last_error = 'hook disabled: " GONE_REASON "'"
" WHERE d.hook_id OPERATOR(pg_catalog.=) ANY ($1)"
"   AND d.state IN ('pending', 'failed')"
"   AND d.id OPERATOR(pg_catalog.<>) ALL ($2)";

/*
 * A rotated secret's overlap is over: the previous secret goes from the
 * catalog (claim_sql stopped signing with it when it ended).  For the hooks
 * of this worker's transports only, and never waiting: a hook that a
 * transaction holds locked (an update_hook() not yet committed) is left for
 * a later turn.  It changes no column that the hook triggers fire on.
 */
static const char *expire_sql =
"UPDATE webhook.hook h"
"   SET previous_secret = NULL, previous_secret_until = NULL"
" WHERE h.id IN (SELECT x.id FROM webhook.hook x"
"                 WHERE x.previous_secret_until <= pg_catalog.now()"
"                   AND x.transport_id OPERATOR(pg_catalog.%) $1 OPERATOR(pg_catalog.=) $2"
"                   FOR UPDATE SKIP LOCKED)";

/* this worker's share of the transports: those whose id % n_workers = index */
static int	partition_index = 0;
static int	partition_n_workers = 1;

/*
 * Floors.  A delivery's every attempt leaves a dead version of its row
 * behind in delivery_due_idx, among the due deliveries; while a long
 * transaction anywhere pins the xmin horizon, none can be removed, and the
 * claim's scan of an unordered hook walked over all of them every time
 * (the fourth batch of 20,000 under a pinned horizon ran at 0.45 of a
 * clean one).  So the claim starts each unordered hook's scan at its
 * floor: a due time below which the hook has nothing unfinished that the
 * worker does not hold.  After a claim that took deliveries of a hook, its
 * floor is the earliest due time it took (taken in due order, they begin
 * where the hook's unfinished deliveries do), but no later than the start
 * of the oldest transaction of the database that holds a transaction id
 * (it may yet commit deliveries), read before the claim's snapshot.  A new
 * delivery is due when it is inserted, after its transaction got its id
 * (enqueue.c; redeliver() and replay() too), so it is never below a floor;
 * a failed attempt's retry is due later still.  A prepared transaction has
 * no backend to tell when it began, nor has one with track_activities off:
 * while either exists, there are no floors.  The worker's transactions are
 * READ COMMITTED (worker.c), so that each claim takes its snapshot after
 * this is read.  What could still be below a floor (a due time an admin
 * wrote) is found once FLOOR_RESET_MS have passed, at the next claim
 * (within two seconds: there is one at least every second): the floors are
 * forgotten, also whenever the clock went back, and that claim scans from
 * the start.  Ordered hooks read every unfinished delivery of theirs anyway,
 * and have no floor.
 */
#define FLOOR_RESET_MS 1000

typedef struct HookFloor
{
	int64		hook_id;
	TimestampTz floor;
	uint64		claim;			/* the claim that set it */
} HookFloor;

static HookFloor *floors = NULL;
static int	n_floors = 0;
static int	max_floors = 0;
static TimestampTz floors_since = 0;
static uint64 n_claims = 0;

static SPIPlanPtr claim_plans[CLAIM_LOOKS][2];
static SPIPlanPtr listed_hooks_plan;
static SPIPlanPtr stored_positions_plan;
static SPIPlanPtr prepared_plan = NULL;
static SPIPlanPtr record_plan = NULL;
static SPIPlanPtr record_succeeded_plan = NULL;
static SPIPlanPtr record_read_plan = NULL;
static SPIPlanPtr record_attempts_plan = NULL;
static SPIPlanPtr cancel_plan = NULL;
static SPIPlanPtr expire_plan = NULL;
static SPIPlanPtr gone_plan = NULL;
static SPIPlanPtr ordered_plan = NULL;
static SPIPlanPtr adopt_plan = NULL;
static SPIPlanPtr move_plan = NULL;
static SPIPlanPtr hand_over_plan = NULL;
static SPIPlanPtr moved_plan = NULL;

/*
 * When the oldest transaction of this database that holds a transaction id
 * began; now if there is none; 0 when that cannot be told (a prepared
 * transaction, a backend with track_activities off).  Caller is connected
 * to SPI.
 */
static TimestampTz
oldest_writer_start(void)
{
	TimestampTz oldest = GetCurrentTimestamp();
	int			n = pgstat_fetch_stat_numbackends();
	int			i;

	for (i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);

		if (local == NULL || !TransactionIdIsValid(local->backend_xid) ||
			local->backendStatus.st_databaseid != MyDatabaseId)
			continue;
		if (local->backendStatus.st_xact_start_timestamp == 0)
			return 0;
		oldest = Min(oldest, local->backendStatus.st_xact_start_timestamp);
	}

	/*
	 * Then the prepared transactions: one that left its backend after the
	 * above is one now.
	 */
	if (max_prepared_xacts > 0)
	{
		SPIPlanPtr	plan = spi_kept_plan(&prepared_plan,
										 "SELECT FROM pg_catalog.pg_prepared_xacts"
										 " WHERE database OPERATOR(pg_catalog.=)"
										 "       pg_catalog.current_database()"
										 " LIMIT 1", 0, NULL, 0);

		spi_check(SPI_execute_plan(plan, NULL, NULL, true, 1), SPI_OK_SELECT,
				  false, "reading the prepared transactions");
		if (SPI_processed > 0)
			return 0;
	}
	return oldest;
}

/*
 * A delivery due at t of the hook was claimed: the hook's floor is the
 * earliest such t of this claim.
 */
static void
set_floor(int64 hook_id, TimestampTz t)
{
	int			f;

	for (f = 0; f < n_floors; f++)
		if (floors[f].hook_id == hook_id)
			break;
	if (f == n_floors)
	{
		floors = top_array_room(floors, n_floors, &max_floors, sizeof(HookFloor));
		n_floors++;
		floors[f].hook_id = hook_id;
		floors[f].claim = n_claims + 1;	/* not this one: set below */
	}
	if (floors[f].claim != n_claims)
	{
		floors[f].floor = t;
		floors[f].claim = n_claims;
	}
	else
		floors[f].floor = Min(floors[f].floor, t);
}

/*
 * A row of the claim (or of a preview, or of the hooks of the claim of
 * listed logs), deformed once: read column by column (SPI_getvalue()),
 * each of its columns was found by walking the row from its start, and
 * its output function looked up, for every request.  The output functions
 * are looked up once per result.
 */
typedef struct RowReader
{
	TupleDesc	desc;
	FmgrInfo	out[CLAIM_COLUMNS];
	Datum		values[CLAIM_COLUMNS];
	bool		nulls[CLAIM_COLUMNS];
} RowReader;

/* A reader of the rows of desc, in the current memory context. */
static RowReader *
row_reader(TupleDesc desc)
{
	RowReader  *r = palloc(sizeof(RowReader));
	int			i;

	Assert(desc->natts <= CLAIM_COLUMNS);
	r->desc = desc;
	for (i = 0; i < desc->natts; i++)
	{
		Oid			func;
		bool		varlena;

		getTypeOutputInfo(TupleDescAttr(desc, i)->atttypid, &func, &varlena);
		fmgr_info(func, &r->out[i]);
	}
	return r;
}

/* column col (from 1, as SPI's) of the row read, or (Datum) 0 for NULL */
static Datum
column_value(const RowReader *r, int col, bool *isnull)
{
	*isnull = r->nulls[col - 1];
	return *isnull ? (Datum) 0 : r->values[col - 1];
}

/* the same as text, in the current memory context, or NULL */
static char *
column_text(RowReader *r, int col)
{
	if (r->nulls[col - 1])
		return NULL;
	if (TupleDescAttr(r->desc, col - 1)->atttypid == TEXTOID)
		return TextDatumGetCString(r->values[col - 1]);
	return OutputFunctionCall(&r->out[col - 1], r->values[col - 1]);
}

/*
 * Until AtEOXact_GUC(true, the level returned), statements are planned
 * (at their first run, for a kept plan) to read tables by their indexes
 * only, in index order: no sequential nor bitmap scans.
 */
static int
plan_by_index(void)
{
	int			nest_level = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

/*
 * Run the kept plan with values, planned by index (plan_by_index()), and
 * check that it read rows (what it does, for an error): the statements of
 * the claim of listed logs, which most of its claims run none of.
 */
static void
run_by_index(SPIPlanPtr plan, Datum *values, const char *what)
{
	int			nest_level = plan_by_index();

	spi_check(SPI_execute_plan(plan, values, NULL, false, 0), SPI_OK_SELECT, false, what);
	AtEOXact_GUC(true, nest_level);
}

/* The values of arr, a bigint[] without nulls, copied into cxt; *n of them. */
static int64 *
int8_array_values(ArrayType *arr, MemoryContext cxt, int *n)
{
	Datum	   *elems;
	int64	   *values;
	int			i;

	deconstruct_array(arr, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, NULL, n);
	values = MemoryContextAlloc(cxt, sizeof(int64) * Max(*n, 1));
	for (i = 0; i < *n; i++)
		values[i] = DatumGetInt64(elems[i]);
	return values;
}

/*
 * A position of a hook's log from the columns of the row read from first
 * on: lo, hi, last_txid, last_id, and, with_top, top_id.
 */
static void
position_from_row(LogPosition *pos, RowReader *r, int first, bool with_top)
{
	bool		isnull;

	pos->lo = column_text(r, first);
	pos->hi = column_text(r, first + 1);
	pos->last_txid = column_text(r, first + 2);
	pos->last_id = DatumGetInt64(column_value(r, first + 3, &isnull));
	pos->top_id = with_top ? DatumGetInt64(column_value(r, first + 4, &isnull)) : 0;
}

/*
 * The claim's columns past REQUEST_SELECT's: the event, and, for a request
 * read from the log, where its hook's cursor is after it (CURSOR_AFTER) and
 * where it was read from (READER_CARRIED), the group it is in and whether it
 * waits (FRESH_IN_ORDER), and its rank in the hook's read, in the
 * request's context.
 */
static void
read_from_row(Attempt *req, RowReader *r, uint64 claim)
{
	bool		isnull;

	req->event_id = DatumGetInt64(column_value(r, REQUEST_COLUMNS + 1, &isnull));
	if (req->delivery_id != 0)
		return;
	req->in_order = DatumGetBool(column_value(r, REQUEST_COLUMNS + 12, &isnull));
	req->group_key = column_text(r, REQUEST_COLUMNS + 13);
	req->waits = DatumGetBool(column_value(r, REQUEST_COLUMNS + 14, &isnull));
	req->read = palloc0(sizeof(LogRead));
	req->read->rank = DatumGetInt64(column_value(r, REQUEST_COLUMNS + 15, &isnull));
	req->read->claim = claim;
	req->read->from_held = DatumGetBool(column_value(r, REQUEST_COLUMNS + 2, &isnull));
	position_from_row(&req->read->from, r, REQUEST_COLUMNS + 3, false);
	req->read->stored = (req->read->from.lo != NULL);
	position_from_row(&req->read->to, r, REQUEST_COLUMNS + 7, true);
}

/*
 * A transport's static headers (a JSON object of strings: check_headers())
 * as "Name: value" lines, a value that is not a string as its JSON text, as
 * jsonb_each_text() gives it; none of a null.
 */
static List *
header_lines(Jsonb *headers)
{
	List	   *lines = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	char	   *name = NULL;

	if (!JB_ROOT_IS_OBJECT(headers))
		return NIL;
	it = JsonbIteratorInit(&headers->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE && v.type == jbvString)
			lines = lappend(lines, psprintf("%s: %.*s", name, v.val.string.len,
											v.val.string.val));
		else if (token == WJB_VALUE && v.type != jbvNull)
		{
			Jsonb	   *value = JsonbValueToJsonb(&v);

			lines = lappend(lines, psprintf("%s: %s", name,
											JsonbToCString(NULL, &value->root,
														   VARSIZE(value))));
		}
	}
	return lines;
}

/*
 * Fill a request's columns of its hook and transport (HOOK_REQUEST_COLUMNS)
 * from the row read by r, from the column first on, copied into the
 * current memory context (the request's).
 */
static void
request_of_hook(Attempt *req, RowReader *r, int first)
{
	bool		isnull;
	Datum		headers;

#define HOOK_VALUE(c) column_value(r, first + (c), &isnull)
#define HOOK_TEXT(c) column_text(r, first + (c))
	req->transport_id = DatumGetInt64(HOOK_VALUE(HOOK_TRANSPORT_ID));
	attempt_set_urls(req, HOOK_TEXT(HOOK_URL), HOOK_TEXT(HOOK_QUERY_KEY));
	headers = HOOK_VALUE(HOOK_HEADERS);
	if (!isnull)
		req->headers = header_lines(DatumGetJsonbP(headers));
	req->auth_type = HOOK_TEXT(HOOK_AUTH_TYPE);
	req->auth_user = HOOK_TEXT(HOOK_AUTH_USER);
	req->auth_secret = HOOK_TEXT(HOOK_AUTH_SECRET);
	/* never 0, which is no timeout at all to curl */
	req->connect_timeout_ms =
		Max(1, (long) DatumGetInt64(HOOK_VALUE(HOOK_CONNECT_TIMEOUT_MS)));
	req->timeout_ms = Max(1, (long) DatumGetInt64(HOOK_VALUE(HOOK_TIMEOUT_MS)));
	req->tls_verify = DatumGetBool(HOOK_VALUE(HOOK_TLS_VERIFY));
	req->ca_file = HOOK_TEXT(HOOK_CA_FILE);
	req->client_cert_file = HOOK_TEXT(HOOK_CLIENT_CERT_FILE);
	req->client_key_file = HOOK_TEXT(HOOK_CLIENT_KEY_FILE);
	req->client_key_password = HOOK_TEXT(HOOK_CLIENT_KEY_PASSWORD);
	req->signature = HOOK_TEXT(HOOK_SIGNATURE);
	req->secret = HOOK_TEXT(HOOK_SECRET);
	req->signature_header = HOOK_TEXT(HOOK_SIGNATURE_HEADER);
	req->transport_max_in_flight = DatumGetInt32(HOOK_VALUE(HOOK_MAX_IN_FLIGHT));
	req->hook_id = DatumGetInt64(HOOK_VALUE(HOOK_ID));
	req->previous_secret = HOOK_TEXT(HOOK_PREVIOUS_SECRET);
	req->transform = DatumGetObjectId(HOOK_VALUE(HOOK_TRANSFORM));
	req->transform_role = DatumGetObjectId(HOOK_VALUE(HOOK_TRANSFORM_ROLE));
	req->transport_max_per_second = DatumGetFloat8(HOOK_VALUE(HOOK_MAX_PER_SECOND));
	req->tenant = HOOK_TEXT(HOOK_TENANT);
#undef HOOK_VALUE
#undef HOOK_TEXT
}

/*
 * Fill a request from tup, a row of REQUEST_SELECT (and of the claim's
 * columns after them), read by r; its text columns are copied into the
 * request's own context.
 */
static Attempt *
request_from_row(RowReader *r, HeapTuple tup, MemoryContext parent, uint64 claim)
{
	Attempt    *req = attempt_new(parent);
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	bool		isnull;

	heap_deform_tuple(tup, r->desc, r->values, r->nulls);
	req->delivery_id = DatumGetInt64(column_value(r, 1, &isnull));
	req->attempt_no = DatumGetInt32(column_value(r, 2, &isnull));
	req->msg_id = column_text(r, 3);
	req->body = column_text(r, 4);
	req->event = column_value(r, 5, &isnull);
	if (!isnull)
		req->event = datumCopy(req->event, false, -1);
	req->floor_at = DatumGetTimestampTz(column_value(r, 6, &isnull));
	req->event_bytes = DatumGetInt64(column_value(r, 7, &isnull));
	if (isnull)
		req->event_bytes = -1;
	/* a preview's event always fits: its caller's own session renders it */
	req->fits = DatumGetBool(column_value(r, 8, &isnull)) && !isnull;
	request_of_hook(req, r, HOOK_COLUMN);
	if (req->body == NULL && !OidIsValid(req->transform) && req->fits)
		req->body = pstrdup("null");
	if (r->desc->natts > REQUEST_COLUMNS)
		read_from_row(req, r, claim);

	MemoryContextSwitchTo(old);
	return req;
}

/* A one-dimensional array of n elements of type, nulls allowed. */
static Datum
array_of(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  typlen, typbyval, typalign));
}

/*
 * This worker (number index of n_workers) claims the deliveries of the
 * transports whose id % n_workers = index, and only those: each transport
 * has one worker, which holds its max_in_flight alone.
 */
void
queue_set_partition(int index, int n_workers)
{
	partition_index = index;
	partition_n_workers = n_workers;
	queue_hooks_changed();		/* the hooks kept are of the old partition */
}

/* qsort() and bsearch() comparator of int64s */
static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Whether pos holds the position of each of the n hooks of hook_ids. */
static bool
holds_all(const Datum *hook_ids, int n, const HeldPositions *pos)
{
	int64	   *held = palloc(sizeof(int64) * Max(pos->n, 1));
	int			i;

	for (i = 0; i < pos->n; i++)
		held[i] = DatumGetInt64(pos->hook_ids[i]);
	qsort(held, pos->n, sizeof(int64), cmp_int64);
	for (i = 0; i < n; i++)
	{
		int64		id = DatumGetInt64(hook_ids[i]);

		if (bsearch(&id, held, pos->n, sizeof(int64), cmp_int64) == NULL)
			return false;
	}
	return true;
}

/*
 * A reader of a claim of listed logs, as this file knows it: its row of
 * listed_hooks_sql, and where it reads from: the position the worker holds,
 * or the stored one (then locked, and the cursor's move is from there).
 */
typedef struct ListedRead
{
	int			row;
	bool		held;
	LogPosition from;			/* the stored position; lo NULL when held */
} ListedRead;

/*
 * The request of the i-th event the claim of listed logs c keeps, for its
 * reader (of reads, its row of rows read by r), appended to claimed.
 */
static void
request_of_taken(LogClaim *c, int i, HeapTuple *rows, RowReader *r,
				 const ListedRead *reads, MemoryContext parent, uint64 claim,
				 dlist_head *claimed)
{
	Attempt    *req = attempt_new(parent);
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	LogTaken	t;
	const ListedRead *read;

	/* on the list first: what an error leaves half made is freed with it */
	dlist_push_tail(claimed, &req->node);
	log_claim_take(c, i, &t, req->cxt);
	read = &reads[t.reader];
	heap_deform_tuple(rows[read->row], r->desc, r->values, r->nulls);
	req->attempt_no = 1;
	req->event_id = t.event_id;
	req->msg_id = t.msg_id;
	req->body = t.body;
	req->event = t.event;
	req->event_bytes = t.size;
	req->fits = t.fits;
	request_of_hook(req, r, LISTED_REQUEST);
	if (req->body == NULL && !OidIsValid(req->transform) && req->fits)
		req->body = pstrdup("null");
	req->read = palloc0(sizeof(LogRead));
	req->read->rank = t.rank;
	req->read->claim = claim;
	req->read->from_held = read->held;
	if (read->from.lo != NULL)
	{
		req->read->from.lo = pstrdup(read->from.lo);
		req->read->from.hi = pstrdup(read->from.hi);
		req->read->from.last_txid = read->from.last_txid ? pstrdup(read->from.last_txid) : NULL;
		req->read->from.last_id = read->from.last_id;
	}
	req->read->stored = (req->read->from.lo != NULL);
	req->read->to = t.to;
	MemoryContextSwitchTo(old);
}

/* a hook whose position the worker holds, and that position's index */
typedef struct HeldAt
{
	int64		hook_id;
	int			at;
} HeldAt;

static int
cmp_held_at(const void *a, const void *b)
{
	int64		x = ((const HeldAt *) a)->hook_id;
	int64		y = ((const HeldAt *) b)->hook_id;

	return (x > y) - (x < y);
}

/* The hooks whose positions the worker holds, sorted, for held_position(). */
static HeldAt *
held_index(const HeldPositions *pos)
{
	HeldAt	   *index = palloc(sizeof(HeldAt) * Max(pos->n, 1));
	int			i;

	for (i = 0; i < pos->n; i++)
	{
		index[i].hook_id = DatumGetInt64(pos->hook_ids[i]);
		index[i].at = i;
	}
	qsort(index, pos->n, sizeof(HeldAt), cmp_held_at);
	return index;
}

/* the index of hook_id's position among those the worker holds, or -1 */
static int
held_position(const HeldAt *index, int n, int64 hook_id)
{
	HeldAt		key = {hook_id, 0};
	HeldAt	   *found = bsearch(&key, index, n, sizeof(HeldAt), cmp_held_at);

	return found ? found->at : -1;
}

/*
 * The rows of listed_hooks_sql, kept from claim to claim, by hook: a claim
 * of listed logs asks again only for the hooks it keeps no row of, and for
 * those whose positions the worker does not hold (whether their stored
 * cursors stopped short is no part of the hook's row).  A hook no row came
 * for (inactive, ordered, another worker's, gone) is kept as such.  Not
 * kept: the row of a hook with a transform, whose role's tenants may change
 * without a change to the hook, nor of one whose previous secret still
 * signs, which ends with time.  All go at any change to a hook or transport
 * that makes a request otherwise (queue_hooks_changed(): the relcache
 * invalidation the triggers of webhook.hook and webhook.transport send on
 * those columns, src/sql/code/40_capture.sql), at a change of the worker's
 * partition, at every full look (at least once a second: a change the
 * triggers missed, made with session_replication_role = replica and the
 * triggers not ALWAYS, or with them disabled, is heard of within that),
 * and when more than LISTED_KEPT are kept.  A row over
 * LISTED_ROW_KEPT_BYTES, or past LISTED_KEPT_BYTES, serves its claim only
 * (the rows kept stay: dropped whenever the bytes were full, they were all
 * copied again at the next claim, and the next).
 * A claim takes invalidations in before it looks here; a change committed
 * just after may be in its snapshot and not yet heard of (a commit is
 * seen before its invalidation is sent): it is the next claim's.  Asked
 * for at every claim, these rows were about a fortieth of the worker's CPU
 * at full rate (perf).
 */
typedef struct ListedEntry
{
	int64		hook_id;		/* the key */
	HeapTuple	row;			/* NULL: the hook is not read */
	bool		kept;			/* row (or that there is none) good for the
								 * next claims */
	bool		copied;			/* row is a copy in listed_cxt; else the
								 * claim's own, gone with it (an entry not
								 * kept is asked for again before use) */
	uint64		claim;			/* the last claim that listed it */
} ListedEntry;

#define LISTED_KEPT (4 * QUEUE_MAX_HOOKS_LISTED)
#define LISTED_KEPT_BYTES (32 * 1024 * 1024)
/* and no row over this (a transport's headers alone may take 512 kB) */
#define LISTED_ROW_KEPT_BYTES (64 * 1024)

static MemoryContext listed_cxt = NULL;
static HTAB *listed_entries = NULL;
static RowReader *listed_reader = NULL;	/* of listed_hooks_sql's rows */
static bool listed_stale = true;

/*
 * The hooks or transports changed: the rows kept of them go at the next
 * claim (never during one, which may be using them).  Called from a
 * relcache invalidation callback: it only notes it.
 */
void
queue_hooks_changed(void)
{
	listed_stale = true;
}

/*
 * The bytes of the row read by r with its values inline, counted without
 * reading those stored out of line (a transport's headers may take 512 kB,
 * which a row not kept must not cost a copy at every claim).
 */
static Size
row_bytes(const RowReader *r)
{
	Size		bytes = 0;
	int			i;

	for (i = 0; i < r->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(r->desc, i);

		if (r->nulls[i])
			continue;
		bytes += att->attlen > 0 ? (Size) att->attlen
			: att->attlen == -1 ? toast_raw_datum_size(r->values[i])
			: strlen(DatumGetCString(r->values[i])) + 1;
	}
	return bytes;
}

/* Forget every row kept, and start keeping them afresh. */
static void
forget_listed(void)
{
	HASHCTL		ctl;

	if (listed_cxt == NULL)
		listed_cxt = AllocSetContextCreate(TopMemoryContext, "webhook listed hooks",
										   ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(listed_cxt);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ListedEntry);
	ctl.hcxt = listed_cxt;
	listed_entries = hash_create("webhook listed hooks", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	listed_reader = NULL;
	listed_stale = false;
}

/*
 * Ask listed_hooks_sql for the n hooks ask (and whether those of them the
 * worker holds no position of stopped short), and keep what comes.
 */
static void
ask_listed(Datum *ask, int n, const HeldPositions *pos)
{
	Oid			types[4] = {INT8ARRAYOID, INT8ARRAYOID, INT8OID, INT8OID};
	Datum		values[4];
	MemoryContext old;
	bool		isnull;
	bool		no_transform;
	bool		no_previous;
	bool		keep;
	HeapTuple	row;
	uint64		i;
	int			k;

	values[0] = array_of(ask, NULL, n, INT8OID);
	values[1] = array_of(pos->hook_ids, NULL, pos->n, INT8OID);
	values[2] = Int64GetDatum(partition_n_workers);
	values[3] = Int64GetDatum(partition_index);
	run_by_index(spi_kept_plan(&listed_hooks_plan, listed_hooks_sql, 4, types, 0),
				 values, "reading the hooks listed");
	Assert(SPI_tuptable->tupdesc->natts == LISTED_REQUEST - 1 + HOOK_COLUMNS);
	old = MemoryContextSwitchTo(listed_cxt);
	if (listed_reader == NULL)
		listed_reader = row_reader(CreateTupleDescCopy(SPI_tuptable->tupdesc));

	/*
	 * each hook asked for has no row, until one comes (and none is known
	 * to have none until all have come: an error meanwhile leaves them to
	 * be asked for again)
	 */
	for (k = 0; k < n; k++)
	{
		int64		hook_id = DatumGetInt64(ask[k]);
		ListedEntry *e = hash_search(listed_entries, &hook_id, HASH_FIND, NULL);

		Assert(e != NULL);
		if (e->row != NULL && e->copied)
			heap_freetuple(e->row);
		e->row = NULL;
		e->kept = false;
	}
	for (i = 0; i < SPI_processed; i++)
	{
		RowReader  *r = listed_reader;
		int64		hook_id;
		ListedEntry *e;

		heap_deform_tuple(SPI_tuptable->vals[i], r->desc, r->values, r->nulls);
		hook_id = DatumGetInt64(column_value(r, LISTED_REQUEST + HOOK_ID, &isnull));
		e = hash_search(listed_entries, &hook_id, HASH_FIND, NULL);
		Assert(e != NULL);
		(void) column_value(r, LISTED_REQUEST + HOOK_TRANSFORM, &no_transform);
		(void) column_value(r, LISTED_REQUEST + HOOK_PREVIOUS_SECRET, &no_previous);
		keep = no_transform && no_previous &&
			row_bytes(r) <= LISTED_ROW_KEPT_BYTES &&
			MemoryContextMemAllocated(listed_cxt, true) < LISTED_KEPT_BYTES;

		/*
		 * its values inline: a row kept outlives its transaction (and the
		 * entry has it only once they are all read: an error while they
		 * are, a toasted value's lock_timeout, leaves it with none)
		 */
		row = keep ? toast_flatten_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc)
			: SPI_tuptable->vals[i];
		e->row = row;
		e->kept = e->copied = keep;
	}
	/* those no row came for are not read, until a change */
	for (k = 0; k < n; k++)
	{
		int64		hook_id = DatumGetInt64(ask[k]);
		ListedEntry *e = hash_search(listed_entries, &hook_id, HASH_FIND, NULL);

		e->kept |= (e->row == NULL);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Step of the claim of listed logs: the hooks the worker lists that it
 * may read (listed_hooks_sql's rows, kept or asked for), in turn, each
 * once: as the policy needs them, their rows (read by the reader *r), and
 * the position the worker holds of each (its index), or -1.  Sets *n to
 * how many.
 */
static ListedHook *
listed_hooks(const QueueHeld *held, HeapTuple **rows, RowReader **r, int **held_at, int *n)
{
	const HeldPositions *pos = &held->positions;
	HeldAt	   *index = held_index(pos);
	int64	   *ids = palloc(sizeof(int64) * Max(held->n_only_hooks, 1));
	int		   *ids_at = palloc(sizeof(int) * Max(held->n_only_hooks, 1));
	Datum	   *ask = palloc(sizeof(Datum) * Max(held->n_only_hooks, 1));
	ListedHook *hooks;
	int			n_ids = 0;
	int			n_ask = 0;
	bool		isnull;
	int			i;

	/* (changes committed since the slots were locked, if held already) */
	AcceptInvalidationMessages();
	if (listed_stale || listed_cxt == NULL ||
		hash_get_num_entries(listed_entries) > LISTED_KEPT)
		forget_listed();

	/* each hook once, in turn; asked for unless kept and its position held */
	for (i = 0; i < held->n_only_hooks; i++)
	{
		int64		hook_id = DatumGetInt64(held->only_hooks[i]);
		bool		found;
		ListedEntry *e = hash_search(listed_entries, &hook_id, HASH_ENTER, &found);

		if (found && e->claim == held->claim)
			continue;
		if (!found)
		{
			e->row = NULL;
			e->kept = false;
			e->copied = false;
		}
		e->claim = held->claim;
		ids[n_ids] = hook_id;
		ids_at[n_ids] = held_position(index, pos->n, hook_id);
		if (!e->kept || ids_at[n_ids] < 0)
			ask[n_ask++] = Int64GetDatum(hook_id);
		n_ids++;
	}
	if (n_ask > 0)
		ask_listed(ask, n_ask, pos);

	*r = listed_reader;
	*rows = palloc(sizeof(HeapTuple) * Max(n_ids, 1));
	*held_at = palloc(sizeof(int) * Max(n_ids, 1));
	hooks = palloc0(sizeof(ListedHook) * Max(n_ids, 1));
	*n = 0;
	for (i = 0; i < n_ids; i++)
	{
		ListedEntry *e = hash_search(listed_entries, &ids[i], HASH_FIND, NULL);
		ListedHook *h = &hooks[*n];
		int			at = ids_at[i];

		Assert(e != NULL);
		if (e->row == NULL)
			continue;
		heap_deform_tuple(e->row, (*r)->desc, (*r)->values, (*r)->nulls);
		h->transport_id = DatumGetInt64(column_value(*r, LISTED_REQUEST + HOOK_TRANSPORT_ID,
													 &isnull));
		h->tenant = column_text(*r, LISTED_REQUEST + HOOK_TENANT);
		h->max_in_flight = DatumGetInt32(column_value(*r, LISTED_REQUEST + HOOK_MAX_IN_FLIGHT,
													  &isnull));
		h->max_per_second = DatumGetFloat8(column_value(*r, LISTED_REQUEST + HOOK_MAX_PER_SECOND,
														&isnull));
		h->read_short = at >= 0 ? !pos->last_txid_nulls[at]
			: DatumGetBool(column_value(*r, LISTED_STORED_SHORT, &isnull));
		(*held_at)[*n] = at;
		(*rows)[(*n)++] = e->row;
	}
	return hooks;
}

/*
 * Step of the claim of listed logs: the stored positions of the n hooks
 * read that the worker holds no position of (their rows_of listed, read
 * by listed_r), locked (stored_positions_sql), into positions; false in
 * found for each that has none, or whose cursor another transaction holds.
 */
static void
stored_positions(HeapTuple *listed, RowReader *listed_r, const int *rows_of, int n,
				 LogPosition *positions, bool *found)
{
	Oid			types[3] = {INT8ARRAYOID, INT8OID, OIDOID};
	Datum		values[3];
	Datum	   *ids = palloc(sizeof(Datum) * Max(n, 1));
	RowReader  *r;
	bool		isnull;
	uint64		i;
	int			k;

	for (k = 0; k < n; k++)
	{
		heap_deform_tuple(listed[rows_of[k]], listed_r->desc, listed_r->values,
						  listed_r->nulls);
		ids[k] = column_value(listed_r, LISTED_REQUEST + HOOK_ID, &isnull);
	}
	values[0] = array_of(ids, NULL, n, INT8OID);
	values[1] = Int64GetDatum((int64) GetSystemIdentifier());
	values[2] = ObjectIdGetDatum(MyDatabaseId);
	run_by_index(spi_kept_plan(&stored_positions_plan, stored_positions_sql, 3, types, 0),
				 values, "locking the stored cursors read");
	r = row_reader(SPI_tuptable->tupdesc);
	memset(found, 0, sizeof(bool) * n);
	for (i = 0; i < SPI_processed; i++)
	{
		heap_deform_tuple(SPI_tuptable->vals[i], r->desc, r->values, r->nulls);
		k = (int) DatumGetInt64(column_value(r, 1, &isnull)) - 1;
		found[k] = true;
		position_from_row(&positions[k], r, 2, true);
	}
}

/*
 * The claim of listed logs (CLAIM_HELD_LOG or CLAIM_LISTED_LOG of
 * unordered hooks), in steps: the hooks listed (listed_hooks()), those
 * read (claim_policy_read()), their positions, held or stored
 * (stored_positions()), what each takes (claim_policy_takes()), and then
 * event by event (log_claim.c).  Returns how many it claimed.
 */
static int
claim_listed_logs(int limit, const QueueHeld *held, MemoryContext parent,
				  dlist_head *claimed, ClaimNotes *notes)
{
	const HeldPositions *pos = &held->positions;
	HeapTuple  *rows;
	RowReader  *r;
	ListedHook *hooks;
	int		   *held_at;
	int			n_listed;
	int			n_with_room;
	int			n_read = 0;
	int			n_stored = 0;
	int		   *stored_rows;
	LogPosition *stored;
	bool	   *found;
	LogReader  *readers;
	ListedRead *reads;
	int			n_readers = 0;
	int			n_claimed;
	LogClaim   *c;
	bool		isnull;
	int			i;
	int			k;

	notes->readers_cut = false;
	notes->n_read_hooks = 0;
	notes->read_hooks = NULL;
	c = log_claim_open();
	hooks = listed_hooks(held, &rows, &r, &held_at, &n_listed);
	n_with_room = claim_policy_read(hooks, n_listed, held, limit);

	/* the stored positions of those read that the worker holds none of */
	stored_rows = palloc(sizeof(int) * Max(n_listed, 1));
	for (i = 0; i < n_listed; i++)
	{
		n_read += hooks[i].read;
		if (hooks[i].read && held_at[i] < 0)
			stored_rows[n_stored++] = i;
	}
	stored = palloc0(sizeof(LogPosition) * Max(n_stored, 1));
	found = palloc0(sizeof(bool) * Max(n_stored, 1));
	if (n_stored > 0)
		stored_positions(rows, r, stored_rows, n_stored, stored, found);

	/* the readers: the hooks read, at their positions */
	readers = palloc0(sizeof(LogReader) * Max(n_read, 1));
	reads = palloc0(sizeof(ListedRead) * Max(n_read, 1));
	for (i = 0, k = 0; i < n_listed; i++)
	{
		LogReader  *rd = &readers[n_readers];
		int			at = held_at[i];
		int			at_stored = -1;

		if (!hooks[i].read)
			continue;
		if (at < 0)
		{
			at_stored = k++;
			if (!found[at_stored])
				continue;
		}
		heap_deform_tuple(rows[i], r->desc, r->values, r->nulls);
		rd->hook_id = DatumGetInt64(column_value(r, LISTED_REQUEST + HOOK_ID, &isnull));
		rd->transport_id = hooks[i].transport_id;
		rd->tenant = hooks[i].tenant;
		rd->room = hooks[i].room;
		rd->tenant_room = hooks[i].tenant_room;
		rd->tenant_bytes = hooks[i].tenant_bytes;
		rd->payload_format = column_text(r, LISTED_PAYLOAD_FORMAT);
		rd->uid = column_text(r, LISTED_UID);
		rd->transform =
			OidIsValid(DatumGetObjectId(column_value(r, LISTED_REQUEST + HOOK_TRANSFORM,
													 &isnull)));
		reads[n_readers].row = i;
		reads[n_readers].held = (at >= 0);
		if (at >= 0)
		{
			rd->lo = TextDatumGetCString(pos->lo[at]);
			rd->hi = TextDatumGetCString(pos->hi[at]);
			rd->last_txid = pos->last_txid_nulls[at] ? 0
				: strtou64(TextDatumGetCString(pos->last_txid[at]), NULL, 10);
			rd->last_id = DatumGetInt64(pos->last_id[at]);
			rd->top_id = DatumGetInt64(pos->top_id[at]);
		}
		else
		{
			LogPosition *from = &stored[at_stored];

			reads[n_readers].from = *from;
			rd->lo = from->lo;
			rd->hi = from->hi;
			rd->last_txid = from->last_txid ? strtou64(from->last_txid, NULL, 10) : 0;
			rd->last_id = from->last_id;
			rd->top_id = from->top_id;
		}
		n_readers++;
	}
	if (n_readers == 0)
	{
		log_claim_end(c);
		return 0;
	}
	claim_policy_takes(readers, n_readers, limit);

	n_claimed = log_claim_read(c, readers, n_readers, limit);
	for (i = 0; i < n_claimed; i++)
		request_of_taken(c, i, rows, r, reads, parent, held->claim, claimed);
	log_claim_end(c);
	notes->readers_cut = n_claimed > 0 && n_with_room > n_read;
	return n_claimed;
}

/*
 * Claim up to limit due deliveries, oldest first, and append a filled
 * attempt for each to claimed.  What the worker holds already is skipped,
 * and counts against its transport: a transport never has more than
 * QUEUE_HOLD_FACTOR times its max_in_flight held, however many hooks it
 * has (each hook's candidates are ranked per transport), nor any while it
 * is stalled; a tenant no more than its room (held->tenant_rooms, or
 * held->new_tenant_room for one the worker holds nothing of); and the
 * bodies claimed of a tenant add up to less than its held->tenant_bytes (or
 * held->new_tenant_bytes), but for the last.  What an ordered hook's read
 * stops before is let go at once (order.c).
 * Returns the number the claim took, of those let go too: a full claim
 * (limit) means a backlog; and, with some taken, in notes whether it left
 * out hooks that may have work (HOOKS_READ), which means one too, and the
 * hooks a full look read (READ_HOOKS, in the caller's memory context).
 */
int
queue_claim(int limit, const QueueHeld *held, MemoryContext parent,
			dlist_head *claimed, ClaimNotes *notes)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	bool		isnull;
	Oid			types[CLAIM_ARGS] = {INT4OID, INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
		INT8OID, INT8OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
		TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID,
		INT4OID, INT8OID, INT8OID, INT8ARRAYOID, INT8ARRAYOID,
		INT8OID, OIDOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
	Datum		values[CLAIM_ARGS];
	char		nulls[CLAIM_ARGS];
	const HeldPositions *pos = &held->positions;
	int			nest_level;
	Datum	   *floor_hooks;
	Datum	   *floor_times;
	Datum	   *group_hooks;
	Datum	   *group_keys;
	bool	   *group_key_nulls;
	Attempt   **reqs;
	RowReader  *reader;
	ClaimLook	look;
	TimestampTz oldest;
	int			ret;
	uint64		i;
	int			f;

	spi_connect_checked();

	/*
	 * The claim of listed logs (CLAIM_HELD_LOG or CLAIM_LISTED_LOG, of
	 * unordered hooks): held positions or not, one way.  It reads no due
	 * deliveries: their floors are not its business.
	 */
	if (held->only_hooks != NULL && !held->with_due && !held->with_ordered)
	{
		ret = claim_listed_logs(limit, held, parent, claimed, notes);
		n_claims++;
		SPI_finish();
		return ret;
	}
	if (held->only_hooks == NULL)
	{
		look = CLAIM_FULL;
		/* the rows kept are asked for again after a full look */
		listed_stale = true;
	}
	else if (holds_all(held->only_hooks, held->n_only_hooks, pos))
		look = held->with_due ? CLAIM_HELD : CLAIM_HELD_LOG;
	else
		look = held->with_due ? CLAIM_LISTED : CLAIM_LISTED_LOG;

	/*
	 * Plans (the claim of listed logs' too: run_by_index()) are kept for
	 * the worker's life: one made while the log was empty would read it
	 * whole at every claim once it has grown, and a bitmap scan of a
	 * hook's log, which loses its order, would read all of the backlog to
	 * sort it, at every claim.
	 */
	nest_level = plan_by_index();

	/* before the claim's snapshot */
	oldest = oldest_writer_start();
	if (oldest == 0 || GetCurrentTimestamp() < floors_since ||
		TimestampDifferenceExceeds(floors_since, GetCurrentTimestamp(), FLOOR_RESET_MS))
	{
		n_floors = 0;
		floors_since = GetCurrentTimestamp();
	}
	floor_hooks = palloc(sizeof(Datum) * Max(n_floors, 1));
	floor_times = palloc(sizeof(Datum) * Max(n_floors, 1));
	for (f = 0; f < n_floors; f++)
	{
		floor_hooks[f] = Int64GetDatum(floors[f].hook_id);
		floor_times[f] = TimestampTzGetDatum(floors[f].floor);
	}
	values[6] = array_of(floor_hooks, NULL, n_floors, INT8OID);
	values[7] = array_of(floor_times, NULL, n_floors, TIMESTAMPTZOID);
	values[4] = Int64GetDatum(partition_n_workers);
	values[5] = Int64GetDatum(partition_index);
	values[0] = Int32GetDatum(limit);
	values[1] = array_of(held->transport_ids, NULL, held->n_transports, INT8OID);
	values[2] = array_of(held->counts, NULL, held->n_transports, INT4OID);
	values[3] = array_of(held->delivery_ids, NULL, held->n_deliveries, INT8OID);
	values[8] = array_of(held->tenants, NULL, held->n_tenants, TEXTOID);
	values[9] = array_of(held->tenant_rooms, NULL, held->n_tenants, INT4OID);
	values[10] = array_of(held->stalled_ids, NULL, held->n_stalled, INT8OID);
	values[11] = array_of(held->stalled_limits, NULL, held->n_stalled, FLOAT8OID);
	values[12] = Int32GetDatum(held->new_tenant_room);
	values[13] = Int64GetDatum(held->new_tenant_bytes);
	values[16] = array_of(held->tenant_bytes, NULL, held->n_tenants, INT8OID);
	values[14] = Int64GetDatum(webhook_max_body_bytes);
	values[17] = Int64GetDatum((int64) GetSystemIdentifier());
	values[18] = ObjectIdGetDatum(MyDatabaseId);
	values[19] = array_of(pos->hook_ids, NULL, pos->n, INT8OID);
	values[20] = array_of(pos->lo, NULL, pos->n, TEXTOID);
	values[21] = array_of(pos->hi, NULL, pos->n, TEXTOID);
	values[22] = array_of(pos->last_txid, pos->last_txid_nulls, pos->n, TEXTOID);
	values[23] = array_of(pos->last_id, NULL, pos->n, INT8OID);
	values[24] = array_of(pos->top_id, NULL, pos->n, INT8OID);
	group_hooks = palloc(sizeof(Datum) * Max(held->n_groups, 1));
	group_keys = palloc(sizeof(Datum) * Max(held->n_groups, 1));
	group_key_nulls = palloc(sizeof(bool) * Max(held->n_groups, 1));
	for (f = 0; f < held->n_groups; f++)
	{
		group_hooks[f] = Int64GetDatum(held->groups[f].hook_id);
		group_key_nulls[f] = (held->groups[f].key == NULL);
		group_keys[f] = group_key_nulls[f] ? (Datum) 0
			: CStringGetTextDatum(held->groups[f].key);
	}
	values[25] = array_of(group_hooks, NULL, held->n_groups, INT8OID);
	values[26] = array_of(group_keys, group_key_nulls, held->n_groups, TEXTOID);
	memset(nulls, ' ', sizeof(nulls));
	if (held->only_hooks != NULL)
		values[15] = array_of(held->only_hooks, NULL, held->n_only_hooks, INT8OID);
	else
		nulls[15] = 'n';

	Assert(claim_sql[look][held->with_ordered] != NULL);
	spi_check(SPI_execute_plan(spi_kept_plan(&claim_plans[look][held->with_ordered],
											 claim_sql[look][held->with_ordered],
											 CLAIM_ARGS, types, 0),
							   values, nulls, false, 0),
			  SPI_OK_SELECT, false, "claiming deliveries");
	AtEOXact_GUC(true, nest_level);
	Assert(SPI_tuptable->tupdesc->natts == CLAIM_COLUMNS);

	reader = row_reader(SPI_tuptable->tupdesc);
	reqs = palloc(sizeof(Attempt *) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		Attempt    *req = request_from_row(reader, SPI_tuptable->vals[i], parent,
											held->claim);

		dlist_push_tail(claimed, &req->node);
		if (oldest != 0 && req->floor_at != 0)
			set_floor(req->hook_id, Min(req->floor_at, oldest));
		reqs[i] = req;
	}
	notes->readers_cut = SPI_processed > 0 &&
		DatumGetBool(column_value(reader, REQUEST_COLUMNS + 16, &isnull));
	notes->n_read_hooks = 0;
	notes->read_hooks = NULL;
	if (SPI_processed > 0)
	{
		Datum		read_hooks = column_value(reader, REQUEST_COLUMNS + 17, &isnull);

		if (!isnull)
			notes->read_hooks = int8_array_values(DatumGetArrayTypeP(read_hooks), caller_cxt,
												  &notes->n_read_hooks);
	}
	order_reads(reqs, (int) SPI_processed, held->groups, held->n_groups);
	n_claims++;
	ret = (int) SPI_processed;
	SPI_finish();
	return ret;
}

/*
 * The hook's floor is forgotten: the worker let go of a request of it,
 * which may be due below it.  The next claim scans the hook from the start.
 */
void
queue_forget_floor(int64 hook_id)
{
	int			f;

	for (f = 0; f < n_floors; f++)
	{
		if (floors[f].hook_id == hook_id)
		{
			floors[f] = floors[--n_floors];
			return;
		}
	}
}

/*
 * Of the n hooks hook_ids, those that may not be sent to any more (deleted,
 * inactive, disabled or paused), into *gone (in the current memory
 * context).  Returns how many.  Caller is in a transaction.
 */
int
queue_hooks_gone(Datum *hook_ids, int n, int64 **gone)
{
	Datum		values[1];
	Oid			types[1] = {INT8ARRAYOID};
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	plan;
	bool		isnull;
	uint64		i;
	int			n_gone;

	spi_connect_checked();
	plan = spi_kept_plan(&gone_plan,
						 "SELECT x.id FROM pg_catalog.unnest($1::bigint[]) AS x(id)"
						 " WHERE NOT EXISTS (SELECT FROM webhook.hook h"
						 "                    WHERE h.id = x.id AND h.active"
						 "                      AND h.disabled_reason IS NULL)",
						 1, types, 0);
	values[0] = array_of(hook_ids, NULL, n, INT8OID);
	spi_check(SPI_execute_plan(plan, values, NULL, true, 0), SPI_OK_SELECT,
			  false, "reading the hooks held");
	*gone = MemoryContextAlloc(cxt, sizeof(int64) * Max(1, SPI_processed));
	for (i = 0; i < SPI_processed; i++)
		(*gone)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 1, &isnull));
	n_gone = (int) SPI_processed;
	SPI_finish();
	return n_gone;
}

/*
 * Whether any hook is ordered: while none is, claims leave out the ordered
 * hooks' branch (worker.c).  Read again after every change to hooks.
 */
bool
queue_ordered_hooks_exist(void)
{
	bool		isnull;
	bool		exist;

	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(&ordered_plan,
											 "SELECT EXISTS (SELECT FROM webhook.hook h"
											 "                WHERE h.ordered <> 'none')",
											 0, NULL, 0),
							   NULL, NULL, true, 1),
			  SPI_OK_SELECT, true, "reading whether hooks are ordered");
	exist = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									   1, &isnull));
	SPI_finish();
	return exist;
}

/*
 * The request the hook would be sent for the event, in a new context under
 * parent; NULL when either does not exist.  Caller checks the right to see
 * it (webhook.preview).
 */
Attempt *
queue_preview(int64 hook_id, int64 event_id, MemoryContext parent)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(hook_id), Int64GetDatum(event_id)};
	Attempt    *req = NULL;

	spi_connect_checked();
	spi_check(SPI_execute_with_args(preview_sql, 2, types, values, NULL, true, 1),
			  SPI_OK_SELECT, false, "reading the request");
	if (SPI_processed == 1)
		req = request_from_row(row_reader(SPI_tuptable->tupdesc), SPI_tuptable->vals[0],
							   parent, 0);
	SPI_finish();
	return req;
}

/*
 * A restore brought cursors moved last in another database or cluster,
 * which the claim leaves alone: webhook_internal.spill() makes what they
 * have not read deliveries, and adopts them.  Returns whether it did.
 * Caller is in a transaction.
 */
bool
queue_adopt_cursors(void)
{
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		values[2];
	bool		adopted;

	spi_connect_checked();
	values[0] = Int64GetDatum((int64) GetSystemIdentifier());
	values[1] = ObjectIdGetDatum(MyDatabaseId);
	spi_check(SPI_execute_plan(spi_kept_plan(&adopt_plan,
											 "SELECT webhook_internal.spill()"
											 " WHERE EXISTS (SELECT FROM webhook_internal.cursor x"
											 "                WHERE x.system_identifier <> $1"
											 "                   OR x.database <> $2)",
											 2, types, 0),
							   values, NULL, false, 1),
			  SPI_OK_SELECT, false, "adopting restored cursors");
	adopted = SPI_processed > 0;
	SPI_finish();
	return adopted;
}

/*
 * Move the stored cursors of moves->n hooks from where the worker saw them
 * (moves->from: lo null when there was none) to where it has read and
 * recorded to (moves->to); but not one that another has moved since, nor
 * one that another transaction holds: the worker never waits.  Sets
 * *moved (in the caller's memory context) to the hooks whose cursors
 * moved, and returns how many.  Caller is in a transaction.  Each move
 * finds its cursor by its key (the only condition on the cursors that an
 * index serves), and the cursors locked are listed once:
 * planned as it came (the cursors read whole, each compared with each
 * move, its snapshots printed for each, and the locked ones read again
 * for each), it took 22 ms for 128 moves, every CURSOR_MOVE_MS (worker.c)
 * beside 200 tenants' backlogs.
 */
static const char *move_cursors_sql =
"WITH m AS ("
"    SELECT * FROM ROWS FROM (pg_catalog.unnest($1::bigint[]),"
"                             pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]),"
"                             pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::bigint[]),"
"                             pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::text[]),"
"                             pg_catalog.unnest($8::text[]), pg_catalog.unnest($9::bigint[]),"
"                             pg_catalog.unnest($10::bigint[]))"
"           AS m(hook_id, from_lo, from_hi, from_last_txid, from_last_id,"
"                lo, hi, last_txid, last_id, top_id)"
"), locked AS ("
"    SELECT y.hook_id FROM webhook_internal.cursor y"
"     WHERE y.hook_id OPERATOR(pg_catalog.=) ANY ($1)"
"       FOR NO KEY UPDATE SKIP LOCKED"
"), updated AS ("
"    UPDATE webhook_internal.cursor x"
"       SET lo = m.lo::pg_catalog.pg_snapshot, hi = m.hi::pg_catalog.pg_snapshot,"
"           last_txid = m.last_txid::pg_catalog.xid8,"
"           last_id = CASE WHEN m.last_txid IS NOT NULL THEN m.last_id END, top_id = m.top_id"
"      FROM m"
"     WHERE x.hook_id = m.hook_id AND m.from_lo IS NOT NULL"
"       AND x.lo::text = m.from_lo AND x.hi::text = m.from_hi"
"       AND x.last_txid::text IS NOT DISTINCT FROM m.from_last_txid"
"       AND coalesce(x.last_id, 0) = m.from_last_id"
"       AND x.system_identifier = $11 AND x.database = $12"
"       AND m.hook_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT k.hook_id FROM locked k))"
"    RETURNING x.hook_id"
"), inserted AS ("
"    INSERT INTO webhook_internal.cursor"
"           (hook_id, lo, hi, last_txid, last_id, top_id, system_identifier, database)"
"    SELECT m.hook_id, m.lo::pg_catalog.pg_snapshot, m.hi::pg_catalog.pg_snapshot,"
"           m.last_txid::pg_catalog.xid8,"
"           CASE WHEN m.last_txid IS NOT NULL THEN m.last_id END, m.top_id, $11, $12"
"      FROM m WHERE m.from_lo IS NULL"
"    ON CONFLICT (hook_id) DO NOTHING"
"    RETURNING hook_id"
")"
"SELECT hook_id FROM updated UNION ALL SELECT hook_id FROM inserted";

/*
 * The first five parameters of the statements below: the hooks of m, and
 * the stored positions the worker saw (m->from), as arrays.
 */
static void
from_values(const CursorMoves *m, Datum *values)
{
	values[0] = array_of(m->hook_ids, NULL, m->n, INT8OID);
	values[1] = array_of(m->from.lo, m->from_lo_nulls, m->n, TEXTOID);
	values[2] = array_of(m->from.hi, m->from_lo_nulls, m->n, TEXTOID);
	values[3] = array_of(m->from.last_txid, m->from.last_txid_nulls, m->n, TEXTOID);
	values[4] = array_of(m->from.last_id, NULL, m->n, INT8OID);
}

/*
 * The hook ids of the rows the last SPI statement returned (its first
 * column), into *hooks in cxt; ends the SPI connection, returns how many.
 */
static int
hooks_of_result(MemoryContext cxt, int64 **hooks)
{
	bool		isnull;
	uint64		i;
	int			n = (int) SPI_processed;

	*hooks = MemoryContextAlloc(cxt, sizeof(int64) * Max(1, n));
	for (i = 0; i < SPI_processed; i++)
		(*hooks)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * Of the bases->n stored cursors, as the worker saw them last
 * (bases->from: lo null for none), those another has moved since, or made,
 * into *moved (in the caller's memory context); returns how many.  Caller
 * is in a transaction.
 */
int
queue_cursors_moved(const CursorMoves *bases, int64 **moved)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT8ARRAYOID};
	Datum		values[5];

	from_values(bases, values);
	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(&moved_plan,
											 "SELECT m.hook_id"
											 "  FROM ROWS FROM (pg_catalog.unnest($1::bigint[]),"
											 "                  pg_catalog.unnest($2::text[]),"
											 "                  pg_catalog.unnest($3::text[]),"
											 "                  pg_catalog.unnest($4::text[]),"
											 "                  pg_catalog.unnest($5::bigint[]))"
											 "       AS m(hook_id, lo, hi, last_txid, last_id)"
											 "  LEFT JOIN webhook_internal.cursor x ON x.hook_id = m.hook_id"
											 " WHERE x.lo::text IS DISTINCT FROM m.lo"
											 "    OR x.hi::text IS DISTINCT FROM m.hi"
											 "    OR x.last_txid::text IS DISTINCT FROM m.last_txid"
											 "    OR coalesce(x.last_id, 0) <> m.last_id",
											 5, types, 0),
							   values, NULL, true, 0),
			  SPI_OK_SELECT, false, "reading the log's cursors");
	return hooks_of_result(cxt, moved);
}

int
queue_move_cursors(const CursorMoves *moves, int64 **moved)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[12] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID, INT8OID, OIDOID};
	Datum		values[12];
	int			n = moves->n;
	int			nest_level;

	from_values(moves, values);
	values[5] = array_of(moves->to.lo, NULL, n, TEXTOID);
	values[6] = array_of(moves->to.hi, NULL, n, TEXTOID);
	values[7] = array_of(moves->to.last_txid, moves->to.last_txid_nulls, n, TEXTOID);
	values[8] = array_of(moves->to.last_id, NULL, n, INT8OID);
	values[9] = array_of(moves->to.top_id, NULL, n, INT8OID);
	values[10] = Int64GetDatum((int64) GetSystemIdentifier());
	values[11] = ObjectIdGetDatum(MyDatabaseId);
	spi_connect_checked();
	nest_level = plan_by_index();
	spi_check(SPI_execute_plan(spi_kept_plan(&move_plan, move_cursors_sql, 12, types, 0),
							   values, NULL, false, 0),
			  SPI_OK_SELECT, false, "moving the log's cursors");
	AtEOXact_GUC(true, nest_level);
	return hooks_of_result(cxt, moved);
}

/*
 * The n requests reqs, read from the log and let go of unsent, become
 * pending deliveries (of the hooks that still exist), due now, each in its
 * group (of an ordered hook: behind the unfinished ones of its group, as
 * FRESH_IN_ORDER's that wait).  Caller is in a transaction.
 */
void
queue_hand_over(Attempt **reqs, int n)
{
	Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[2];
	Datum	   *events = palloc(sizeof(Datum) * n);
	Datum	   *hooks = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
	{
		events[i] = Int64GetDatum(reqs[i]->event_id);
		hooks[i] = Int64GetDatum(reqs[i]->hook_id);
	}
	values[0] = array_of(events, NULL, n, INT8OID);
	values[1] = array_of(hooks, NULL, n, INT8OID);
	spi_connect_checked();
	spi_check(SPI_execute_plan(spi_kept_plan(&hand_over_plan,
											 "INSERT INTO webhook.delivery"
											 " (event_id, hook_id, next_attempt_at, resource_key)"
											 " SELECT r.event_id, r.hook_id, pg_catalog.now(),"
											 "        " RESOURCE_KEY_OF("h.ordered", "r.event_id")
											 "   FROM ROWS FROM (pg_catalog.unnest($1::bigint[]),"
											 "                   pg_catalog.unnest($2::bigint[]))"
											 "        AS r(event_id, hook_id)"
											 "   JOIN webhook.hook h ON h.id = r.hook_id",
											 2, types, 0),
							   values, NULL, false, 0),
			  SPI_OK_INSERT, false, "handing requests over to the queue");
	SPI_finish();
}

/*
 * Drop the previous secrets whose overlap is over, of the hooks of this
 * worker's transports (expire_sql).
 */
void
queue_expire_secrets(void)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];

	spi_connect_checked();
	values[0] = Int64GetDatum(partition_n_workers);
	values[1] = Int64GetDatum(partition_index);
	spi_check(SPI_execute_plan(spi_kept_plan(&expire_plan, expire_sql, 2, types, 0),
							   values, NULL, false, 0),
			  SPI_OK_UPDATE, false, "dropping expired secrets");
	SPI_finish();
}

/* the types of the parameters of record_sql, each an array */
static Oid	record_arg_types[RECORD_ARGS] = {INT8ARRAYOID, INT4ARRAYOID,
	TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	JSONBARRAYOID, TEXTARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID, BOOLARRAYOID,
BOOLARRAYOID, INT8ARRAYOID, INT8ARRAYOID, BOOLARRAYOID};

/* The parameters of record_sql (RECORD_INPUT) for the n attempts reqs. */
static void
record_args(Attempt **reqs, int n, Datum *values)
{
	Oid			types[RECORD_ARGS] = {INT8OID, INT4OID, TIMESTAMPTZOID, FLOAT8OID,
		TEXTOID, INT4OID, JSONBOID, TEXTOID, TEXTOID, FLOAT8OID, BOOLOID, BOOLOID,
	INT8OID, INT8OID, BOOLOID};
	Datum	   *cols[RECORD_ARGS];
	bool	   *nulls[RECORD_ARGS];
	int			i;
	int			c;

	for (c = 0; c < RECORD_ARGS; c++)
	{
		cols[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	for (i = 0; i < n; i++)
	{
		Attempt    *req = reqs[i];

		cols[0][i] = Int64GetDatum(req->delivery_id);
		cols[1][i] = Int32GetDatum(req->attempt_no);
		cols[2][i] = TimestampTzGetDatum(req->started_at);
		cols[3][i] = Float8GetDatum(req->duration_ms);
		cols[4][i] = CStringGetTextDatum(req->log_url);
		cols[5][i] = Int32GetDatum(req->status);
		nulls[5][i] = (req->status == 0);
		if (req->status != 0)
			cols[6][i] = attempt_response_headers(req);
		else
			nulls[6][i] = true;
		cols[7][i] = req->status != 0
			? PointerGetDatum(cstring_to_text_with_len(req->response_body.data,
													   req->response_body.len))
			: (Datum) 0;
		nulls[7][i] = (req->status == 0);
		cols[8][i] = text_or_null(req->error, &nulls[8][i]);
		cols[9][i] = Float8GetDatum(req->retry_after);
		nulls[9][i] = (req->retry_after < 0);
		cols[10][i] = BoolGetDatum(req->timed_out);
		cols[11][i] = BoolGetDatum(req->final);
		cols[12][i] = Int64GetDatum(req->event_id);
		cols[13][i] = Int64GetDatum(req->hook_id);
		cols[14][i] = BoolGetDatum(req->ended_early);
	}
	for (c = 0; c < RECORD_ARGS; c++)
		values[c] = array_of(cols[c], nulls[c], n, types[c]);
}

/* the histogram's bounds, in milliseconds */
#define BOUND_MS(ms) ms,
static const double duration_bounds_ms[] = {DURATION_BOUNDS_MS(BOUND_MS)};

StaticAssertDecl(lengthof(duration_bounds_ms) + 1 == N_BUCKETS,
				 "a bucket per bound, and the count");

/*
 * Record the n attempts reqs, all read from the log and answered with a
 * 2xx at their first attempt: their hooks' counters, counted here
 * (hook_counters.c; with record_read_sql when it cannot), and their
 * attempt rows, of the hooks that still exist (attempt_log.c; with
 * record_attempts_sql when it cannot).
 */
static void
record_read_batch(Attempt **reqs, int n)
{
	int64	   *hook_ids = palloc(sizeof(int64) * n);
	int64	   *successes = palloc0(sizeof(int64) * n);
	double	   *duration_sums = palloc0(sizeof(double) * n);
	int64	   *buckets = palloc0(sizeof(int64) * n * N_BUCKETS);
	int		   *hook_of = palloc(sizeof(int) * n);
	bool	   *keep = palloc0(sizeof(bool) * n);
	Attempt   **kept;
	bool	   *exists;
	int			n_hooks = 0;
	Oid			types[READ_BATCH_ARGS] = {INT8ARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID,
	INT8ARRAYOID};
	Datum		values[Max(READ_BATCH_ARGS, RECORD_ARGS)];
	Datum	   *elems[READ_BATCH_ARGS];
	bool		isnull;
	int			slot = -1;
	int			i;
	int			h;
	uint64		r;

	/* the counters of each hook of the batch (a batch has a few) */
	for (i = 0; i < n; i++)
	{
		Attempt    *req = reqs[i];
		int			b;

		for (h = 0; h < n_hooks && hook_ids[h] != req->hook_id; h++)
			;
		if (h == n_hooks)
			hook_ids[n_hooks++] = req->hook_id;
		hook_of[i] = h;
		successes[h]++;
		duration_sums[h] += req->duration_ms / 1000;
		for (b = 0; b < N_BUCKETS; b++)
			if (b == N_BUCKETS - 1 || req->duration_ms <= duration_bounds_ms[b])
				buckets[h * N_BUCKETS + b]++;
	}
	spi_connect_checked();
	exists = palloc0(sizeof(bool) * n_hooks);
	/* the counters without a statement, when they may be (hook_counters.c) */
	if (!hook_counters_add(n_hooks, hook_ids, successes, duration_sums, buckets, N_BUCKETS,
						   exists, &slot))
	{
		/* the statement tells which exist, as it sees them */
		memset(exists, 0, sizeof(bool) * n_hooks);
		for (i = 0; i < READ_BATCH_ARGS; i++)
			elems[i] = palloc(sizeof(Datum) * n_hooks * (i == 3 ? N_BUCKETS : 1));
		for (h = 0; h < n_hooks; h++)
		{
			elems[0][h] = Int64GetDatum(hook_ids[h]);
			elems[1][h] = Int64GetDatum(successes[h]);
			elems[2][h] = Float8GetDatum(duration_sums[h]);
		}
		for (i = 0; i < n_hooks * N_BUCKETS; i++)
			elems[3][i] = Int64GetDatum(buckets[i]);
		values[0] = array_of(elems[0], NULL, n_hooks, INT8OID);
		values[1] = array_of(elems[1], NULL, n_hooks, INT8OID);
		values[2] = array_of(elems[2], NULL, n_hooks, FLOAT8OID);
		values[3] = array_of(elems[3], NULL, n_hooks * N_BUCKETS, INT8OID);
		spi_check(SPI_execute_plan(spi_kept_plan(&record_read_plan, record_read_sql,
												 READ_BATCH_ARGS, types, 0),
								   values, NULL, false, 0),
				  SPI_OK_SELECT, false, "recording attempts");
		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			int64		hook_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1,
															  &isnull));
			Datum		current = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);

			slot = isnull ? -1 : DatumGetInt16(current);
			for (h = 0; h < n_hooks; h++)
				exists[h] |= hook_ids[h] == hook_id;
		}
	}
	for (i = 0; i < n; i++)
		keep[i] = exists[hook_of[i]];
	for (h = 0; h < n_hooks && !exists[h]; h++)
		;

	/* none of their hooks exists any more, or their rows are appended */
	if (h == n_hooks || (slot >= 0 && attempt_log_append(reqs, n, keep, slot)))
	{
		SPI_finish();
		return;
	}
	/* by statement: the attempts of the hooks whose counters were kept */
	kept = palloc(sizeof(Attempt *) * n);
	for (i = 0, h = 0; i < n; i++)
		if (keep[i])
			kept[h++] = reqs[i];
	record_args(kept, h, values);
	spi_check(SPI_execute_plan(spi_kept_plan(&record_attempts_plan, record_attempts_sql,
											 RECORD_ARGS, record_arg_types, 0),
							   values, NULL, false, 0),
			  SPI_OK_INSERT, false, "recording attempts");
	SPI_finish();
}

/*
 * Record the outcome of the n attempts reqs, and move their deliveries on,
 * or make them, for those read from the log (record_read_batch() when
 * every one was answered with a 2xx and none has a row, record_succeeded_sql
 * when they were all answered so, else record_sql).  After a 410 the
 * hook's other deliveries are cancelled, but for the n_sent of sent_ids,
 * being sent.  The attempts are left as they are; the caller
 * frees them.  Sets *retries (in the caller's memory context) to when the
 * earliest retry it scheduled for each hook is due, and returns how many.
 */
int
queue_record(Attempt **reqs, int n, Datum *sent_ids, int n_sent, QueueRetry **retries)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	uint64		r;
	int			n_retries;
	Datum		values[RECORD_ARGS];
	Datum	   *gone = palloc(sizeof(Datum) * n);
	int			n_gone = 0;
	bool		all_succeeded = true;
	bool		all_read = true;	/* from the log: none has a row */
	int			i;
	bool		isnull;

	for (i = 0; i < n; i++)
	{
		if (reqs[i]->status < 200 || reqs[i]->status > 299)
			all_succeeded = false;
		if (reqs[i]->delivery_id != 0)
			all_read = false;
		if (reqs[i]->status == 410)
			gone[n_gone++] = Int64GetDatum(reqs[i]->hook_id);
	}
	if (all_succeeded && all_read)
	{
		record_read_batch(reqs, n);
		*retries = MemoryContextAlloc(caller_cxt, sizeof(QueueRetry));
		return 0;
	}

	spi_connect_checked();
	record_args(reqs, n, values);
	spi_check(SPI_execute_plan(all_succeeded
							   ? spi_kept_plan(&record_succeeded_plan, record_succeeded_sql,
											   RECORD_ARGS, record_arg_types, 0)
							   : spi_kept_plan(&record_plan, record_sql, RECORD_ARGS,
											   record_arg_types, 0),
							   values, NULL, false, 0),
			  SPI_OK_SELECT, false, "recording attempts");
	n_retries = (int) SPI_processed;
	*retries = MemoryContextAlloc(caller_cxt, sizeof(QueueRetry) * Max(1, n_retries));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];

		(*retries)[r].hook_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		(*retries)[r].due = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	}

	if (n_gone > 0)
	{
		Oid			cancel_types[2] = {INT8ARRAYOID, INT8ARRAYOID};

		values[0] = array_of(gone, NULL, n_gone, INT8OID);
		values[1] = array_of(sent_ids, NULL, n_sent, INT8OID);
		spi_check(SPI_execute_plan(spi_kept_plan(&cancel_plan, cancel_sql, 2,
												 cancel_types, 0),
								   values, NULL, false, 0),
				  SPI_OK_UPDATE, false, "cancelling deliveries");
	}
	SPI_finish();
	return n_retries;
}

/*
 * The last resort for a request whose attempt cannot be recorded at all: no
 * attempt row, only its delivery moves on as after a failed attempt (due
 * again per its schedule, or dead, never if it was ended early, as in
 * record_sql), with why as its last error; one read
 * from the log gets its delivery row for that (req keeps none: the
 * transaction may still roll back, and the next try must make it again).
 * A death
 * stops an ordered hook with on_dead = 'stop', as in record_sql, and is
 * counted in webhook.hook_metrics; with no attempt row, no attempt is.
 */
void
queue_record_failure(Attempt *req, const char *why)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			types[5] = {INT8OID, INT4OID, INT4OID, TEXTOID, BOOLOID};
	int64		delivery_id = req->delivery_id;

	spi_connect_checked();

	/* read from the log: its delivery row first, if its hook still exists */
	if (req->delivery_id == 0)
	{
		Oid			made_types[2] = {INT8OID, INT8OID};
		Datum		made[2] = {Int64GetDatum(req->event_id), Int64GetDatum(req->hook_id)};
		bool		isnull;

		spi_check(SPI_execute_with_args("INSERT INTO webhook.delivery"
										" (event_id, hook_id, next_attempt_at, resource_key)"
										" SELECT $1, h.id, pg_catalog.now(),"
										"        " RESOURCE_KEY_OF("h.ordered", "$1")
										"   FROM webhook.hook h WHERE h.id = $2"
										" RETURNING id",
										2, made_types, made, NULL, false, 1),
				  SPI_OK_INSERT_RETURNING, false, "recording a failure");
		if (SPI_processed == 0)
		{
			SPI_finish();
			return;
		}
		delivery_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
	}
	values[0] = Int64GetDatum(delivery_id);
	values[1] = Int32GetDatum(req->attempt_no);
	values[2] = Int32GetDatum(req->status);
	nulls[2] = req->status == 0 ? 'n' : ' ';
	values[3] = CStringGetTextDatum(why);
	values[4] = BoolGetDatum(req->ended_early);

	spi_check(SPI_execute_with_args("WITH dead AS ("
									"UPDATE webhook.delivery d"
									"   SET state = f.state, attempts = $2, last_status = $3,"
									"       last_error = $4,"
									"       next_attempt_at = webhook_internal.next_attempt(f.step, NULL),"
									"       finished_at = CASE WHEN f.state = 'dead'"
									"                          THEN pg_catalog.now() END"
									"  FROM (SELECT h.id,"
									"               CASE WHEN t.tried > pg_catalog.cardinality(h.retry_schedule)"
									"                     AND NOT $5"
									"                    THEN 'dead' ELSE 'failed' END AS state,"
									"               coalesce(h.retry_schedule[CASE WHEN $5"
									"                   THEN LEAST(t.tried, pg_catalog.cardinality(h.retry_schedule))"
									"                   ELSE t.tried END], '1 min') AS step"
									"          FROM webhook.hook h,"
									"               (SELECT $2 - " ENDED_BEFORE("$1", "$3", "$2") " AS tried) t) f"
									" WHERE d.id = $1 AND d.attempts = $2 - 1 AND f.id = d.hook_id"
									" RETURNING d.hook_id, d.state"
									"), counted AS ("
									"INSERT INTO webhook.hook_metrics AS m (hook_id, deaths)"
									" SELECT dead.hook_id, 1 FROM dead WHERE dead.state = 'dead'"
									"    ON CONFLICT (hook_id) DO UPDATE SET deaths = m.deaths + 1"
									")"
									"UPDATE webhook.hook h"
									"   SET disabled_reason = " STOPPED_REASON("$1", "$3", "$4") ","
									"       updated_at = pg_catalog.now()"
									"  FROM dead"
									" WHERE h.id = dead.hook_id AND dead.state = 'dead'"
									"   AND h.active AND h.disabled_reason IS NULL"
									"   AND h.ordered <> 'none' AND h.on_dead = 'stop'"
									"   AND " HOOK_NOT_HELD("h.id"),
									5, types, values, nulls, false, 0),
			  SPI_OK_UPDATE, false, "recording a failure");
	SPI_finish();
}
