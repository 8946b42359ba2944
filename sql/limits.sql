-- Limits: what a tenant configures is bounded, by settings (webhook.max_*)
-- and by fixed lengths; every refusal names the limit (and the setting) and
-- changes nothing; a transport or hook never moves to another tenant; bad
-- roles are clear errors.  Values printed are sizes, never the values.

-- This file runs alone too (test/check REGRESS=limits).
\i sql/include/alone.sql
CREATE ROLE webhook_test_acme LOGIN;
CREATE ROLE webhook_test_globex LOGIN;
SELECT webhook.grant_tenant('webhook_test_acme', 'acme') AS granted;
SELECT webhook.grant_tenant('webhook_test_globex', 'globex') AS granted;
SELECT current_user AS superuser \gset

-- the settings and their defaults; a tenant's role cannot raise them
SELECT name, setting, unit, context FROM pg_settings
 WHERE name IN ('webhook.max_timeout', 'webhook.max_retry_steps', 'webhook.max_event_types',
                'webhook.max_hooks_per_tenant', 'webhook.max_transports_per_tenant')
 ORDER BY name COLLATE "C";
SET SESSION AUTHORIZATION webhook_test_acme;
SET webhook.max_hooks_per_tenant = 1000000;
SELECT set_config('webhook.max_retry_steps', '100000', false);
RESET SESSION AUTHORIZATION;
-- validated when set
SET webhook.max_timeout = 0;
SET webhook.max_retry_steps = -1;
SET webhook.max_event_types = 'many';

-- refusals change nothing: counted before each group, compared after it
CREATE TEMP VIEW counts AS
SELECT (SELECT count(*) FROM webhook.transport) AS t0, (SELECT count(*) FROM webhook.hook) AS h0;
\set unchanged 'SELECT (SELECT count(*) FROM webhook.transport) = :t0 AND (SELECT count(*) FROM webhook.hook) = :h0 AS unchanged'

------------------------------------------------------------------------------
-- Timeouts: at least 1 ms (as the worker reads it, in whole milliseconds),
-- at most webhook.max_timeout.
SELECT * FROM counts \gset
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', timeout => '0.0004 s');
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', timeout => '0.9 ms');
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', connect_timeout => '0.5 ms');
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', timeout => '5 min 1 ms');
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', connect_timeout => '1 day');
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme', timeout => '1000 years');
RESET SESSION AUTHORIZATION;
:unchanged;
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'acme',
                                timeout => '1 ms', connect_timeout => '5 min') AS acme_t \gset
SELECT (date_part('epoch', timeout) * 1000)::bigint AS timeout_ms,
       (date_part('epoch', connect_timeout) * 1000)::bigint AS connect_timeout_ms
  FROM webhook.transport WHERE id = :acme_t;
SELECT webhook.update_transport(:acme_t, timeout => '10 min');
SELECT webhook.update_transport(:acme_t, connect_timeout => '-1 s');
RESET SESSION AUTHORIZATION;
-- and on direct writes
UPDATE webhook.transport SET timeout = '1 hour' WHERE id = :acme_t;
INSERT INTO webhook.transport (tenant, name, base_url, connect_timeout)
VALUES ('acme', 'direct', 'http://127.0.0.1:9', '0.1 ms');
-- a lower limit leaves existing rows as they are, and writes that keep the value
SET webhook.max_timeout = '2 s';
SELECT name, timeout, connect_timeout
  FROM webhook.update_transport(:acme_t, name => 'renamed');
SELECT webhook.update_transport(:acme_t, connect_timeout => '3 s');
RESET webhook.max_timeout;
SELECT (webhook.update_transport(:acme_t, connect_timeout => '3 s')).connect_timeout;

