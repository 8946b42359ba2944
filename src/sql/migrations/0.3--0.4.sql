-- webhook upgrade from 0.3 to 0.4: the migration of the state.  The code
-- (src/sql/code) follows it in the upgrade script and replaces every
-- function, view, trigger and policy; what the code no longer makes, or
-- makes with another signature, is dropped here first.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.4'" to load this file. \quit

-- The internal functions move to a schema of their own, with their names
-- less the leading underscore (_limit, a reserved word bare, becomes
-- tenant_limit).  Moved rather than made anew, they keep what depends on
-- them: the triggers and event triggers that call them, and the hook
-- table's default.  _managed_transport, which nothing called, goes.
CREATE SCHEMA webhook_internal;
COMMENT ON SCHEMA webhook_internal IS
    'the webhook extension''s internal functions: not an API';
DROP FUNCTION webhook._managed_transport(bigint);
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
