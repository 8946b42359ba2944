-- webhook install script, part 2: functions implemented in C.

CREATE FUNCTION webhook._is_preloaded() RETURNS boolean
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'webhook_is_preloaded';

CREATE FUNCTION webhook._wake_launcher() RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake_launcher_sql';

CREATE FUNCTION webhook._generate_secret() RETURNS text
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_generate_secret';

CREATE FUNCTION webhook._secret_is_valid(secret text) RETURNS boolean
    LANGUAGE c STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'webhook_secret_is_valid';

CREATE FUNCTION webhook._http_head(url text, timeout_ms integer, tls_verify boolean,
                                   ca_file text, client_cert_file text,
                                   client_key_file text, client_key_password text)
    RETURNS integer
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_http_head';

CREATE FUNCTION webhook.sign(scheme text, secret text, msg_id text,
                             ts bigint, body text) RETURNS text
    LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'webhook_sign';
COMMENT ON FUNCTION webhook.sign(text, text, text, bigint, text) IS
    'the signature header value the worker sends for this message';

CREATE FUNCTION webhook.wake() RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake';
COMMENT ON FUNCTION webhook.wake() IS
    'wake the delivery worker when the current transaction commits';

CREATE FUNCTION webhook.wait_until_running(timeout interval DEFAULT '10 s')
    RETURNS boolean
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wait_until_running';
COMMENT ON FUNCTION webhook.wait_until_running(interval) IS
    'wait until the delivery worker runs; false after the timeout';

CREATE FUNCTION webhook.capture() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'webhook_capture';
COMMENT ON FUNCTION webhook.capture() IS
    'row trigger installed by webhook.watch(): changes become events';

-- Changes to hooks, and to the tenant of their transports, must reach every
-- session's cached list of hooks.  Row triggers: a statement that changes
-- no row (the worker's, mostly) must not invalidate anything.
CREATE FUNCTION webhook._hooks_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'webhook_hooks_changed';
CREATE TRIGGER hooks_changed
    AFTER INSERT OR DELETE OR UPDATE OF transport_id, event_types, active, filter
    ON webhook.hook FOR EACH ROW EXECUTE FUNCTION webhook._hooks_changed();
CREATE TRIGGER hooks_truncated AFTER TRUNCATE
    ON webhook.hook FOR EACH STATEMENT EXECUTE FUNCTION webhook._hooks_changed();
CREATE TRIGGER transports_changed AFTER DELETE OR UPDATE OF tenant
    ON webhook.transport FOR EACH ROW EXECUTE FUNCTION webhook._hooks_changed();
CREATE TRIGGER transports_truncated AFTER TRUNCATE
    ON webhook.transport FOR EACH STATEMENT EXECUTE FUNCTION webhook._hooks_changed();

-- The launcher starts this database's workers when the installation
-- commits, if webhook.database_name names it (or is '*').
DO $$
BEGIN
    IF NOT webhook._is_preloaded() THEN
        RAISE WARNING 'webhook is not in shared_preload_libraries: no deliveries will be made'
            USING HINT = 'Add webhook to shared_preload_libraries and restart PostgreSQL.';
    ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(pg_catalog.string_to_array(
                          pg_catalog.current_setting('webhook.database_name'), ',')) d
                       WHERE pg_catalog.btrim(d) IN ('*', pg_catalog.current_database())) THEN
        RAISE WARNING 'the webhook workers deliver only in databases "%"',
            current_setting('webhook.database_name')
            USING HINT = 'Add this database to webhook.database_name (or set it to *) and restart PostgreSQL.';
    END IF;
    PERFORM webhook._wake_launcher();
END
$$;

COMMENT ON FUNCTION webhook._is_preloaded() IS
    'whether the library was loaded through shared_preload_libraries';
COMMENT ON FUNCTION webhook._wake_launcher() IS
    'when the transaction commits, have the launcher look for databases with the extension';
COMMENT ON FUNCTION webhook._generate_secret() IS
    'a new Standard Webhooks secret: whsec_ and the base64 of 24 random bytes';
COMMENT ON FUNCTION webhook._secret_is_valid(text) IS
    'whether a secret is whsec_ and the base64 of 24 to 64 bytes';
COMMENT ON FUNCTION webhook._http_head(text, integer, boolean, text, text, text, text) IS
    'the status of a HEAD request with a transport''s TLS settings (no redirects, deny_networks obeyed), or null';
COMMENT ON FUNCTION webhook._hooks_changed() IS
    'trigger: makes every session reload its cached list of hooks';