------------------------------------------------------------------------------
-- Retry steps and event type patterns: webhook.max_retry_steps and
-- webhook.max_event_types, on the API and on direct writes.
SELECT * FROM counts \gset
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT webhook.create_hook(:acme_t, retry_schedule => array_fill('1 s'::interval, ARRAY[500000]));
SELECT webhook.create_hook(:acme_t, retry_schedule => array_fill('1 s'::interval, ARRAY[51]));
SELECT webhook.create_hook(:acme_t, ARRAY(SELECT 'E' || g FROM generate_series(1, 1000000) g));
SELECT webhook.create_hook(:acme_t, ARRAY(SELECT 'E' || g FROM generate_series(1, 101) g));
SELECT webhook.create_hook(:acme_t, ARRAY[repeat('E', 257)]);
SELECT webhook.register('http://127.0.0.1:9/x', ARRAY(SELECT 'E' || g FROM generate_series(1, 101) g),
                        tenant => 'acme', check_reachable => false);
RESET SESSION AUTHORIZATION;
:unchanged;
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT webhook.create_hook(:acme_t, ARRAY(SELECT 'E' || g FROM generate_series(1, 100) g),
                           retry_schedule => array_fill('1 s'::interval, ARRAY[50])) AS acme_h \gset
SELECT webhook.update_hook(:acme_h, retry_schedule => array_fill('1 s'::interval, ARRAY[51]));
SELECT webhook.update_hook(:acme_h, event_types => ARRAY(SELECT 'E' || g FROM generate_series(1, 101) g));
RESET SESSION AUTHORIZATION;
UPDATE webhook.hook SET retry_schedule = array_fill('1 s'::interval, ARRAY[51]) WHERE id = :acme_h;
UPDATE webhook.hook SET event_types = ARRAY(SELECT 'E' || g FROM generate_series(1, 101) g)
 WHERE id = :acme_h;
-- lowered limits: the hook keeps its 50 steps and 100 patterns, and can be
-- changed otherwise
SET webhook.max_retry_steps = 3;
SET webhook.max_event_types = 2;
SELECT cardinality(retry_schedule) AS steps, cardinality(event_types) AS patterns, path
  FROM webhook.update_hook(:acme_h, path => '/kept', active => true);
SELECT webhook.update_hook(:acme_h, retry_schedule => '{1s,1s,1s,1s}');
SELECT webhook.update_hook(:acme_h, event_types => '{A,B,C}');
RESET webhook.max_retry_steps;
RESET webhook.max_event_types;

------------------------------------------------------------------------------
-- Transports and hooks per tenant: webhook.max_transports_per_tenant and
-- webhook.max_hooks_per_tenant count every write; other tenants are not
-- affected.
SET webhook.max_transports_per_tenant = 2;
SET webhook.max_hooks_per_tenant = 2;
SHOW webhook.max_transports_per_tenant;
SELECT webhook.create_transport('t2', 'http://127.0.0.1:9', tenant => 'acme') AS acme_t2 \gset
SELECT webhook.create_transport('t3', 'http://127.0.0.1:9', tenant => 'acme');
INSERT INTO webhook.transport (tenant, name, base_url) VALUES ('acme', 't3', 'http://127.0.0.1:9');
SELECT webhook.register('http://127.0.0.1:10/x', tenant => 'acme', check_reachable => false);
SELECT webhook.create_transport('t', 'http://127.0.0.1:9', tenant => 'globex') AS globex_t \gset
SELECT webhook.create_hook(:acme_t2) IS NOT NULL AS second_hook;
SELECT webhook.create_hook(:acme_t2);
INSERT INTO webhook.hook (transport_id) VALUES (:acme_t2);
SELECT webhook.create_hook(:globex_t) IS NOT NULL AS other_tenant_hook;
SELECT t.tenant, count(DISTINCT t.id) AS transports, count(h.id) AS hooks
  FROM webhook.transport t LEFT JOIN webhook.hook h ON h.transport_id = t.id
 WHERE t.tenant IN ('acme', 'globex') GROUP BY 1 ORDER BY 1;
-- room again once one is deleted
SELECT webhook.delete_transport(:acme_t2);
SELECT webhook.create_transport('t3', 'http://127.0.0.1:9', tenant => 'acme') IS NOT NULL AS room_again;
RESET webhook.max_transports_per_tenant;
RESET webhook.max_hooks_per_tenant;

