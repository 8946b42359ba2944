-- webhook upgrade script: 0.1 to 0.2.
--
-- Every change made to the catalog since 0.1 (src/sql/*.sql), for a
-- database that has 0.1: test/e2e/test_upgrade.py checks that 0.1 updated
-- with this script is the very catalog a fresh 0.2 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.2'" to load this file. \quit

-- Defaults defined once: the retry schedule (webhook._default_retry_schedule).
CREATE FUNCTION webhook._default_retry_schedule() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '{5s,5min,30min,2h,5h,10h,10h}' $$;
COMMENT ON FUNCTION webhook._default_retry_schedule() IS
    'the retry schedule of a hook unless told otherwise, as text';

ALTER TABLE webhook.hook
    ALTER COLUMN retry_schedule SET DEFAULT webhook._default_retry_schedule()::interval[];

CREATE OR REPLACE FUNCTION webhook._check_retry_schedule(retry_schedule interval[]) RETURNS interval[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval;
BEGIN
    PERFORM webhook._not_null(retry_schedule, 'retry_schedule');
    -- '{}': one attempt, no retry (for receivers that poll for what they missed)
    IF cardinality(retry_schedule) = 0 THEN
        RETURN '{}';
    END IF;
    -- the worker reads step n as retry_schedule[n]
    IF array_ndims(retry_schedule) <> 1 OR array_lower(retry_schedule, 1) <> 1 THEN
        RAISE EXCEPTION 'retry_schedule must be a one-dimensional array starting at 1'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Give the wait before each retry, such as ''%s''.',
                                webhook._default_retry_schedule());
    END IF;
    FOREACH step IN ARRAY retry_schedule LOOP
        IF step IS NULL OR step <= interval '0' OR step > interval '30 days' THEN
            RAISE EXCEPTION 'every step of retry_schedule must be positive and at most 30 days'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Give the wait before each retry, such as ''%s''.',
                                    webhook._default_retry_schedule());
        END IF;
    END LOOP;
    RETURN retry_schedule;
END
$$;

CREATE OR REPLACE FUNCTION webhook.create_hook(
        transport_id bigint,
        event_types text[] DEFAULT '{*}',
        path text DEFAULT '',
        secret text DEFAULT NULL,
        signature text DEFAULT 'standard',
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT 'standard',
        retry_schedule interval[] DEFAULT webhook._default_retry_schedule()::interval[],
        active boolean DEFAULT true,
        ordered text DEFAULT 'none',
        on_dead text DEFAULT 'continue',
        filter jsonpath DEFAULT NULL,
        transform regprocedure DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
    new_id bigint;
BEGIN
    h.transport_id := transport_id;
    h.event_types := event_types;
    h.path := path;
    h.secret := secret;
    h.signature := signature;
    h.signature_header := signature_header;
    h.payload_format := payload_format;
    h.retry_schedule := retry_schedule;
    h.active := active;
    h.ordered := ordered;
    h.on_dead := on_dead;
    h.filter := filter;
    h.transform := transform;
    h := webhook._check_hook(h, false);

    BEGIN
        INSERT INTO webhook.hook AS x
               (transport_id, path, event_types, secret, signature,
                signature_header, payload_format, retry_schedule, active,
                ordered, on_dead, filter, transform, transform_role)
        VALUES (h.transport_id, h.path, h.event_types, h.secret, h.signature,
                h.signature_header, h.payload_format, h.retry_schedule, h.active,
                h.ordered, h.on_dead, h.filter, h.transform, h.transform_role)
        RETURNING x.id INTO new_id;
    EXCEPTION
        WHEN foreign_key_violation THEN
            -- the transport was deleted meanwhile
            RAISE EXCEPTION 'transport % does not exist', h.transport_id
                USING ERRCODE = 'no_data_found';
        WHEN integrity_constraint_violation THEN
            -- never let the failing row (and its secret) into a message
            RAISE EXCEPTION 'invalid hook'
                USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION webhook.register(
        url text,
        event_types text[] DEFAULT '{*}',
        secret text DEFAULT NULL,
        tenant text DEFAULT 'default',
        check_reachable boolean DEFAULT true)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
    origin text;
    status integer;
    tid bigint;
    t webhook.transport;
    h webhook.hook;
    hid bigint;
BEGIN
    -- check everything before the network is touched
    u := webhook._parse_url(url, 'url');
    origin := u.scheme || '://' || lower(u.authority);
    PERFORM webhook._check_tenant(tenant);
    PERFORM webhook._check_manages(tenant);
    PERFORM webhook._not_null(check_reachable, 'check_reachable');
    h.path := u.rest;
    h.event_types := webhook._check_event_types(event_types);
    h.secret := secret;
    h.signature := 'standard';
    h.payload_format := 'standard';
    h.retry_schedule := webhook._default_retry_schedule()::interval[];
    h.active := true;
    IF secret IS NOT NULL THEN
        IF secret = '' OR NOT webhook._secret_is_valid(secret) THEN
            RAISE EXCEPTION 'invalid secret for signature scheme "standard"'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Standard Webhooks secrets are "whsec_" followed by the base64 of 24 to 64 bytes; pass no secret to have one generated.';
        END IF;
    END IF;

    IF check_reachable THEN
        -- with the TLS settings (CA, client certificate) of the transport
        -- that would be reused, if there is one
        SELECT x.* INTO t FROM webhook.transport x
         WHERE x.tenant = register.tenant AND x.base_url = origin
         ORDER BY x.name = origin DESC, x.id
         LIMIT 1;
        status := webhook._http_head(url, 5000, coalesce(t.tls_verify, true), t.ca_file,
                                     t.client_cert_file, t.client_key_file,
                                     t.client_key_password);
        -- any answer but an error counts; 405 is a receiver that only takes POST
        IF status IS NULL OR (status >= 400 AND status <> 405) THEN
            RETURN jsonb_build_object('status', 404,
                                      'message', 'Client not responding at ' || url);
        END IF;
    END IF;

    -- one registration of an origin at a time
    PERFORM pg_advisory_xact_lock(hashtextextended('webhook.register ' || tenant || ' ' || origin, 0));

    SELECT x.id INTO tid FROM webhook.transport x
     WHERE x.tenant = register.tenant AND x.base_url = origin
     ORDER BY x.name = origin DESC, x.id
     LIMIT 1;
    IF tid IS NULL THEN
        tid := webhook.create_transport(name => origin, base_url => origin, tenant => tenant);
    END IF;

    SELECT x.id INTO hid FROM webhook.hook x
     WHERE x.transport_id = tid AND x.path = h.path
       AND x.event_types @> h.event_types AND x.event_types <@ h.event_types
     ORDER BY x.id
     LIMIT 1;
    IF hid IS NULL THEN
        hid := webhook.create_hook(transport_id => tid, event_types => h.event_types,
                                   path => h.path, secret => secret);
    ELSE
        PERFORM webhook.update_hook(hid, active => true, secret => secret);
    END IF;

    RETURN jsonb_build_object('status', 200,
                              'message', 'Registered client at: ' || url,
                              'hook_id', hid);
END
$$;
