-- webhook install script, part 2: the delivery workers' controls (C).  The
-- other C functions are declared with the SQL of their concern.

CREATE OR REPLACE FUNCTION webhook_internal.is_preloaded() RETURNS boolean
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'webhook_is_preloaded';

CREATE OR REPLACE FUNCTION webhook_internal.wake_launcher() RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake_launcher_sql';

CREATE OR REPLACE FUNCTION webhook.wake() RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake';
COMMENT ON FUNCTION webhook.wake() IS
    'wake the delivery worker when the current transaction commits';
-- a wake-up naming no hook makes the worker look at every hook: an admin's
-- tool, not a tenant's (worker.c)
REVOKE EXECUTE ON FUNCTION webhook.wake() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.wake() TO webhook_admin;

CREATE OR REPLACE FUNCTION webhook_internal.wake_for(hook_id bigint) RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake_for';
COMMENT ON FUNCTION webhook_internal.wake_for(bigint) IS
    'wake the delivery worker when the current transaction commits, to look at this hook';
REVOKE EXECUTE ON FUNCTION webhook_internal.wake_for(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook.wait_until_running(timeout interval DEFAULT '10 s')
    RETURNS boolean
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wait_until_running';
COMMENT ON FUNCTION webhook.wait_until_running(interval) IS
    'wait until the delivery worker runs; false after the timeout';

-- The launcher starts this database's workers when the installation
-- commits, if webhook.database_name names it (or is '*').
DO $$
BEGIN
    IF NOT webhook_internal.is_preloaded() THEN
        RAISE WARNING 'webhook is not in shared_preload_libraries: no deliveries will be made'
            USING HINT = 'Add webhook to shared_preload_libraries and restart PostgreSQL.';
    ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(pg_catalog.string_to_array(
                          pg_catalog.current_setting('webhook.database_name'), ',')) d
                       WHERE pg_catalog.btrim(d) IN ('*', pg_catalog.current_database())) THEN
        RAISE WARNING 'the webhook workers deliver only in databases "%"',
            current_setting('webhook.database_name')
            USING HINT = 'Add this database to webhook.database_name (or set it to *) and restart PostgreSQL.';
    END IF;
    PERFORM webhook_internal.wake_launcher();
END
$$;

COMMENT ON FUNCTION webhook_internal.is_preloaded() IS
    'whether the library was loaded through shared_preload_libraries';
COMMENT ON FUNCTION webhook_internal.wake_launcher() IS
    'when the transaction commits, have the launcher look for databases with the extension';
