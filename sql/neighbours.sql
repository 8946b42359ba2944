-- Tenants cannot hurt each other through the writer's trigger.

-- This file runs alone too (test/check REGRESS=neighbours).
\i sql/include/alone.sql

CREATE TABLE neighbours_docs (id int PRIMARY KEY, tenant text NOT NULL, doc jsonb);
SELECT webhook.watch('neighbours_docs', resource => 'doc', tenant_column => 'tenant') IS NOT NULL AS watched;
SELECT webhook.create_transport('n', 'http://127.0.0.1:9', tenant => 'nb_a') AS ta \gset
SELECT webhook.create_transport('n', 'http://127.0.0.1:9', tenant => 'nb_b') AS tb \gset
SELECT webhook.create_hook(:ta, '{DOC_*}', path => '/a', signature => 'none') AS ha \gset
-- tenant nb_b's filter descends to any depth: a row nested 11,000 deep
-- exhausts the stack evaluating it
SELECT webhook.create_hook(:tb, '{DOC_*}', path => '/b', signature => 'none',
                           filter => '$.** == 1') AS hb \gset

-- A filter's error never fails the write: a WARNING names the hook, and the
-- event goes to it as if it matched.  In one statement with another
-- tenant's row and a row the filter rightly refuses.
INSERT INTO neighbours_docs
SELECT 1, 'nb_b', (repeat('{"a": ', 11000) || '1' || repeat('}', 11000))::jsonb
UNION ALL SELECT 2, 'nb_a', '{"x": 1}'
UNION ALL SELECT 3, 'nb_b', '{"x": 2}'
UNION ALL SELECT 4, 'nb_b', '{"x": {"y": 1}}';
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.tenant, e.resource_id, d.hook_id = :ha AS to_a, d.hook_id = :hb AS to_b
  FROM webhook.event e JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.resource = 'doc' ORDER BY e.resource_id;

-- Another tenant's many hooks (20,000, written directly, without the
-- checking trigger: it is slow) cost a session that writes nb_a's events
-- no memory: it reads nb_a's hooks only.
SET session_replication_role = replica;
INSERT INTO webhook.hook (transport_id, path, event_types, signature)
SELECT :tb, '/many/' || g, '{DOC_CREATE,DOC_UPDATE,DOC_DELETE}', 'none'
  FROM generate_series(1, 20000) g;
RESET session_replication_role;
\c
INSERT INTO neighbours_docs VALUES (5, 'nb_a', '{"x": 5}');
SELECT sum(total_bytes) < 1024 * 1024 AS small_cache
  FROM pg_backend_memory_contexts
 WHERE 'webhook hook cache' IN (name, parent);
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.resource_id, count(*) AS deliveries, bool_and(d.hook_id = :ha) AS to_a_only
  FROM webhook.event e JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.resource = 'doc' AND e.resource_id = '5' GROUP BY 1;
-- and nb_b's events still reach all of nb_b's hooks
INSERT INTO neighbours_docs VALUES (6, 'nb_b', '{"x": 1}');
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT count(*) AS deliveries FROM webhook.event e JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.resource = 'doc' AND e.resource_id = '6';
-- a change to either tenant's hooks is seen by the next statement (nb_a's
-- hook no longer subscribes: its row makes no event; nb_b's is inactive:
-- its row's event goes to it, to wait, as spill() shows)
SELECT event_types FROM webhook.update_hook(:ha, event_types => '{NOTHING}');
SELECT active FROM webhook.update_hook(:hb, active => false);
INSERT INTO neighbours_docs VALUES (7, 'nb_b', '{"x": 1}'), (8, 'nb_a', '{"x": 1}');
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.resource_id, count(d.id) AS deliveries, bool_or(d.hook_id = :hb) AS to_b
  FROM webhook.event e LEFT JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.resource = 'doc' AND e.resource_id IN ('7', '8') GROUP BY 1 ORDER BY 1;

SELECT webhook.unwatch('neighbours_docs');
DROP TABLE neighbours_docs;
DELETE FROM webhook.hook WHERE transport_id IN (:ta, :tb);
SELECT webhook.delete_transport(:ta), webhook.delete_transport(:tb);
