-- Tenants: a role granted a tenant manages it through the API and reads its
-- rows, and sees nothing of another tenant: not by the API, not by the
-- tables and views, not by error messages.  Secrets and credentials are
-- shown by nobody's SELECT but the extension owner's.

-- This file runs alone too (test/check REGRESS=tenants).
\i sql/include/alone.sql

CREATE ROLE webhook_test_acme LOGIN;
CREATE ROLE webhook_test_globex LOGIN;
CREATE ROLE webhook_test_boss LOGIN IN ROLE webhook_admin;
CREATE ROLE webhook_test_nobody LOGIN;
CREATE ROLE webhook_test_team NOLOGIN;
GRANT webhook_test_team TO webhook_test_globex;
SELECT current_user AS superuser \gset
CREATE FUNCTION tenants_body(e webhook.event) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT e.payload $$;

------------------------------------------------------------------------------
-- Granting: admins only, checked arguments.
SET SESSION AUTHORIZATION webhook_test_boss;
SELECT webhook.grant_tenant('webhook_test_acme', 'acme') AS granted;
SELECT webhook.grant_tenant('webhook_test_acme', 'acme') AS granted_again;
SELECT webhook.grant_tenant('webhook_test_globex', 'globex') AS granted;
-- a grant to a group role holds for its members
SELECT webhook.grant_tenant('webhook_test_team', 'initech') AS granted;
SELECT webhook.grant_tenant('webhook_test_acme', 'bad tenant');
SELECT webhook.grant_tenant(NULL, 'acme');
SELECT webhook.grant_tenant('webhook_tenant', 'acme');
SELECT webhook.grant_tenant('webhook_test_nope', 'acme');
SELECT role, tenant FROM webhook.tenant_grants ORDER BY 1, 2;
SELECT pg_has_role('webhook_test_acme', 'webhook_tenant', 'MEMBER') AS acme_is_tenant_role;

-- each tenant: a transport with credentials, a hook, two events, one with a
-- finished delivery and its attempt
SELECT webhook.create_transport('erp', 'http://127.0.0.1:9', tenant => 'acme',
                                auth => '{"type": "bearer", "token": "acme-token-SECRET"}',
                                query_key => 'acme-key-SECRET') AS acme_t \gset
SELECT webhook.create_hook(:acme_t, '{ORDER_*}', path => '/acme') AS acme_h \gset
SELECT webhook.create_transport('erp', 'http://127.0.0.1:9', tenant => 'globex',
                                auth => '{"type": "basic", "username": "g", "password": "globex-pw-SECRET"}',
                                client_cert_file => '/etc/ssl/globex.crt',
                                client_key_file => '/etc/ssl/globex.key',
                                client_key_password => 'globex-key-pw-SECRET') AS globex_t \gset
SELECT webhook.create_hook(:globex_t, '{ORDER_*}', path => '/globex') AS globex_h \gset
SELECT webhook.create_transport('crm', 'http://127.0.0.1:9', tenant => 'initech') AS initech_t \gset
RESET SESSION AUTHORIZATION;
-- (as the owner: finished rows the worker leaves alone)
SELECT count(*) FROM (SELECT webhook.emit('INVOICE_PAID', jsonb_build_object('n', n), tenant => t)
                        FROM unnest('{acme,acme,globex,globex}'::text[]) WITH ORDINALITY AS x(t, n)) e;
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, finished_at)
SELECT min(e.id), CASE e.tenant WHEN 'acme' THEN :acme_h ELSE :globex_h END, 'dead', 1, now()
  FROM webhook.event e WHERE e.event_type = 'INVOICE_PAID' GROUP BY e.tenant;
INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, duration_ms, url, status_code, response_body)
SELECT d.id, 1, now(), 3, 'http://127.0.0.1:9/x?key=********', 500, 'tenant ' || e.tenant
  FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id;
SELECT d.id AS globex_d FROM webhook.delivery d WHERE d.hook_id = :globex_h \gset
SELECT d.id AS acme_d FROM webhook.delivery d WHERE d.hook_id = :acme_h \gset

