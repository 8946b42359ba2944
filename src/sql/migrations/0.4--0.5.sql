-- webhook upgrade from 0.4 to 0.5: the migration of the state.  The code
-- (src/sql/code) follows it in the upgrade script and replaces every
-- function, view, trigger and policy; what the code no longer makes, or
-- makes with another signature, is dropped here first.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.5'" to load this file. \quit

-- pg_dump keeps the work not yet done: the unfinished deliveries, their
-- attempts and events, and the ids' sequences (as src/sql/catalog/20_tables.sql
-- registers them, condition for condition; the attempts' below, with
-- their slots).
SELECT pg_catalog.pg_extension_config_dump('webhook.delivery',
    'WHERE delivery.state IN (''pending'', ''failed'')');
SELECT pg_catalog.pg_extension_config_dump('webhook.delivery_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('webhook.event_id_seq', '');

-- The attempt log goes by whole slots, partitions of webhook.attempt
-- (src/sql/catalog/20_tables.sql).  First: its reads of the attempts (a
-- CHECK, an index) take long on a long log, and the writers do not wait
-- for them, as they wait for what follows (webhook.event and
-- webhook.delivery stay locked from their first change to the commit).
-- 0.4's table, with every attempt made until now, becomes slot 0, as if it
-- had stopped being current now: it is emptied once webhook.retention has
-- passed; the worker records in slot 1 from now on.  No row is written or
-- moved: the table gets the slot column (its default, 0, is kept in the
-- catalog, not written into the rows), event_id and hook_id (NULL in its
-- rows: each has its delivery row, which the views read them from) and a
-- CHECK that every row is of slot 0, which one read of the table
-- validates, and which spares the ATTACH another; the index by event
-- reads it once more.  The table stays locked (ACCESS EXCLUSIVE) until
-- the update commits; nothing but the views reads it (the worker waits
-- for the update, and the capture trigger never reads nor writes it).
-- Its policies and grants go (those of webhook.attempt apply to its
-- slots); its registration for pg_dump is made again with its new name.
DROP POLICY admins ON webhook.attempt;
DROP POLICY tenants ON webhook.attempt;
REVOKE ALL ON webhook.attempt FROM PUBLIC, webhook_admin, webhook_tenant;
ALTER TABLE webhook.attempt RENAME TO attempt_0;
ALTER TABLE webhook.attempt_0 SET SCHEMA webhook_internal;
ALTER INDEX webhook_internal.attempt_pkey RENAME TO attempt_0_pkey;
ALTER TABLE webhook_internal.attempt_0
    ADD COLUMN slot smallint NOT NULL DEFAULT 0,
    ADD COLUMN event_id bigint,
    ADD COLUMN hook_id bigint,
    ADD CONSTRAINT attempt_0_slot CHECK (slot = 0);
COMMENT ON TABLE webhook_internal.attempt_0 IS 'slot 0 of webhook.attempt';

CREATE TABLE webhook_internal.log_slot (
    slot           smallint PRIMARY KEY,
    current_from   timestamptz,
    current_until  timestamptz,
    CHECK (current_until IS NULL OR current_from IS NOT NULL)
);
CREATE UNIQUE INDEX log_slot_current_idx ON webhook_internal.log_slot ((true))
    WHERE current_from IS NOT NULL AND current_until IS NULL;
INSERT INTO webhook_internal.log_slot (slot, current_from, current_until)
VALUES (0, pg_catalog.now(), pg_catalog.now()), (1, pg_catalog.now(), NULL), (2, NULL, NULL),
       (3, NULL, NULL);
COMMENT ON TABLE webhook_internal.log_slot IS
    'the slots of webhook.attempt and webhook.event: the current one, when each was current';

CREATE FUNCTION webhook_internal.current_log_slot() RETURNS smallint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT s.slot FROM webhook_internal.log_slot s
           WHERE s.current_from IS NOT NULL AND s.current_until IS NULL $$;
COMMENT ON FUNCTION webhook_internal.current_log_slot() IS
    'the slot of webhook.attempt and webhook.event that attempts and events are written in now';

CREATE TABLE webhook.attempt (
    delivery_id       bigint NOT NULL,
    attempt_no        integer NOT NULL,
    started_at        timestamptz NOT NULL,
    duration_ms       double precision,
    url               text NOT NULL,
    status_code       integer,
    response_headers  jsonb,
    response_body     text,
    error             text,
    slot              smallint NOT NULL DEFAULT webhook_internal.current_log_slot(),
    event_id          bigint,
    hook_id           bigint
) PARTITION BY LIST (slot);
ALTER TABLE webhook.attempt ATTACH PARTITION webhook_internal.attempt_0 FOR VALUES IN (0);
ALTER TABLE webhook_internal.attempt_0
    DROP CONSTRAINT attempt_0_slot,
    ALTER slot SET DEFAULT webhook_internal.current_log_slot();
DO $$
BEGIN
    FOR s IN 1..3 LOOP
        EXECUTE format('CREATE TABLE webhook_internal.attempt_%s PARTITION OF webhook.attempt'
                       ' (PRIMARY KEY (delivery_id, attempt_no)) FOR VALUES IN (%s)', s, s);
        EXECUTE format('COMMENT ON TABLE webhook_internal.attempt_%s IS %L',
                       s, format('slot %s of webhook.attempt', s));
        EXECUTE format('ALTER TABLE webhook_internal.attempt_%s ENABLE ROW LEVEL SECURITY', s);
    END LOOP;
    FOR s IN 0..3 LOOP
        PERFORM pg_catalog.pg_extension_config_dump(
            format('webhook_internal.attempt_%s', s)::regclass,
            format('WHERE EXISTS (SELECT 1 FROM webhook.delivery d'
                   ' WHERE d.id = attempt_%s.delivery_id AND d.state IN (''pending'', ''failed''))', s));
    END LOOP;
END
$$;
CREATE INDEX attempt_event_idx ON webhook.attempt (event_id);
COMMENT ON TABLE webhook.attempt IS 'one HTTP request of a delivery';
ALTER TABLE webhook.attempt ENABLE ROW LEVEL SECURITY;

-- The writer appends the event with its transaction and the hooks it
-- goes to, ordered or not, which read it through their cursors
-- (src/sql/catalog/20_tables.sql).
-- Every event logged until now has its deliveries: each hook's cursor
-- starts now (the columns are added without a rewrite; the table stays
-- locked, and the writers wait, until the update commits).
ALTER TABLE webhook.event ADD COLUMN txid xid8, ADD COLUMN hook_ids bigint[],
                          ADD COLUMN next_txid xid8;
CREATE INDEX event_log_idx ON webhook.event (tenant, txid, id) WHERE txid IS NOT NULL;
-- The event log goes by whole slots too, the attempts' (above): 0.4's
-- table, with its rows, is slot 0, which stopped being current now; the
-- writers write slot 1 from now on, a table that inherits it, as slots 2
-- and 3 do (made empty: nothing is read or moved).
DO $$
BEGIN
    FOR s IN 1..3 LOOP
        EXECUTE format('CREATE TABLE webhook_internal.event_%s (PRIMARY KEY (id))'
                       ' INHERITS (webhook.event)', s);
        EXECUTE format('CREATE INDEX ON webhook_internal.event_%s USING brin (created_at)', s);
        EXECUTE format('CREATE INDEX event_%s_log_idx ON webhook_internal.event_%s (tenant, txid, id)'
                       ' WHERE txid IS NOT NULL', s, s);
        EXECUTE format('COMMENT ON TABLE webhook_internal.event_%s IS %L',
                       s, format('slot %s of webhook.event', s));
        EXECUTE format('ALTER TABLE webhook_internal.event_%s ENABLE ROW LEVEL SECURITY', s);
    END LOOP;
END
$$;
-- An ordered => 'resource' hook's deliveries carry their event's
-- resource_id (its first 200 characters: src/sql/catalog/20_tables.sql;
-- webhook_internal.resource_key(), of the code that follows, cuts it so),
-- which the claim probes for the earliest of each resource; those waiting
-- now get theirs.
ALTER TABLE webhook.delivery ADD COLUMN resource_key text;
UPDATE webhook.delivery d SET resource_key = left(e.resource_id, 200)
  FROM webhook.event e, webhook.hook h
 WHERE e.id = d.event_id AND h.id = d.hook_id AND h.ordered = 'resource'
   AND d.state IN ('pending', 'failed');
CREATE INDEX delivery_resource_idx ON webhook.delivery (hook_id, resource_key, event_id, id)
    WHERE state IN ('pending', 'failed');
CREATE TABLE webhook_internal.cursor (
    hook_id            bigint PRIMARY KEY,
    lo                 pg_snapshot NOT NULL,
    hi                 pg_snapshot NOT NULL,
    last_txid          xid8,
    last_id            bigint,
    top_id             bigint NOT NULL,
    system_identifier  bigint NOT NULL,
    database           oid NOT NULL
);
COMMENT ON TABLE webhook_internal.cursor IS
    'how far each unordered hook has read the log';
INSERT INTO webhook_internal.cursor (hook_id, lo, hi, top_id, system_identifier, database)
SELECT h.id, pg_catalog.pg_current_snapshot(), pg_catalog.pg_current_snapshot(),
       coalesce((SELECT max(e.id) FROM webhook.event e), 0), c.system_identifier, d.oid
  FROM webhook.hook h, pg_catalog.pg_control_system() c, pg_catalog.pg_database d
 WHERE d.datname = pg_catalog.current_database();
SELECT pg_catalog.pg_extension_config_dump('webhook.event',
    'WHERE EXISTS (SELECT 1 FROM webhook.delivery d WHERE d.event_id = event.id'
    ' AND d.state IN (''pending'', ''failed''))'
    ' OR (event.txid IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.unnest(event.hook_ids) u(h)'
    ' WHERE EXISTS (SELECT 1 FROM webhook.hook h WHERE h.id = u.h)'
    ' AND NOT EXISTS (SELECT 1 FROM webhook_internal.cursor c WHERE c.hook_id = u.h'
    ' AND (pg_catalog.pg_visible_in_snapshot(event.txid, c.lo)'
    ' OR (pg_catalog.pg_visible_in_snapshot(event.txid, c.hi)'
    ' AND (event.txid, event.id) <= (c.last_txid, c.last_id))))))');
SELECT pg_catalog.pg_extension_config_dump('webhook_internal.cursor', '');

-- A hook keeps its place in the log while inactive: its cursor, made above
-- for every hook, stays where the hook stopped; update_hook() is told
-- where a re-enabled hook starts (webhook.resume_point).  The hooks
-- inactive now keep theirs from the update on: before it, the log kept no
-- event for an inactive hook.  create_hook(), update_hook() and register()
-- take one argument more.
CREATE TYPE webhook.resume_point AS ENUM ('where_stopped', 'now');
COMMENT ON TYPE webhook.resume_point IS
    'where a hook re-enabled (or resumed) by update_hook(id, active => true) starts: where_stopped, with its waiting deliveries and then the events it missed while inactive, oldest first; or now, its waiting deliveries cancelled and the events it missed skipped';
DROP FUNCTION webhook.create_hook(bigint, text[], text, text, text, text, text,
                                  interval[], boolean, text, text, jsonpath, regprocedure);
DROP FUNCTION webhook.update_hook(bigint, bigint, text[], text, text, text, text, text,
                                  interval[], boolean, text, text, jsonpath, regprocedure);
DROP FUNCTION webhook.register(text, text[], text, text, boolean);
-- The bodies are written in C (src/render.c), the time in them too.
DROP FUNCTION webhook_internal.iso8601(timestamptz);

-- A deleted delivery no longer takes its attempts (src/sql/code/10_cascade.sql).
-- Last: dropping the trigger locks webhook.delivery, and the capture
-- trigger's writes wait for it until the update commits.
DROP TRIGGER deliveries_deleted ON webhook.delivery;
