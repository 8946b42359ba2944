-- webhook upgrade script: 0.1 to 0.2.
--
-- Every change made to the catalog since 0.1 (src/sql/*.sql), for a
-- database that has 0.1: test/e2e/test_upgrade.py checks that 0.1 updated
-- with this script is the very catalog a fresh 0.2 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.2'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Endpoint health (webhook.disable_after): each hook's run of failures,
-- written by the worker; update_hook(active => true) clears it.
-- ---------------------------------------------------------------------------
ALTER TABLE webhook.hook ADD COLUMN failing_since timestamptz;
ALTER TABLE webhook.hook ADD COLUMN failing_deaths integer NOT NULL DEFAULT 0;
ALTER TABLE webhook.hook ADD COLUMN last_death_at timestamptz;
GRANT SELECT (failing_since, failing_deaths, last_death_at)
   ON webhook.hook TO webhook_admin, webhook_tenant;

CREATE OR REPLACE FUNCTION webhook.update_hook(
        id bigint,
        transport_id bigint DEFAULT NULL,
        event_types text[] DEFAULT NULL,
        path text DEFAULT NULL,
        secret text DEFAULT NULL,
        signature text DEFAULT NULL,
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT NULL,
        retry_schedule interval[] DEFAULT NULL,
        active boolean DEFAULT NULL,
        ordered text DEFAULT NULL,
        on_dead text DEFAULT NULL,
        filter jsonpath DEFAULT NULL,
        transform regprocedure DEFAULT NULL)
    RETURNS webhook.hook_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.hook;
    h webhook.hook;
    t webhook.transport;
BEGIN
    PERFORM webhook._not_null(id, 'id');
    SELECT x.* INTO old FROM webhook.hook x
     WHERE x.id = update_hook.id
       AND webhook._manages((SELECT tr.tenant FROM webhook.transport tr
                              WHERE tr.id = x.transport_id))
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;

    h := old;
    h.transport_id := coalesce(transport_id, old.transport_id);
    h.event_types := coalesce(event_types, old.event_types);
    h.path := coalesce(path, old.path);
    h.signature := coalesce(signature, old.signature);
    h.payload_format := coalesce(payload_format, old.payload_format);
    h.retry_schedule := coalesce(retry_schedule, old.retry_schedule);
    h.active := coalesce(active, old.active);
    h.ordered := coalesce(ordered, old.ordered);
    h.on_dead := coalesce(on_dead, old.on_dead);
    -- '$' (every event) removes the filter, '-' (no function) the transform
    h.filter := CASE WHEN filter::text = '$' THEN NULL ELSE coalesce(filter, old.filter) END;
    h.transform := CASE WHEN transform = 0 THEN NULL ELSE coalesce(transform, old.transform) END;
    -- NULL keeps the secret, '' asks for a new generated one
    h.secret := CASE WHEN secret = '' THEN NULL ELSE coalesce(secret, old.secret) END;
    -- the header follows the scheme unless one is given
    h.signature_header := CASE
        WHEN signature_header IS NOT NULL THEN signature_header
        WHEN h.signature IN ('hmac-sha256', 'hmac-sha1') THEN old.signature_header
        ELSE NULL END;
    h := webhook._check_hook(h, true);
    -- active => true re-enables a hook a 410 or webhook.disable_after
    -- disabled, and resumes one that on_dead => 'stop' paused (active, with a
    -- disabled_reason); its failures start again from none
    IF update_hook.active THEN
        h.disabled_reason := NULL;
        h.failing_since := NULL;
        h.failing_deaths := 0;
        h.last_death_at := NULL;
    END IF;

    BEGIN
        UPDATE webhook.hook x
           SET transport_id = h.transport_id, path = h.path,
               event_types = h.event_types, secret = h.secret,
               signature = h.signature, signature_header = h.signature_header,
               payload_format = h.payload_format,
               retry_schedule = h.retry_schedule, active = h.active,
               ordered = h.ordered, on_dead = h.on_dead, filter = h.filter,
               transform = h.transform, transform_role = h.transform_role,
               disabled_reason = h.disabled_reason, updated_at = now(),
               failing_since = h.failing_since, failing_deaths = h.failing_deaths,
               last_death_at = h.last_death_at,
               -- a new secret or scheme replaces the secret outright: a rotation's
               -- previous secret (see rotate_secret) signs no more
               previous_secret = CASE WHEN h.secret = x.secret AND h.signature = x.signature
                                      THEN x.previous_secret END,
               previous_secret_until = CASE WHEN h.secret = x.secret AND h.signature = x.signature
                                            THEN x.previous_secret_until END
         WHERE x.id = update_hook.id
        RETURNING x.* INTO h;
    EXCEPTION
        WHEN foreign_key_violation THEN
            RAISE EXCEPTION 'transport % does not exist', h.transport_id
                USING ERRCODE = 'no_data_found';
        WHEN integrity_constraint_violation THEN
            RAISE EXCEPTION 'invalid hook'
                USING ERRCODE = 'invalid_parameter_value';
    END;
    SELECT * INTO t FROM webhook.transport x WHERE x.id = h.transport_id;
    RETURN webhook._hook_info(h, t);
END
$$;
COMMENT ON FUNCTION webhook.update_hook(bigint, bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure) IS
    'change a hook: NULL arguments keep their value, secret => '''' generates a new secret, filter => ''$'' removes the filter, transform => ''-'' the transform, active => true clears disabled_reason and the failures counted towards webhook.disable_after; returns the hook as webhook.hooks() shows it';