------------------------------------------------------------------------------
-- A tenant role sees its tenant, by the API and by the tables and views.
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT tenant, name, auth, query_key FROM webhook.transports();
SELECT id = :acme_h AS own_hook, tenant, url, secret FROM webhook.hooks();
SELECT webhook.hook_secret(:acme_h) ~ '^whsec_' AS sees_own_secret;
SELECT tenant, event_type, count(*) FROM webhook.event GROUP BY 1, 2;
SELECT hook_id = :acme_h AS own_hook, state FROM webhook.delivery;
SELECT response_body FROM webhook.attempt;
SELECT tenant, hook_id = :acme_h AS own_hook, url, status_code, state FROM webhook.delivery_log;
SELECT hook_id = :acme_h AS own_hook, tenant, dead FROM webhook.hook_stats;
SELECT tenant, hook_id = :acme_h AS own_hook, state FROM webhook.notifications(since => NULL);
SELECT name, tenant FROM webhook.transport;
SELECT path FROM webhook.hook;
SELECT role, tenant FROM webhook.tenant_grants;

-- ... and nothing of another tenant, whatever the arguments
SELECT count(*) FROM webhook.transports(tenant => 'globex');
SELECT count(*) FROM webhook.transports(page => 1, page_size => 1000, sort_by => 'tenant', sort_dir => 'DESC');
SELECT count(*) FROM webhook.hooks(transport_id => :globex_t);
SELECT count(*) FROM webhook.hooks(tenant => 'globex', sort_by => 'url');
SELECT count(*) FROM webhook.notifications(tenant => 'globex', since => NULL);
SELECT count(*) FROM webhook.notifications(hook_id => :globex_h, since => NULL);
SELECT count(*) FROM webhook.event WHERE tenant = 'globex';
SELECT count(*) FROM webhook.delivery WHERE hook_id = :globex_h;
SELECT count(*) FROM webhook.attempt WHERE delivery_id = :globex_d;
SELECT count(*) FROM webhook.delivery_log WHERE tenant <> 'acme';
SELECT count(*) FROM webhook.hook_stats WHERE hook_id = :globex_h;
-- another tenant's objects do not exist, in the words an unknown id gets
\set VERBOSITY terse
SELECT webhook.hook_secret(:globex_h);
SELECT webhook.hook_secret(999999);
SELECT webhook.update_transport(:globex_t, name => 'mine');
SELECT webhook.update_transport(999999, name => 'mine');
SELECT webhook.delete_transport(:globex_t);
SELECT webhook.create_hook(:globex_t, '{*}');
SELECT webhook.update_hook(:globex_h, active => false);
SELECT webhook.update_hook(:acme_h, transport_id => :globex_t);
SELECT webhook.delete_hook(:globex_h);
SELECT webhook.ping(:globex_h);
SELECT webhook.replay(:globex_h, '-infinity');
SELECT webhook.redeliver(:globex_d);
SELECT webhook.redeliver(999999);
SELECT webhook.rotate_secret(:globex_h);
-- a tenant it does not hold is refused by name, existing or not
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'globex');
SELECT webhook.create_transport('x', 'http://127.0.0.1:9');
SELECT webhook.create_transport('x', 'http://127.0.0.1:9', tenant => 'nosuch');
SELECT webhook.update_transport(:acme_t, tenant => 'globex');
SELECT webhook.register('http://127.0.0.1:9/x', tenant => 'globex', check_reachable => false);
SELECT webhook.emit('ORDER_CREATE', '{}', tenant => 'globex');
-- what only admins do
SELECT webhook.grant_tenant('webhook_test_acme', 'globex');
SELECT webhook.revoke_tenant('webhook_test_globex', 'globex');
SELECT webhook.prune();
SELECT webhook.watch('pg_class');
SELECT webhook.unwatch('pg_class');
-- the tables are read-only to it, even its own rows
INSERT INTO webhook.transport (tenant, name, base_url) VALUES ('acme', 'direct', 'http://127.0.0.1:9');
UPDATE webhook.hook SET active = false WHERE id = :acme_h;
DELETE FROM webhook.event;
INSERT INTO webhook.tenant_grant VALUES ('webhook_test_acme', 'globex');
-- files on the server and code in the worker are for admins
SELECT webhook.update_transport(:acme_t, ca_file => '/etc/ssl/globex.key');
SELECT webhook.create_transport('tls', 'https://127.0.0.1:9', tenant => 'acme',
                                client_cert_file => '/etc/ssl/globex.crt',
                                client_key_file => '/etc/ssl/globex.key');
SELECT webhook.update_hook(:acme_h, transform => 'tenants_body(webhook.event)');
-- secrets and credentials: not even its own, but through hook_secret()
SELECT secret FROM webhook.hook;
SELECT previous_secret FROM webhook.hook;
SELECT auth FROM webhook.transport;
SELECT query_key FROM webhook.transport;
SELECT client_key_password FROM webhook.transport;
SELECT * FROM webhook.hook;
\set VERBOSITY default

