-- webhook install script, part 5: what the delivery worker reads and writes.
--
-- The worker's own statements (claim, record, recover) are in src/queue.c,
-- kept as prepared plans; these are the helpers they call.

-- STABLE as its body is (to_char): an IMMUTABLE label would keep it from
-- being inlined, and it would be parsed for every batch of the worker.
CREATE OR REPLACE FUNCTION webhook_internal.iso8601(ts timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The body of a request: the event rendered in the hook's payload format.
CREATE OR REPLACE FUNCTION webhook.render(format text, e webhook.event, hook_uid text)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE format
        WHEN 'standard' THEN
            (pg_catalog.jsonb_build_object(
                'type', e.event_type,
                'timestamp', webhook_internal.iso8601(e.created_at),
                'data', e.payload)
             || CASE WHEN e.previous IS NULL THEN '{}'::jsonb
                     ELSE pg_catalog.jsonb_build_object('previous', e.previous) END)::text
        WHEN 'thin' THEN
            pg_catalog.jsonb_build_object('resourceId', e.resource_id,
                                          'eventType', e.event_type)::text
        WHEN 'envelope' THEN
            pg_catalog.jsonb_build_object(
                'id', e.uid,
                'eventType', e.event_type,
                'hookId', hook_uid,
                'tenant', e.tenant,
                'createdAt', webhook_internal.iso8601(e.created_at),
                'resource', '/' || e.resource,
                'resourceId', e.resource_id,
                'links', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'href', '/' || e.resource || '/' || e.resource_id,
                    'method', 'GET',
                    'rel', 'resource')))::text
        ELSE e.payload::text
    END
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
COMMENT ON FUNCTION webhook_internal.iso8601(timestamptz) IS
    'a timestamp as ISO-8601 in UTC with milliseconds, as payloads carry it';
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

-- The spill: the log's events that committed since the last spill become
-- pending deliveries, one for each of their hook_ids that still exists
-- (a hook made inactive since keeps its delivery, as when the writer made
-- it), each due when it is inserted (after this transaction took its id:
-- src/queue.c, floors).  PgQ's batches, bounded by snapshots: an event is
-- spilled once the statement's snapshot shows its transaction committed
-- and the position's did not (or its id is past the position's last_id),
-- so that a writer that began early and committed late is never skipped,
-- and a rolled back one never seen.  The position then moves to the
-- statement's snapshot and the largest event id it shows, in the same
-- statement: the deliveries and the position commit together.
--
-- One spill at a time: the position's row is locked, and a spill that
-- finds it locked (another is under way) does nothing, or, with wait,
-- waits for it and then spills what is left (tests, and whoever must see
-- the deliveries of what committed before).  A restore leaves two rows,
-- the script's (which a spill during the restore may have moved past
-- events whose hooks were not restored yet) and the dumped one, another
-- database's: the dumped one is kept (of several, the one with the
-- largest last_id).  After a restore into another cluster, whose
-- transaction ids the restored events' and the position's are not, the
-- first spill makes what the dumped position says is left, then forgets
-- the transaction of every event it can see (txid NULL), once, so that no
-- foreign id is ever compared with this cluster's snapshots.
--
-- A delivery of the event to the hook that exists already is not made
-- again: a spill under way while a dump is restored (the delivery rows come
-- before the events, the position after them) makes none of the restored
-- deliveries twice.
--
-- Returns the hooks that got deliveries: the worker wakes theirs.
-- READ COMMITTED callers only (each statement its own snapshot); in a
-- transaction with a snapshot of its own, nothing is spilled.
CREATE OR REPLACE FUNCTION webhook_internal.system_identifier() RETURNS bigint
    LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'webhook_system_identifier';
COMMENT ON FUNCTION webhook_internal.system_identifier() IS
    'the cluster''s system identifier (pg_control_system()), read from memory';

