-- webhook install script, part 5: what the delivery worker reads and writes.
--
-- The worker's own statements (claim, record, recover) are in src/queue.c,
-- kept as prepared plans; these are the helpers they call.

-- The body of a request: the event rendered in the hook's payload format,
-- written as JSON text in C (src/render.c); the claim calls it with the
-- event's columns (src/queue.c; src/log_claim.c calls its C function).
-- STABLE: a time before year 1 or after 9999 is written by to_char.
CREATE OR REPLACE FUNCTION webhook_internal.render_body(
        format text, uid uuid, tenant text, event_type text, resource text,
        resource_id text, payload jsonb, previous jsonb, created_at timestamptz,
        hook_uid text)
    RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_render_body';
COMMENT ON FUNCTION webhook_internal.render_body(text, uuid, text, text, text, text, jsonb, jsonb,
                                                 timestamptz, text) IS
    'the request body of an event, given by its columns, in a payload format';
CREATE OR REPLACE FUNCTION webhook.render(format text, e webhook.event, hook_uid text)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT webhook_internal.render_body(format, e.uid, e.tenant, e.event_type, e.resource,
                                        e.resource_id, e.payload, e.previous, e.created_at,
                                        hook_uid)
$$;
COMMENT ON FUNCTION webhook.render(text, webhook.event, text) IS
    'the request body of an event in a payload format (standard, thin, envelope, row)';

-- When a failed attempt is tried again: the schedule's step with +-20 %
-- jitter, or a Retry-After of retry_after seconds, kept within one to two
-- steps.
CREATE OR REPLACE FUNCTION webhook_internal.next_attempt(step interval, retry_after double precision)
    RETURNS timestamptz
    LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.now() + CASE
        WHEN retry_after IS NULL THEN step * (0.8 + pg_catalog.random() * 0.4)
        ELSE LEAST(GREATEST(pg_catalog.make_interval(
                                secs => LEAST(retry_after, 2 * pg_catalog.date_part('epoch', step))),
                            step),
                   step * 2)
    END
$$;
COMMENT ON FUNCTION webhook_internal.next_attempt(interval, double precision) IS
    'when a failed attempt is tried again: the step with jitter, or Retry-After within bounds';

-- An event's weight in the claim, before its body is built (src/queue.c).
CREATE OR REPLACE FUNCTION webhook_internal.stored_bytes(value jsonb) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_stored_bytes';
COMMENT ON FUNCTION webhook_internal.stored_bytes(jsonb) IS
    'the size of a value uncompressed, read from its header without reading it whole';