-- what it manages, it changes
SELECT webhook.create_transport('shop', 'http://127.0.0.1:9', tenant => 'acme') AS acme_t2 \gset
SELECT name, tenant FROM webhook.update_transport(:acme_t2, name => 'shop2', max_in_flight => 2);
SELECT webhook.create_hook(:acme_t2, '{INVOICE_*}', active => false) AS acme_h2 \gset
SELECT active FROM webhook.update_hook(:acme_h2, path => '/v2');
SELECT webhook.delete_hook(:acme_h2);
SELECT webhook.delete_transport(:acme_t2);
SELECT (webhook.register('http://127.0.0.1:9/reg', tenant => 'acme', check_reachable => false))->>'status' AS registered;
SELECT webhook.emit('INVOICE_PAID', '{"n": 3}', tenant => 'acme') IS NOT NULL AS emitted;
SELECT webhook.redeliver(:acme_d) > :acme_d AS redelivered;
SELECT webhook.rotate_secret(:acme_h, '1 hour') AS new_secret \gset
SELECT webhook.hook_secret(:acme_h) = :'new_secret' AS rotated;
SELECT previous_secret_until > now() AS overlapping FROM webhook.hook WHERE id = :acme_h;
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- A member of a group role granted a tenant manages it too.
SET SESSION AUTHORIZATION webhook_test_globex;
SELECT tenant, name FROM webhook.transports() ORDER BY 1;
SELECT count(*) FROM webhook.event WHERE tenant = 'acme';
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- A role with no grant has no way into the schema.
SET SESSION AUTHORIZATION webhook_test_nobody;
\set VERBOSITY terse
SELECT count(*) FROM webhook.transports();
SELECT count(*) FROM webhook.event;
SELECT webhook.emit('ORDER_CREATE', '{}');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- An admin manages every tenant, and reads no secret from the tables either.
SET SESSION AUTHORIZATION webhook_test_boss;
SELECT tenant, count(*) FROM webhook.transports() GROUP BY 1 ORDER BY 1;
SELECT tenant, count(*) FROM webhook.event WHERE event_type = 'INVOICE_PAID' GROUP BY 1 ORDER BY 1;
SELECT webhook.hook_secret(:globex_h) ~ '^whsec_' AS sees_every_secret;
-- even an admin previews a hook only with its own tenant's events
SELECT id AS globex_e FROM webhook.event WHERE tenant = 'globex' LIMIT 1 \gset
SELECT body IS NOT NULL AS previewed FROM webhook.preview(:globex_h, :globex_e);
\set VERBOSITY terse
SELECT webhook.preview(:acme_h, :globex_e);
\set VERBOSITY default
\set VERBOSITY terse
SELECT secret FROM webhook.hook;
SELECT auth FROM webhook.transport;
\set VERBOSITY default
RESET SESSION AUTHORIZATION;

------------------------------------------------------------------------------
-- Revoking takes effect for the next statement; the role sees nothing then.
SELECT webhook.revoke_tenant('webhook_test_acme', 'acme') AS revoked;
SELECT webhook.revoke_tenant('webhook_test_acme', 'acme') AS revoked_again;
SET SESSION AUTHORIZATION webhook_test_acme;
SELECT count(*) FROM webhook.transports();
SELECT count(*) FROM webhook.event;
SELECT count(*) FROM webhook.delivery_log;
\set VERBOSITY terse
SELECT webhook.hook_secret(:acme_h);
\set VERBOSITY default
RESET SESSION AUTHORIZATION;

-- A real login of a tenant role, granted again.
SELECT webhook.grant_tenant('webhook_test_acme', 'acme') AS granted;
\c - webhook_test_acme
SELECT current_user, count(*) AS transports FROM webhook.transports();
\c - :superuser

-- clean up
SELECT webhook.delete_transport(id) FROM webhook.transports() WHERE tenant IN ('acme', 'globex', 'initech');
DELETE FROM webhook.event WHERE tenant IN ('acme', 'globex');
-- a deleted delivery leaves its attempts, until their slot is emptied;
-- delivery_log shows none of them
SELECT count(*) AS attempts_left, (SELECT count(*) FROM webhook.delivery_log) AS logged
  FROM webhook.attempt;
TRUNCATE webhook.attempt;
DELETE FROM webhook.tenant_grant;
DROP FUNCTION tenants_body(webhook.event);
DROP ROLE webhook_test_acme, webhook_test_globex, webhook_test_boss, webhook_test_nobody,
          webhook_test_team;
