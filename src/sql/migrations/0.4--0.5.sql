-- webhook upgrade from 0.4 to 0.5: the migration of the state.  The code
-- (src/sql/code) follows it in the upgrade script and replaces every
-- function, view, trigger and policy; what the code no longer makes, or
-- makes with another signature, is dropped here first.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.5'" to load this file. \quit

-- pg_dump keeps the work not yet done: the unfinished deliveries, their
-- attempts and events, and the ids' sequences (as src/sql/catalog/20_tables.sql
-- registers them, condition for condition).
SELECT pg_catalog.pg_extension_config_dump('webhook.delivery',
    'WHERE delivery.state IN (''pending'', ''failed'')');
SELECT pg_catalog.pg_extension_config_dump('webhook.delivery_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('webhook.attempt',
    'WHERE EXISTS (SELECT 1 FROM webhook.delivery d WHERE d.id = attempt.delivery_id'
    ' AND d.state IN (''pending'', ''failed''))');
SELECT pg_catalog.pg_extension_config_dump('webhook.event',
    'WHERE EXISTS (SELECT 1 FROM webhook.delivery d WHERE d.event_id = event.id'
    ' AND d.state IN (''pending'', ''failed''))'
    ' OR event.id > (SELECT min(h.disabled_at_event) FROM webhook.hook h WHERE NOT h.active)');
SELECT pg_catalog.pg_extension_config_dump('webhook.event_id_seq', '');

-- A hook keeps its place in the log while inactive: the id of the log's
-- last event when it was disabled (webhook.hook.disabled_at_event), set by
-- a trigger of the code; update_hook() is told where a re-enabled hook
-- starts (webhook.resume_point).  The hooks inactive now keep theirs from
-- the update on: before it, the log kept no event for an inactive hook.
-- create_hook(), update_hook() and register() take one argument more.
CREATE TYPE webhook.resume_point AS ENUM ('where_stopped', 'now');
COMMENT ON TYPE webhook.resume_point IS
    'where a hook re-enabled (or resumed) by update_hook(id, active => true) starts: where_stopped, with its waiting deliveries and then the events it missed while inactive, oldest first; or now, its waiting deliveries cancelled and the events it missed skipped';
ALTER TABLE webhook.hook ADD COLUMN disabled_at_event bigint;
UPDATE webhook.hook SET disabled_at_event = (SELECT coalesce(max(e.id), 0) FROM webhook.event e)
 WHERE NOT active;
DROP FUNCTION webhook.create_hook(bigint, text[], text, text, text, text, text,
                                  interval[], boolean, text, text, jsonpath, regprocedure);
DROP FUNCTION webhook.update_hook(bigint, bigint, text[], text, text, text, text, text,
                                  interval[], boolean, text, text, jsonpath, regprocedure);
DROP FUNCTION webhook.register(text, text[], text, text, boolean);