CREATE OR REPLACE FUNCTION webhook_internal.spill(wait boolean DEFAULT false) RETURNS bigint[]
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    here bigint := webhook_internal.system_identifier();
    db oid;
    snap pg_snapshot;
    ids bigint[];
    top bigint;
    hooks bigint[];
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN '{}';
    END IF;
    SELECT d.oid INTO db FROM pg_catalog.pg_database d
     WHERE d.datname = pg_catalog.current_database();
    IF (SELECT pg_catalog.count(*) FROM webhook_internal.spill_position) > 1 THEN
        LOCK TABLE webhook_internal.spill_position IN SHARE ROW EXCLUSIVE MODE;
        DELETE FROM webhook_internal.spill_position x
         WHERE x.ctid <> (SELECT y.ctid FROM webhook_internal.spill_position y
                           ORDER BY (y.system_identifier, y.database) = (here, db),
                                    y.last_id DESC
                           LIMIT 1);
    END IF;
    IF wait THEN
        SELECT x.ctid, x.snapshot, x.last_id, x.system_identifier INTO p
          FROM webhook_internal.spill_position x FOR UPDATE;
    ELSE
        SELECT x.ctid, x.snapshot, x.last_id, x.system_identifier INTO p
          FROM webhook_internal.spill_position x FOR UPDATE SKIP LOCKED;
    END IF;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;

    IF p.system_identifier = here THEN
        -- What is left, and the snapshot it was read in, in one statement,
        -- by two index scans (as src/queue.c's spill_sql)
        SELECT pg_catalog.pg_current_snapshot(), pg_catalog.array_agg(l.id ORDER BY l.id),
               (SELECT pg_catalog.max(e.id) FROM webhook.event e)
          INTO snap, ids, top
          FROM (SELECT e.id FROM webhook.event e
                 WHERE e.id > p.last_id AND e.txid IS NOT NULL
                UNION
                SELECT e.id FROM webhook.event e
                 WHERE e.txid >= pg_catalog.pg_snapshot_xmin(p.snapshot)
                   AND NOT pg_catalog.pg_visible_in_snapshot(e.txid, p.snapshot)) l;
        IF ids IS NULL THEN
            RETURN '{}';        -- nothing written: the position stays
        END IF;
        -- the deliveries are due when inserted, after this transaction took
        -- its id (src/queue.c, floors)
        PERFORM pg_catalog.pg_current_xact_id();
        WITH made AS (
            INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at)
            SELECT e.id, h.id, pg_catalog.clock_timestamp()
              FROM webhook.event e
              CROSS JOIN LATERAL pg_catalog.unnest(e.hook_ids) AS u(hook_id)
              JOIN webhook.hook h ON h.id = u.hook_id
             WHERE e.id = ANY (ids)
               AND NOT EXISTS (SELECT FROM webhook.delivery d
                                WHERE d.event_id = e.id AND d.hook_id = h.id)
             ORDER BY e.id
            RETURNING hook_id
        )
        SELECT pg_catalog.array_agg(DISTINCT m.hook_id) INTO hooks FROM made m;
        UPDATE webhook_internal.spill_position x
           SET snapshot = snap, last_id = GREATEST(x.last_id, coalesce(top, 0)), database = db
         WHERE x.ctid = p.ctid;
        RETURN coalesce(hooks, '{}');
    END IF;

    -- Restored from another cluster: what the restored position says is
    -- left, then every event seen forgets its transaction, in the same
    -- statement (one snapshot).
    PERFORM pg_catalog.pg_current_xact_id();
    WITH spilled AS (
        SELECT e.id, e.hook_ids FROM webhook.event e
         WHERE e.txid IS NOT NULL
           AND (e.id > p.last_id
                OR (e.txid >= pg_catalog.pg_snapshot_xmin(p.snapshot)
                    AND NOT pg_catalog.pg_visible_in_snapshot(e.txid, p.snapshot)))
    ), made AS (
        INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at)
        SELECT s.id, h.id, pg_catalog.clock_timestamp()
          FROM spilled s
          CROSS JOIN LATERAL pg_catalog.unnest(s.hook_ids) AS u(hook_id)
          JOIN webhook.hook h ON h.id = u.hook_id
         WHERE NOT EXISTS (SELECT FROM webhook.delivery d
                            WHERE d.event_id = s.id AND d.hook_id = h.id)
         ORDER BY s.id
        RETURNING hook_id
    ), forgotten AS (
        UPDATE webhook.event e SET txid = NULL WHERE e.txid IS NOT NULL
    ), moved AS (
        UPDATE webhook_internal.spill_position x
           SET snapshot = pg_catalog.pg_current_snapshot(),
               last_id = GREATEST(x.last_id,
                                  coalesce((SELECT pg_catalog.max(e.id) FROM webhook.event e), 0)),
               system_identifier = here, database = db
         WHERE x.ctid = p.ctid
    )
    SELECT pg_catalog.array_agg(DISTINCT m.hook_id) INTO hooks FROM made m;
    RETURN coalesce(hooks, '{}');
END
$$;
COMMENT ON FUNCTION webhook_internal.spill(boolean) IS
    'make the log''s events committed since the last spill into pending deliveries; returns the hooks that got some';
REVOKE EXECUTE ON FUNCTION webhook_internal.spill(boolean) FROM PUBLIC;
