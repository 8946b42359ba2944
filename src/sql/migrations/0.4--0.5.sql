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
    ' AND d.state IN (''pending'', ''failed''))');
SELECT pg_catalog.pg_extension_config_dump('webhook.event_id_seq', '');