------------------------------------------------------------------------------
-- Lengths: everything a tenant passes is bounded; the message gives the
-- size and the limit, never the value.
SELECT * FROM counts \gset
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT webhook.create_transport(repeat('n', 2000000), 'http://127.0.0.1:9', tenant => 'acme');
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => repeat('a', 2000000));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9/' || repeat('p', 3000), tenant => 'acme');
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                headers => (SELECT jsonb_object_agg('X-H' || g, 'v') FROM generate_series(1, 65) g));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                headers => jsonb_build_object(repeat('X', 300), 'v'));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                headers => jsonb_build_object('X-Big', repeat('v', 9000)));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                auth => jsonb_build_object('type', 'bearer', 'token', repeat('t', 9000)));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                auth => jsonb_build_object('type', 'basic', 'username', repeat('u', 2000), 'password', 'p'));
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'acme',
                                query_key => repeat('k', 3000));
SELECT webhook.create_hook(:acme_t, path => '/' || repeat('p', 3000));
SELECT webhook.create_hook(:acme_t, signature => 'hmac-sha256', secret => repeat('s', 2000));
SELECT webhook.create_hook(:acme_t, signature => 'hmac-sha256', signature_header => repeat('X', 300));
SELECT webhook.create_hook(:acme_t, filter => ('$.a == "' || repeat('f', 5000) || '"')::jsonpath);
SELECT webhook.transports(tenant => repeat('a', 2000000));
SELECT webhook.register('http://127.0.0.1:9/' || repeat('p', 3000), tenant => 'acme',
                        check_reachable => false);
RESET SESSION AUTHORIZATION;
SELECT webhook.grant_tenant('webhook_test_acme', repeat('a', 2000000));
INSERT INTO webhook.transport (tenant, name, base_url)
VALUES ('acme', repeat('n', 2000000), 'http://127.0.0.1:9');
:unchanged;

------------------------------------------------------------------------------
-- A transport (or hook) stays in its tenant: moved, its deliveries would be
-- the other tenant's to list, replay and redeliver.
SELECT webhook.emit('ORDER_PAID', '{"n": 1}', tenant => 'acme') IS NOT NULL AS emitted;
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, finished_at)
SELECT e.id, :acme_h, 'succeeded', 1, now() FROM webhook.event e WHERE e.tenant = 'acme';
SELECT d.id AS acme_d FROM webhook.delivery d WHERE d.hook_id = :acme_h \gset
SELECT e.id AS acme_e FROM webhook.event e WHERE e.tenant = 'acme' \gset
SELECT webhook.update_transport(:acme_t, tenant => 'globex');
UPDATE webhook.transport SET tenant = 'globex' WHERE id = :acme_t;
SELECT webhook.update_hook(:acme_h, transport_id => :globex_t);
UPDATE webhook.hook SET transport_id = :globex_t WHERE id = :acme_h;
-- the other tenant sees none of it, by every function
SET SESSION AUTHORIZATION webhook_test_globex;
SELECT count(*) AS notifications FROM webhook.notifications(since => NULL);
SELECT webhook.replay(:acme_h, '-infinity');
SELECT webhook.redeliver(:acme_d);
SELECT webhook.preview(:acme_h, :acme_e);
RESET SESSION AUTHORIZATION;
-- the tenant that has them still does
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT count(*) AS notifications FROM webhook.notifications(since => NULL);
SELECT (webhook.preview(:acme_h, :acme_e)).url;
RESET SESSION AUTHORIZATION;
SELECT tenant FROM webhook.transport WHERE id = :acme_t;

------------------------------------------------------------------------------
-- Roles: one that does not exist is a clear error, by name or by number.
SELECT webhook.grant_tenant(0, 'acme');
SELECT webhook.grant_tenant(4294967295, 'acme');
SELECT webhook.grant_tenant('webhook_test_nosuch', 'acme');
SELECT webhook.revoke_tenant(0, 'acme');

-- clean up
DELETE FROM webhook.delivery WHERE hook_id = :acme_h;
SELECT webhook.delete_transport(id) FROM webhook.transport WHERE tenant IN ('acme', 'globex');
DELETE FROM webhook.event WHERE tenant = 'acme';
DELETE FROM webhook.tenant_grant;
DROP ROLE webhook_test_acme, webhook_test_globex;
