-- webhook upgrade from 0.3 to 0.4: the migration of the state.  The code
-- (src/sql/code) follows it in the upgrade script and replaces every
-- function, view, trigger and policy; what the code no longer makes, or
-- makes with another signature, is dropped here first.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.4'" to load this file. \quit

-- The enumerations become types, defined once (src/sql/catalog/10_types.sql);
-- their columns are converted (webhook.hook is rewritten: it is small), and
-- the CHECK constraints that listed the values go.  The index and the
-- constraint that compare ordered and signature with text are made again
-- over the new types; the triggers that fire on an UPDATE OF these columns,
-- and the views and policies that read a tenant column, go first and come
-- back with the code.
CREATE TYPE webhook.signature_scheme AS ENUM ('standard', 'hmac-sha256', 'hmac-sha1', 'none');
COMMENT ON TYPE webhook.signature_scheme IS
    'how requests are signed: Standard Webhooks (webhook-signature), HMAC-SHA256 or HMAC-SHA1 hex in a header of the hook''s choice, or not at all';
CREATE TYPE webhook.payload_format AS ENUM ('standard', 'thin', 'envelope', 'row');
COMMENT ON TYPE webhook.payload_format IS
    'the request body: {type, timestamp, data}, the same without data, a CloudEvents-like envelope, or the row alone';
CREATE TYPE webhook.ordering AS ENUM ('none', 'hook', 'resource');
COMMENT ON TYPE webhook.ordering IS
    'none; hook: one delivery in flight, in event order; resource: the same per resource id';
CREATE TYPE webhook.on_dead AS ENUM ('continue', 'stop');
COMMENT ON TYPE webhook.on_dead IS
    'after a delivery of an ordered hook dies, the next one goes (continue) or the hook is disabled (stop)';
CREATE DOMAIN webhook.tenant_id AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]+$');
COMMENT ON DOMAIN webhook.tenant_id IS
    'a tenant''s id: ASCII letters, digits, "_" and "-"';

DROP INDEX webhook.hook_ordered_idx;
DROP TRIGGER hook_checked ON webhook.hook;
DROP TRIGGER transports_changed ON webhook.transport;
DROP VIEW webhook.tenant_grants, webhook.hook_stats;
DROP POLICY tenants ON webhook.transport;
DROP POLICY tenants ON webhook.tenant_grant;
ALTER TABLE webhook.hook
    DROP CONSTRAINT hook_signature_check,
    DROP CONSTRAINT hook_payload_format_check,
    DROP CONSTRAINT hook_ordered_check,
    DROP CONSTRAINT hook_on_dead_check,
    DROP CONSTRAINT hook_check,
    ALTER signature DROP DEFAULT,
    ALTER payload_format DROP DEFAULT,
    ALTER ordered DROP DEFAULT,
    ALTER on_dead DROP DEFAULT,
    ALTER signature TYPE webhook.signature_scheme USING signature::webhook.signature_scheme,
    ALTER payload_format TYPE webhook.payload_format USING payload_format::webhook.payload_format,
    ALTER ordered TYPE webhook.ordering USING ordered::webhook.ordering,
    ALTER on_dead TYPE webhook.on_dead USING on_dead::webhook.on_dead,
    ALTER signature SET DEFAULT 'standard',
    ALTER payload_format SET DEFAULT 'standard',
    ALTER ordered SET DEFAULT 'none',
    ALTER on_dead SET DEFAULT 'continue',
    ADD CONSTRAINT hook_check CHECK (signature = 'none' OR secret IS NOT NULL);
CREATE INDEX hook_ordered_idx ON webhook.hook (transport_id) WHERE ordered <> 'none';

ALTER TABLE webhook.transport
    DROP CONSTRAINT transport_tenant_check,
    ALTER tenant TYPE webhook.tenant_id;
ALTER TABLE webhook.tenant_grant
    DROP CONSTRAINT tenant_grant_tenant_check,
    ALTER tenant TYPE webhook.tenant_id;

-- 'delivering' was an allowed state that no version used.
ALTER TABLE webhook.delivery
    DROP CONSTRAINT delivery_state_check,
    ADD CONSTRAINT delivery_state_check
        CHECK (state IN ('pending', 'succeeded', 'failed', 'dead', 'cancelled'));

-- The internal functions move to a schema of their own, with their names
-- less the leading underscore (_limit, a reserved word bare, becomes
-- tenant_limit); last, since 0.3's event trigger, which the ALTER TABLEs
-- above fire, calls them by their old names.  Moved rather than made anew,
-- they keep what depends on them: the triggers and event triggers that
-- call them, and the hook table's default.  _managed_transport, which
-- nothing called, goes.
CREATE SCHEMA webhook_internal;
COMMENT ON SCHEMA webhook_internal IS
    'the webhook extension''s internal functions: not an API';
DROP FUNCTION webhook._managed_transport(bigint);
-- check_paging takes the tenant filter too: the code makes it anew
DROP FUNCTION webhook._check_paging(integer, integer, text, text, text[]);
-- _workers returns each worker's configuration generation too (a column
-- more): the code makes it anew
DROP FUNCTION webhook._workers();
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS sig, p.proname,
                    pg_catalog.pg_get_function_identity_arguments(p.oid) AS args
               FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'webhook'::regnamespace AND p.proname LIKE '\_%'
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET SCHEMA webhook_internal', f.sig);
        EXECUTE pg_catalog.format('ALTER FUNCTION webhook_internal.%I(%s) RENAME TO %I',
                                  f.proname, f.args,
                                  CASE f.proname WHEN '_limit' THEN 'tenant_limit'
                                                 ELSE pg_catalog.substr(f.proname, 2) END);
    END LOOP;
END
$$;