CREATE OR REPLACE FUNCTION webhook_internal.rendered_bytes(value jsonb, cap bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_rendered_bytes';
COMMENT ON FUNCTION webhook_internal.rendered_bytes(jsonb, bigint) IS
    'about how many bytes a value takes as JSON text, counted without building it, up to past cap';

CREATE OR REPLACE FUNCTION webhook_internal.system_identifier() RETURNS bigint
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'webhook_system_identifier';
COMMENT ON FUNCTION webhook_internal.system_identifier() IS
    'the cluster''s system identifier (pg_control_system()), read from memory';

-- The statement's snapshot, as a cursor must see it from inside the
-- calling transaction: its own id (when it has one, and the snapshot would
-- show it committed, as pg_current_snapshot() shows every id below xmax
-- but those of others' transactions in progress) in progress, so that what
-- the same transaction writes afterwards is still read once it commits.
CREATE OR REPLACE FUNCTION webhook_internal.snapshot_now() RETURNS pg_catalog.pg_snapshot
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN v.x IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(v.x, v.s) THEN v.s
           ELSE (LEAST(pg_catalog.pg_snapshot_xmin(v.s), v.x)::text || ':'
                 || pg_catalog.pg_snapshot_xmax(v.s)::text || ':'
                 || pg_catalog.array_to_string(ARRAY(
                        SELECT y.xid FROM pg_catalog.pg_snapshot_xip(v.s) AS y(xid)
                        UNION SELECT v.x ORDER BY 1), ','))::pg_catalog.pg_snapshot
           END
      FROM (SELECT pg_catalog.pg_current_snapshot() AS s,
                   pg_catalog.pg_current_xact_id_if_assigned() AS x) v
$$;
COMMENT ON FUNCTION webhook_internal.snapshot_now() IS
    'pg_current_snapshot(), with the calling transaction''s own id in progress';
REVOKE EXECUTE ON FUNCTION webhook_internal.snapshot_now() FROM PUBLIC;

-- The spill: every event some hook's cursor has not read becomes its
-- pending delivery (a hook made inactive since keeps its delivery, as one
-- the claim made), due now, and every cursor moves to the statement's
-- snapshot, whole (src/sql/catalog/20_tables.sql): what the worker's claim
-- does a room at a time (src/queue.c, FRESH), at once.  For tests and for
-- whoever must see the deliveries of what committed before, and for the worker
-- once a restore has brought cursors moved last in another database or
-- cluster, which the claim leaves alone.  A cursor of another cluster,
-- whose transaction ids the snapshots' and the restored events' are not,
-- has not read what came after its top_id either (this database's own
-- events, written since the restore); then every event the statement sees
-- forgets its transaction and hooks (txid NULL: read by every cursor), once,
-- so that no foreign id is ever compared with this cluster's snapshots.
-- A delivery of the event to the hook that exists already (a row, or an
-- attempt: a success at the first attempt has no row) is not made again.
--
-- Every cursor is locked; with wait, a spill waits for one another
-- transaction holds (a claim's, a moment), else it does nothing.  Returns
-- the hooks that got deliveries: the worker wakes theirs.  READ COMMITTED
-- callers only (each statement its own snapshot); in a transaction with a
-- snapshot of its own, nothing is spilled.
CREATE OR REPLACE FUNCTION webhook_internal.spill(wait boolean DEFAULT false) RETURNS bigint[]
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    here bigint := webhook_internal.system_identifier();
    db oid;
    foreign_cluster boolean;
    hooks bigint[];
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN '{}';
    END IF;
    SELECT d.oid INTO db FROM pg_catalog.pg_database d
     WHERE d.datname = pg_catalog.current_database();
    -- a cursor for every hook, so that the statement below moves them all
    INSERT INTO webhook_internal.cursor AS x
           (hook_id, lo, hi, top_id, system_identifier, database)
    SELECT h.id, '1:1:', '1:1:', 0, here, db FROM webhook.hook h
    ON CONFLICT (hook_id) DO NOTHING;
    IF wait THEN
        PERFORM FROM webhook_internal.cursor x FOR NO KEY UPDATE;
    ELSIF EXISTS (SELECT FROM webhook_internal.cursor x
                   WHERE x.hook_id NOT IN (SELECT y.hook_id FROM webhook_internal.cursor y
                                            FOR NO KEY UPDATE SKIP LOCKED)) THEN
        RETURN '{}';
    END IF;
    foreign_cluster := EXISTS (SELECT FROM webhook_internal.cursor x
                                WHERE x.system_identifier <> here);
    -- the deliveries are due when inserted, after this transaction took
    -- its id (src/queue.c, floors)
    PERFORM pg_catalog.pg_current_xact_id();
    WITH unread AS (
        SELECT e.id, e.resource_id, c.hook_id FROM webhook.event e
          CROSS JOIN LATERAL pg_catalog.unnest(e.hook_ids) AS u(hook_id)
          JOIN webhook_internal.cursor c ON c.hook_id = u.hook_id
         WHERE e.txid IS NOT NULL
           AND ((c.system_identifier <> here AND e.id > c.top_id)
                OR NOT (pg_catalog.pg_visible_in_snapshot(e.txid, c.lo)
                        OR (pg_catalog.pg_visible_in_snapshot(e.txid, c.hi)
                            AND (e.txid, e.id) <= (c.last_txid, c.last_id))))
    ), made AS (
        INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at, resource_key)
        SELECT r.id, r.hook_id, pg_catalog.clock_timestamp(),
               CASE WHEN h.ordered = 'resource' THEN webhook_internal.resource_key(r.resource_id) END
          FROM unread r
          JOIN webhook.hook h ON h.id = r.hook_id
         WHERE NOT EXISTS (SELECT FROM webhook.delivery d
                            WHERE d.event_id = r.id AND d.hook_id = r.hook_id)
           AND NOT EXISTS (SELECT FROM webhook.attempt a
                            WHERE a.event_id = r.id AND a.hook_id = r.hook_id)
         ORDER BY r.id
        RETURNING hook_id
    ), forgotten AS (
        UPDATE webhook.event e SET txid = NULL, hook_ids = NULL, next_txid = NULL
         WHERE foreign_cluster AND e.txid IS NOT NULL
    ), moved AS (
        UPDATE webhook_internal.cursor x
           SET lo = webhook_internal.snapshot_now(), hi = webhook_internal.snapshot_now(),
               last_txid = NULL, last_id = NULL,
               top_id = coalesce((SELECT pg_catalog.max(e.id) FROM webhook.event e), 0),
               system_identifier = here, database = db
    )
    SELECT pg_catalog.array_agg(DISTINCT m.hook_id) INTO hooks FROM made m;
    RETURN coalesce(hooks, '{}');
END
$$;
COMMENT ON FUNCTION webhook_internal.spill(boolean) IS
    'make every event a hook''s cursor has not read its pending delivery, and move every cursor to now; returns the hooks that got some';
REVOKE EXECUTE ON FUNCTION webhook_internal.spill(boolean) FROM PUBLIC;


-- The hook's cursor to now: it has read every event committed so far
-- (those it has not are skipped), for a new hook and for one re-enabled
-- with resume => 'now'.  Waits for a claim that holds it, a moment.
CREATE OR REPLACE FUNCTION webhook_internal.cursor_to_now(hook_id bigint) RETURNS void
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO webhook_internal.cursor AS x
           (hook_id, lo, hi, top_id, system_identifier, database)
    SELECT cursor_to_now.hook_id, webhook_internal.snapshot_now(),
           webhook_internal.snapshot_now(),
           coalesce((SELECT pg_catalog.max(e.id) FROM webhook.event e), 0),
           webhook_internal.system_identifier(), d.oid
      FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
    ON CONFLICT (hook_id) DO UPDATE
       SET lo = excluded.lo, hi = excluded.hi, last_txid = NULL, last_id = NULL,
           top_id = excluded.top_id, system_identifier = excluded.system_identifier,
           database = excluded.database
$$;
COMMENT ON FUNCTION webhook_internal.cursor_to_now(bigint) IS
    'move the hook''s cursor past every event committed so far';
REVOKE EXECUTE ON FUNCTION webhook_internal.cursor_to_now(bigint) FROM PUBLIC;
