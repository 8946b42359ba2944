-- webhook upgrade script: 0.2 to 0.3.
--
-- Every change made to the catalog since 0.2 (src/sql/*.sql), for a
-- database that has 0.2: test/e2e/test_upgrade.py checks that 0.2 updated
-- with this script is the very catalog a fresh 0.3 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.3'" to load this file. \quit

-- The worker's fair share and poison events: an event's weight in the
-- claim, before its body is built (src/sql/50_queue.sql).
CREATE FUNCTION webhook._stored_bytes(value jsonb) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_stored_bytes';
COMMENT ON FUNCTION webhook._stored_bytes(jsonb) IS
    'the size of a value uncompressed, read from its header without reading it whole';
CREATE FUNCTION webhook._rendered_bytes(value jsonb, cap bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_rendered_bytes';
COMMENT ON FUNCTION webhook._rendered_bytes(jsonb, bigint) IS
    'about how many bytes a value takes as JSON text, counted without building it, up to past cap';

-- BEGIN limits: what a tenant configures is bounded (webhook.max_*

-- settings, lengths), a transport or hook never moves to another tenant,

-- grants and transforms of dropped roles grant nothing.

CREATE FUNCTION webhook._limit(name text) RETURNS integer
    LANGUAGE c STRICT STABLE AS 'MODULE_PATHNAME', 'webhook_limit';

COMMENT ON FUNCTION webhook._limit(text) IS
    'the value of the setting webhook.<name> (max_timeout in milliseconds)';

CREATE FUNCTION webhook._check_length(val text, what text, max_bytes integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(val) > max_bytes THEN
        RAISE EXCEPTION '% is too long: % bytes, at most %', what, octet_length(val), max_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The limit of %s is %s bytes.', what, max_bytes);
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_length(text, text, integer) IS
    'raise an error when the text is longer than max_bytes bytes';

CREATE FUNCTION webhook._check_transport_limits(t webhook.transport, old webhook.transport)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_timeout constant interval := webhook._limit('max_timeout') * interval '1 ms';
    -- as the setting shows it (the library is loaded now: _limit is its)
    shown constant text := current_setting('webhook.max_timeout');
BEGIN
    IF t.connect_timeout IS DISTINCT FROM old.connect_timeout
       AND t.connect_timeout > max_timeout THEN
        RAISE EXCEPTION 'connect_timeout must be at most webhook.max_timeout (%)', shown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a shorter interval; an administrator sets webhook.max_timeout.';
    END IF;
    IF t.timeout IS DISTINCT FROM old.timeout AND t.timeout > max_timeout THEN
        RAISE EXCEPTION 'timeout must be at most webhook.max_timeout (%)', shown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a shorter interval; an administrator sets webhook.max_timeout.';
    END IF;
    -- its hooks' deliveries, events and attempts are its tenant's: moved,
    -- they would be shown to and sent again for another tenant
    IF old.id IS NOT NULL AND t.tenant IS DISTINCT FROM old.tenant THEN
        RAISE EXCEPTION 'transport % cannot move to another tenant', old.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Create a transport in the other tenant with webhook.create_transport(..., tenant => ...): the history of a transport stays with its tenant.';
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_transport_limits(webhook.transport, webhook.transport) IS
    'raise an error when a transport''s new timeouts exceed webhook.max_timeout, or it moves to another tenant';

CREATE FUNCTION webhook._check_hook_limits(h webhook.hook, old webhook.hook)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    n := webhook._limit('max_retry_steps');
    IF h.retry_schedule IS DISTINCT FROM old.retry_schedule
       AND cardinality(h.retry_schedule) > n THEN
        RAISE EXCEPTION 'retry_schedule has % steps, more than webhook.max_retry_steps (%)',
                        cardinality(h.retry_schedule), n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give fewer, longer steps; an administrator sets webhook.max_retry_steps.';
    END IF;
    n := webhook._limit('max_event_types');
    IF h.event_types IS DISTINCT FROM old.event_types
       AND cardinality(h.event_types) > n THEN
        RAISE EXCEPTION 'event_types has % patterns, more than webhook.max_event_types (%)',
                        cardinality(h.event_types), n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use prefixes such as ORDER_* for families of event types; an administrator sets webhook.max_event_types.';
    END IF;
    -- (a transport that is missing, or not the caller's, "does not exist":
    -- _check_hook says so)
    IF old.id IS NOT NULL AND h.transport_id IS DISTINCT FROM old.transport_id
       AND EXISTS (SELECT 1 FROM webhook.transport t
                    WHERE t.id = h.transport_id AND webhook._manages(t.tenant))
       AND (SELECT t.tenant FROM webhook.transport t WHERE t.id = h.transport_id)
           IS DISTINCT FROM
           (SELECT t.tenant FROM webhook.transport t WHERE t.id = old.transport_id) THEN
        RAISE EXCEPTION 'hook % cannot move to a transport of another tenant', old.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Create a hook on the other tenant''s transport: the history of a hook stays with its tenant.';
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_hook_limits(webhook.hook, webhook.hook) IS
    'raise an error when a hook''s new retry_schedule or event_types exceed their settings, or it moves to another tenant';

CREATE FUNCTION webhook._check_tenant_room(tenant text, what text) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lim constant integer := webhook._limit('max_' || what || '_per_tenant');
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('webhook.tenant ' || tenant, 0));
    IF what = 'transports' THEN
        SELECT count(*) INTO n FROM webhook.transport t
         WHERE t.tenant = _check_tenant_room.tenant;
    ELSE
        SELECT count(*) INTO n FROM webhook.hook h
          JOIN webhook.transport t ON t.id = h.transport_id
         WHERE t.tenant = _check_tenant_room.tenant;
    END IF;
    IF n >= lim THEN
        RAISE EXCEPTION 'tenant "%" has % %, the most webhook.max_%_per_tenant allows',
                        tenant, n, what, what
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = format('Delete one first; an administrator sets webhook.max_%s_per_tenant.', what);
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_tenant_room(text, text) IS
    'raise an error when the tenant has as many transports or hooks as webhook.max_transports_per_tenant or max_hooks_per_tenant allow';

CREATE FUNCTION webhook._forget_dropped_roles() RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM webhook.tenant_grant g
     WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.role);
    UPDATE webhook.hook h
       SET transform = NULL, active = false, updated_at = now(),
           disabled_reason = 'the role that set its transform was dropped: set a transform again, or none, and re-enable it with update_hook(id, active => true)'
     WHERE h.transform_role IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = h.transform_role);
END
$$;

COMMENT ON FUNCTION webhook._forget_dropped_roles() IS
    'after DROP ROLE: delete the grants of dropped roles, and remove the transforms they set, disabling their hooks';

REVOKE EXECUTE ON FUNCTION webhook._forget_dropped_roles() FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook._check_tenant(tenant text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(tenant, 'tenant');
    PERFORM webhook._check_length(tenant, 'tenant', 128);
    IF tenant !~ '^[A-Za-z0-9_-]+$' THEN
        RAISE EXCEPTION 'invalid tenant name "%"', tenant
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Tenant names are made of ASCII letters, digits, "_" and "-".';
    END IF;
    RETURN tenant;
END
$$;

COMMENT ON FUNCTION webhook._check_tenant(text) IS
    'the tenant name, or an error when it is null or malformed';

CREATE OR REPLACE FUNCTION webhook._parse_url(url text, what text,
                                   OUT scheme text, OUT authority text, OUT rest text)
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[];
    hp text[];
BEGIN
    PERFORM webhook._not_null(url, what);
    PERFORM webhook._check_length(url, what, 2048);
    IF url ~ '[[:space:][:cntrl:]]' THEN
        RAISE EXCEPTION '% must not contain spaces or control characters', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Percent-encode them, as in %20.';
    END IF;
    m := regexp_match(url, '^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(.*)$');
    IF m IS NULL OR lower(m[1]) NOT IN ('http', 'https') THEN
        RAISE EXCEPTION '% must be an http or https URL', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write it as http://host[:port]/path or https://host[:port]/path.';
    END IF;
    IF strpos(m[2], '@') > 0 THEN
        RAISE EXCEPTION '% must not contain a user name or password', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give credentials to the transport with auth => ''{"type": "basic", "username": "...", "password": "..."}''.';
    END IF;
    IF m[2] = '' THEN
        RAISE EXCEPTION '% has no host', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write it as http://host[:port]/path or https://host[:port]/path.';
    END IF;
    hp := regexp_match(m[2], '^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?$');
    IF hp IS NULL OR (hp[2] IS NOT NULL AND hp[2]::integer NOT BETWEEN 1 AND 65535) THEN
        RAISE EXCEPTION '% has an invalid host or port', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ports are numbers from 1 to 65535; IPv6 addresses are written in brackets, as in http://[::1]:8080/.';
    END IF;
    IF strpos(m[3], '#') > 0 THEN
        RAISE EXCEPTION '% must not contain a fragment', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fragments ("#...") are never sent to a server; remove it.';
    END IF;
    scheme := lower(m[1]);
    authority := m[2];
    rest := m[3];
END
$$;

COMMENT ON FUNCTION webhook._parse_url(text, text) IS
    'scheme, host[:port] and path of an http(s) URL, or an error';

CREATE OR REPLACE FUNCTION webhook._check_header_name(header text, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._check_length(header, what, 256);
    IF header ~ '[\r\n]' THEN
        RAISE EXCEPTION '% must not contain CR or LF', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF header !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$' THEN
        RAISE EXCEPTION 'invalid % "%"', what, header
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Header names are made of letters, digits and the characters !#$%&''*+-.^_`|~ (RFC 9110 tokens).';
    END IF;
    IF lower(header) IN ('host', 'content-length', 'transfer-encoding', 'connection',
                         'content-type')
       OR lower(header) LIKE 'webhook-%' THEN
        RAISE EXCEPTION 'header "%" is set by webhook and cannot be overridden', header
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Host, Connection, Content-Length, Transfer-Encoding, Content-Type and the webhook-* headers are reserved.';
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_header_name(text, text) IS
    'raise an error unless the text is a header name a hook or transport may set';

CREATE OR REPLACE FUNCTION webhook._check_headers(headers jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    IF headers IS NULL OR jsonb_typeof(headers) = 'null' THEN
        RETURN '{}';
    END IF;
    IF jsonb_typeof(headers) <> 'object' THEN
        RAISE EXCEPTION 'headers must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write headers as {"Name": "value", ...}.';
    END IF;
    IF (SELECT count(*) FROM jsonb_object_keys(headers)) > 64 THEN
        RAISE EXCEPTION 'headers has % headers, at most 64',
                        (SELECT count(*) FROM jsonb_object_keys(headers))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A transport sends at most 64 static headers.';
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(headers) e LOOP
        PERFORM webhook._check_header_name(k, 'header name');
        IF jsonb_typeof(v) <> 'string' THEN
            RAISE EXCEPTION 'value of header "%" must be a string', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Write headers as {"Name": "value", ...}.';
        END IF;
        IF octet_length(v #>> '{}') > 8192 THEN
            RAISE EXCEPTION 'value of header "%" is too long: % bytes, at most 8192',
                            k, octet_length(v #>> '{}')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The limit of a header value is 8192 bytes.';
        END IF;
        -- CR and LF would start a header of the value's choosing
        IF translate(v #>> '{}', E'\t', '') ~ '[[:cntrl:]]' THEN
            RAISE EXCEPTION 'value of header "%" must not contain control characters', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Header values are one line of text; only tabs are allowed.';
        END IF;
    END LOOP;
    RETURN headers;
END
$$;

COMMENT ON FUNCTION webhook._check_headers(jsonb) IS
    'a transport''s headers checked: a JSON object of strings without control characters but tab';

CREATE OR REPLACE FUNCTION webhook._check_auth(auth jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hint constant text := 'Use {"type": "basic", "username": "...", "password": "..."}, {"type": "bearer", "token": "..."} or {"type": "none"}.';
    kind text;
    allowed text[];
    k text;
BEGIN
    IF auth IS NULL OR jsonb_typeof(auth) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(auth) <> 'object' THEN
        RAISE EXCEPTION 'auth must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    IF NOT auth ? 'type' THEN
        RAISE EXCEPTION 'auth has no "type"'
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    IF jsonb_typeof(auth->'type') <> 'string' THEN
        RAISE EXCEPTION 'auth "type" must be a string'
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    kind := auth->>'type';
    allowed := CASE kind WHEN 'none' THEN '{type}'
                         WHEN 'basic' THEN '{type,username,password}'
                         WHEN 'bearer' THEN '{type,token}' END;
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'unknown auth type "%"', kind
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    FOR k IN SELECT jsonb_object_keys(auth) LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION 'unknown key "%" in auth of type "%"', k, kind
                USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END IF;
    END LOOP;

    PERFORM webhook._check_length(auth->>'username', 'auth username', 1024);
    PERFORM webhook._check_length(auth->>'password', 'auth password', 8192);
    PERFORM webhook._check_length(auth->>'token', 'auth token', 8192);
    IF kind = 'none' THEN
        RETURN NULL;
    ELSIF kind = 'basic' THEN
        IF jsonb_typeof(auth->'username') IS DISTINCT FROM 'string'
           OR auth->>'username' = '' THEN
            RAISE EXCEPTION 'auth of type "basic" needs a "username"'
                USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END IF;
        IF jsonb_typeof(auth->'password') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'auth of type "basic" needs a "password"'
                USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END IF;
        IF strpos(auth->>'username', ':') > 0 THEN
            RAISE EXCEPTION 'basic auth username must not contain ":"'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (auth->>'username') || (auth->>'password') ~ '[[:cntrl:]]' THEN
            RAISE EXCEPTION 'basic auth credentials must not contain control characters'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('type', 'basic', 'username', auth->>'username',
                                  'password', auth->>'password');
    ELSE
        IF jsonb_typeof(auth->'token') IS DISTINCT FROM 'string'
           OR auth->>'token' = '' THEN
            RAISE EXCEPTION 'auth of type "bearer" needs a "token"'
                USING ERRCODE = 'invalid_parameter_value', HINT = hint;
        END IF;
        IF (auth->>'token') ~ '[[:cntrl:][:space:]]' THEN
            RAISE EXCEPTION 'bearer token must not contain spaces or control characters'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN jsonb_build_object('type', 'bearer', 'token', auth->>'token');
    END IF;
END
$$;

COMMENT ON FUNCTION webhook._check_auth(jsonb) IS
    'a transport''s auth checked and normalised; NULL for none';

CREATE OR REPLACE FUNCTION webhook._check_file(file text, what text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF file IS NULL OR file = '' THEN
        RETURN NULL;
    END IF;
    PERFORM webhook._check_length(file, what, 4096);
    IF file !~ '^/' OR file ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION '% must be an absolute path', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a file on the database server, such as /etc/ssl/certs/ca.pem; pass '''' to unset it.';
    END IF;
    RETURN file;
END
$$;

COMMENT ON FUNCTION webhook._check_file(text, text) IS
    'an optional absolute file name on the server; '''' means none';

CREATE OR REPLACE FUNCTION webhook._check_transport(t webhook.transport) RETURNS webhook.transport
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
BEGIN
    t.tenant := webhook._check_tenant(t.tenant);
    PERFORM webhook._not_null(t.name, 'name');
    PERFORM webhook._check_length(t.name, 'name', 256);
    IF t.name = '' OR t.name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid transport name'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Transport names are non-empty and have no control characters.';
    END IF;

    u := webhook._parse_url(t.base_url, 'base_url');
    IF strpos(u.rest, '?') > 0 THEN
        RAISE EXCEPTION 'base_url must not contain a query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Put a query in the hook''s path, or an API key in query_key.';
    END IF;

    t.headers := webhook._check_headers(t.headers);
    t.auth := webhook._check_auth(t.auth);

    IF t.query_key = '' THEN
        t.query_key := NULL;
    END IF;
    PERFORM webhook._check_length(t.query_key, 'query_key', 2048);
    IF t.query_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'query_key must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM webhook._not_null(t.connect_timeout, 'connect_timeout');
    PERFORM webhook._not_null(t.timeout, 'timeout');
    -- at least 1 ms, also as the worker reads it (src/queue.c: milliseconds,
    -- rounded); 0 would be no timeout at all to libcurl
    IF t.connect_timeout < interval '1 ms'
       OR (date_part('epoch', t.connect_timeout) * 1000)::bigint < 1 THEN
        RAISE EXCEPTION 'connect_timeout must be at least 1 ms'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an interval such as ''10 s''.';
    END IF;
    IF t.timeout < interval '1 ms'
       OR (date_part('epoch', t.timeout) * 1000)::bigint < 1 THEN
        RAISE EXCEPTION 'timeout must be at least 1 ms'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an interval such as ''30 s''.';
    END IF;

    PERFORM webhook._not_null(t.tls_verify, 'tls_verify');
    t.ca_file := webhook._check_file(t.ca_file, 'ca_file');
    t.client_cert_file := webhook._check_file(t.client_cert_file, 'client_cert_file');
    t.client_key_file := webhook._check_file(t.client_key_file, 'client_key_file');
    IF t.client_key_password = '' THEN
        t.client_key_password := NULL;
    END IF;
    PERFORM webhook._check_length(t.client_key_password, 'client_key_password', 1024);
    IF t.client_key_file IS NOT NULL AND t.client_cert_file IS NULL THEN
        RAISE EXCEPTION 'client_key_file needs client_cert_file'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the client certificate with client_cert_file.';
    END IF;
    IF t.client_key_password IS NOT NULL AND t.client_key_file IS NULL THEN
        RAISE EXCEPTION 'client_key_password needs client_key_file'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the encrypted private key with client_key_file.';
    END IF;

    PERFORM webhook._not_null(t.max_in_flight, 'max_in_flight');
    IF t.max_in_flight < 1 THEN
        RAISE EXCEPTION 'max_in_flight must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the worker holds up to twice as many: more would be a tenant's way to
    -- take the whole worker (and webhook.max_in_flight bounds all anyway)
    IF t.max_in_flight > 10000 THEN
        RAISE EXCEPTION 'max_in_flight must be at most 10000'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'webhook.max_in_flight bounds the requests in flight of all transports together.';
    END IF;
    IF t.max_per_second IS NOT NULL
       AND NOT (t.max_per_second > 0 AND t.max_per_second <= 1000000) THEN
        RAISE EXCEPTION 'max_per_second must be more than 0 and at most 1000000'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give requests per second, such as 50 or 0.5; NULL (or 0 in update_transport) means no limit.';
    END IF;
    RETURN t;
END
$$;

COMMENT ON FUNCTION webhook._check_transport(webhook.transport) IS
    'a transport row checked and normalised before it is stored';

CREATE OR REPLACE FUNCTION webhook._check_event_types(event_types text[]) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p text;
BEGIN
    PERFORM webhook._not_null(event_types, 'event_types');
    IF cardinality(event_types) = 0 THEN
        RAISE EXCEPTION 'event_types must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''{*}'' for every event type.';
    END IF;
    FOREACH p IN ARRAY event_types LOOP
        IF p IS NULL THEN
            RAISE EXCEPTION 'event_types must not contain nulls'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        PERFORM webhook._check_length(p, 'event type pattern', 256);
        IF p !~ '^(\*|[A-Z0-9][A-Z0-9_]*|[A-Z0-9][A-Z0-9_]*_\*)$' THEN
            RAISE EXCEPTION 'invalid event type pattern "%"', p
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Patterns are upper-case event types such as ORDER_SETTLED, prefixes such as ORDER_*, or * for all.';
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT x FROM unnest(event_types) WITH ORDINALITY AS u(x, n)
                  GROUP BY x ORDER BY min(n));
END
$$;

COMMENT ON FUNCTION webhook._check_event_types(text[]) IS
    'event type patterns checked, duplicates removed';

CREATE OR REPLACE FUNCTION webhook._check_hook(h webhook.hook, in_update boolean) RETURNS webhook.hook
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(h.transport_id, 'transport_id');
    IF NOT EXISTS (SELECT 1 FROM webhook.transport t
                    WHERE t.id = h.transport_id AND webhook._manages(t.tenant)) THEN
        RAISE EXCEPTION 'transport % does not exist', h.transport_id
            USING ERRCODE = 'no_data_found';
    END IF;

    PERFORM webhook._check_length(h.uid, 'uid', 256);
    PERFORM webhook._not_null(h.path, 'path');
    PERFORM webhook._check_length(h.path, 'path', 2048);
    IF h.path ~ '[[:space:][:cntrl:]]' THEN
        RAISE EXCEPTION 'path must not contain spaces or control characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Percent-encode them, as in %20.';
    END IF;
    IF h.path <> '' AND h.path !~ '^[/?]' THEN
        RAISE EXCEPTION 'path must be empty or start with "/" or "?"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The path is appended to the transport''s base_url as it is.';
    END IF;
    IF strpos(h.path, '#') > 0 THEN
        RAISE EXCEPTION 'path must not contain a fragment'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fragments ("#...") are never sent to a server; remove it.';
    END IF;

    h.event_types := webhook._check_event_types(h.event_types);

    PERFORM webhook._not_null(h.signature, 'signature');
    IF h.signature NOT IN ('standard', 'hmac-sha256', 'hmac-sha1', 'none') THEN
        RAISE EXCEPTION 'unknown signature scheme "%"', h.signature
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid schemes are "standard", "hmac-sha256", "hmac-sha1" and "none".';
    END IF;
    PERFORM webhook._not_null(h.payload_format, 'payload_format');
    IF h.payload_format NOT IN ('standard', 'thin', 'envelope', 'row') THEN
        RAISE EXCEPTION 'unknown payload format "%"', h.payload_format
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid formats are "standard", "thin", "envelope" and "row".';
    END IF;

    PERFORM webhook._check_length(h.secret, 'secret', 1024);
    PERFORM webhook._check_length(h.filter::text, 'filter', 4096);
    IF h.signature = 'none' THEN
        h.secret := NULL;
    ELSIF h.secret IS NULL THEN
        h.secret := webhook._generate_secret();
    ELSIF h.secret = '' THEN
        RAISE EXCEPTION 'secret must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN in_update
                              THEN 'Pass secret => NULL to keep the secret, or omit it.'
                              ELSE 'Pass no secret to have one generated.' END;
    ELSIF h.signature = 'standard' AND NOT webhook._secret_is_valid(h.secret) THEN
        RAISE EXCEPTION 'invalid secret for signature scheme "standard"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Standard Webhooks secrets are "whsec_" followed by the base64 of 24 to 64 bytes; '
                         || CASE WHEN in_update
                                 THEN 'pass secret => '''' to have a new one generated.'
                                 ELSE 'pass no secret to have one generated.' END;
    END IF;

    IF h.signature IN ('hmac-sha256', 'hmac-sha1') THEN
        h.signature_header := coalesce(h.signature_header, 'X-Signature');
        PERFORM webhook._check_header_name(h.signature_header, 'signature_header');
        IF lower(h.signature_header) IN ('authorization', 'user-agent', 'expect') THEN
            RAISE EXCEPTION 'signature_header cannot be "%"', h.signature_header
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name a header of its own, such as X-Signature.';
        END IF;
    ELSIF h.signature_header IS NOT NULL THEN
        RAISE EXCEPTION 'signature scheme "%" takes no signature_header', h.signature
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only "hmac-sha256" and "hmac-sha1" send the signature in a header of your choice.';
    END IF;

    h.retry_schedule := webhook._check_retry_schedule(h.retry_schedule);
    PERFORM webhook._not_null(h.active, 'active');

    PERFORM webhook._not_null(h.ordered, 'ordered');
    IF h.ordered NOT IN ('none', 'hook', 'resource') THEN
        RAISE EXCEPTION 'unknown ordering "%"', h.ordered
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid orderings are "none", "hook" (one delivery at a time, in event order) and "resource" (the same per resource id).';
    END IF;
    PERFORM webhook._not_null(h.on_dead, 'on_dead');
    IF h.on_dead NOT IN ('continue', 'stop') THEN
        RAISE EXCEPTION 'unknown on_dead "%"', h.on_dead
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'After a delivery dies, an ordered hook goes on with the next one ("continue") or is disabled ("stop").';
    END IF;

    IF h.transform IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_proc p
                        WHERE p.oid = h.transform
                          AND p.prorettype = 'jsonb'::regtype
                          AND p.pronargs = 1
                          AND p.proargtypes[0] = 'webhook.event'::regtype
                          AND p.prokind = 'f' AND NOT p.proretset) THEN
            RAISE EXCEPTION 'transform must be a function of one webhook.event returning jsonb'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Such as CREATE FUNCTION my_body(e webhook.event) RETURNS jsonb LANGUAGE sql AS $f$ SELECT jsonb_build_object(''id'', e.resource_id) $f$.';
        END IF;
        IF NOT has_function_privilege(webhook._caller(), h.transform, 'EXECUTE') THEN
            RAISE EXCEPTION 'permission denied for function %', h.transform
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'The worker runs the transform with the rights of the role that sets it.';
        END IF;
    END IF;
    RETURN h;
END
$$;

COMMENT ON FUNCTION webhook._check_hook(webhook.hook, boolean) IS
    'a hook row checked and normalised before it is stored (generates a missing secret)';

CREATE OR REPLACE FUNCTION webhook._transport_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (OLD is NULL for an INSERT)
    PERFORM webhook._check_transport_limits(NEW, OLD);
    NEW := webhook._check_transport(NEW);
    -- files on the database server: only for those who manage every tenant
    -- (a tenant could otherwise read, or present, another one's key)
    IF (NEW.ca_file, NEW.client_cert_file, NEW.client_key_file) IS DISTINCT FROM
       (CASE WHEN TG_OP = 'UPDATE' THEN (OLD.ca_file, OLD.client_cert_file, OLD.client_key_file)
             ELSE (NULL::text, NULL::text, NULL::text) END)
       AND webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
        RAISE EXCEPTION 'only members of webhook_admin set ca_file, client_cert_file and client_key_file'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'They name files on the database server: ask an administrator to set them.';
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM webhook._check_tenant_room(NEW.tenant, 'transports');
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION webhook._transport_written() IS
    'trigger: a transport row is checked and normalised however it is written';

CREATE OR REPLACE FUNCTION webhook._hook_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a transform whose role is gone is removed, the hook disabled, and
    -- nothing else changed (webhook._forget_dropped_roles(), after DROP
    -- ROLE, whoever drops it): nothing to check
    IF TG_OP = 'UPDATE' AND OLD.transform IS NOT NULL AND NEW.transform IS NULL
       AND NOT NEW.active
       AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = OLD.transform_role)
       AND (NEW.transport_id, NEW.path, NEW.event_types, NEW.secret, NEW.signature,
            NEW.signature_header, NEW.payload_format, NEW.retry_schedule, NEW.ordered,
            NEW.on_dead, NEW.filter::text)
           IS NOT DISTINCT FROM
           (OLD.transport_id, OLD.path, OLD.event_types, OLD.secret, OLD.signature,
            OLD.signature_header, OLD.payload_format, OLD.retry_schedule, OLD.ordered,
            OLD.on_dead, OLD.filter::text) THEN
        NEW.transform_role := NULL;
        RETURN NEW;
    END IF;
    PERFORM webhook._check_hook_limits(NEW, OLD);
    NEW := webhook._check_hook(NEW, TG_OP = 'UPDATE');
    -- re-enabled, however: why it was disabled (or paused) no longer holds,
    -- nor does its run of failures (webhook.disable_after)
    IF TG_OP = 'UPDATE' AND NEW.active AND NOT OLD.active THEN
        NEW.disabled_reason := NULL;
        NEW.failing_since := NULL;
        NEW.failing_deaths := 0;
        NEW.last_death_at := NULL;
    END IF;
    -- the worker runs the transform as the role that set it, never another:
    -- the writer, unless it copies a row (a restore) of a role it belongs to
    IF NEW.transform IS NULL THEN
        NEW.transform_role := NULL;
    ELSIF TG_OP = 'UPDATE' AND NEW.transform IS NOT DISTINCT FROM OLD.transform THEN
        NEW.transform_role := OLD.transform_role;
    ELSE
        -- code run inside the delivery worker: for those who manage every tenant
        IF webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
            RAISE EXCEPTION 'only members of webhook_admin set transforms'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A transform runs inside the delivery worker: ask an administrator to set it.';
        END IF;
        IF TG_OP = 'UPDATE' OR NEW.transform_role IS NULL
           OR NOT pg_has_role(webhook._caller(), NEW.transform_role, 'MEMBER') THEN
            NEW.transform_role := webhook._caller();
        END IF;
        -- its owner could otherwise change what runs with these rights
        IF NOT EXISTS (SELECT 1 FROM pg_proc p
                        WHERE p.oid = NEW.transform
                          AND pg_has_role(p.proowner, NEW.transform_role, 'USAGE')) THEN
            RAISE EXCEPTION 'transform % is owned by a role without the rights of %',
                            NEW.transform, NEW.transform_role
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'The worker runs a transform as the role that sets it: use a function owned by that role, or by one with its rights.';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM webhook._check_tenant_room(
            (SELECT t.tenant FROM webhook.transport t WHERE t.id = NEW.transport_id), 'hooks');
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION webhook._hook_written() IS
    'trigger: a hook row is checked and normalised however it is written';

CREATE OR REPLACE FUNCTION webhook.update_transport(
        id bigint,
        name text DEFAULT NULL,
        base_url text DEFAULT NULL,
        tenant text DEFAULT NULL,
        headers jsonb DEFAULT NULL,
        auth jsonb DEFAULT NULL,
        query_key text DEFAULT NULL,
        connect_timeout interval DEFAULT NULL,
        timeout interval DEFAULT NULL,
        tls_verify boolean DEFAULT NULL,
        ca_file text DEFAULT NULL,
        client_cert_file text DEFAULT NULL,
        client_key_file text DEFAULT NULL,
        client_key_password text DEFAULT NULL,
        max_in_flight integer DEFAULT NULL,
        max_per_second double precision DEFAULT NULL)
    RETURNS webhook.transport_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.transport;
    t webhook.transport;
BEGIN
    PERFORM webhook._not_null(id, 'id');
    -- another tenant's row is neither locked nor waited for
    SELECT * INTO old FROM webhook.transport x
     WHERE x.id = update_transport.id AND webhook._manages(x.tenant)
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transport % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;

    -- NULL keeps a value; '' unsets an optional text, {"type":"none"} the auth
    t := old;
    t.name := coalesce(name, old.name);
    t.base_url := coalesce(base_url, old.base_url);
    t.tenant := coalesce(tenant, old.tenant);
    t.headers := coalesce(headers, old.headers);
    t.auth := CASE WHEN auth IS NULL THEN old.auth ELSE auth END;
    t.query_key := coalesce(query_key, old.query_key);
    t.connect_timeout := coalesce(connect_timeout, old.connect_timeout);
    t.timeout := coalesce(timeout, old.timeout);
    t.tls_verify := coalesce(tls_verify, old.tls_verify);
    t.ca_file := coalesce(ca_file, old.ca_file);
    t.client_cert_file := coalesce(client_cert_file, old.client_cert_file);
    t.client_key_file := coalesce(client_key_file, old.client_key_file);
    t.client_key_password := coalesce(client_key_password, old.client_key_password);
    t.max_in_flight := coalesce(max_in_flight, old.max_in_flight);
    t.max_per_second := CASE WHEN max_per_second = 0 THEN NULL
                             ELSE coalesce(max_per_second, old.max_per_second) END;
    t := webhook._check_transport(t);
    PERFORM webhook._check_manages(t.tenant);
    PERFORM webhook._check_transport_limits(t, old);

    IF (t.tenant, t.name) IS DISTINCT FROM (old.tenant, old.name)
       AND EXISTS (SELECT 1 FROM webhook.transport x
                    WHERE x.tenant = t.tenant AND x.name = t.name) THEN
        RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name.';
    END IF;

    BEGIN
        UPDATE webhook.transport x
           SET tenant = t.tenant, name = t.name, base_url = t.base_url,
               headers = t.headers, auth = t.auth, query_key = t.query_key,
               connect_timeout = t.connect_timeout, timeout = t.timeout,
               tls_verify = t.tls_verify, ca_file = t.ca_file,
               client_cert_file = t.client_cert_file,
               client_key_file = t.client_key_file,
               client_key_password = t.client_key_password,
               max_in_flight = t.max_in_flight, max_per_second = t.max_per_second,
               updated_at = now()
         WHERE x.id = update_transport.id
        RETURNING x.* INTO t;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Choose another name.';
        WHEN integrity_constraint_violation THEN
            RAISE EXCEPTION 'invalid transport'
                USING ERRCODE = 'invalid_parameter_value';
    END;

    IF NOT t.tls_verify AND old.tls_verify THEN
        RAISE WARNING 'TLS verification is disabled for transport "%"', t.name
            USING HINT = 'Any server can impersonate the receiver; give the receiver''s CA with ca_file instead.';
    END IF;

    RETURN webhook._transport_info(t);
END
$$;

COMMENT ON FUNCTION webhook.update_transport(bigint, text, text, text, jsonb, jsonb, text,
                                             interval, interval, boolean, text, text, text,
                                             text, integer, double precision) IS
    'change a transport: NULL arguments keep their value, '''' unsets an optional text, auth => ''{"type":"none"}'' removes credentials, max_per_second => 0 the rate limit; returns the transport as webhook.transports() shows it';

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
    -- before the patterns are looked at one by one
    PERFORM webhook._check_hook_limits(h, NULL);
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

COMMENT ON FUNCTION webhook.create_hook(bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure) IS
    'subscribe a transport to event types; without a secret one is generated (see webhook.hook_secret); returns the hook id';

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
    PERFORM webhook._check_hook_limits(h, old);
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
    h.event_types := event_types;
    PERFORM webhook._check_hook_limits(h, NULL);
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

COMMENT ON FUNCTION webhook.register(text, text[], text, text, boolean) IS
    'make or reuse a transport for the URL''s origin and a hook for its path; with check_reachable, first checks that the URL answers a HEAD request';

CREATE OR REPLACE FUNCTION webhook.grant_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
        RAISE EXCEPTION 'permission denied to grant tenants'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only members of webhook_admin grant tenants.';
    END IF;
    PERFORM webhook._not_null(role, 'role');
    -- a number given as the role (a regrole of an oid) may name no role
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION 'role with OID % does not exist', role::oid
            USING ERRCODE = 'undefined_object',
                  HINT = 'Name an existing role.';
    END IF;
    PERFORM webhook._check_tenant(tenant);
    IF role IN ('webhook_tenant'::regrole, 'webhook_admin'::regrole) THEN
        RAISE EXCEPTION 'cannot grant a tenant to role %', role
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Grant tenants to the roles that log in, or to a group role of yours.';
    END IF;
    -- grants of roles dropped since go: their oid may be reused one day
    DELETE FROM webhook.tenant_grant g
     WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = g.role);
    INSERT INTO webhook.tenant_grant AS g (role, tenant) VALUES (role, tenant)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- into the schema; row-level security does the rest
    IF NOT pg_has_role(role, 'webhook_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT webhook_tenant TO %I',
                       (SELECT r.rolname FROM pg_roles r WHERE r.oid = role));
    END IF;
    RETURN n > 0;
END
$$;

COMMENT ON FUNCTION webhook.grant_tenant(regrole, text) IS
    'let a role (and its members) manage a tenant; returns false if it already did';

REVOKE EXECUTE ON FUNCTION webhook.grant_tenant(regrole, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION webhook.grant_tenant(regrole, text) TO webhook_admin;

SELECT pg_catalog.pg_extension_config_dump('webhook.tenant_grant',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role)');

-- END limits

-- Wake-ups that name their hook (src/sql/20_functions.sql): redeliver(),
-- replay() and ping() tell the worker which hook has work, so that it need
-- not look at every hook; webhook.wake(), which names none, is an admin's.
-- ping()'s delivery is due when inserted, as redeliver()'s and replay()'s
-- are, never below a floor of the worker's claim.
REVOKE EXECUTE ON FUNCTION webhook.wake() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.wake() TO webhook_admin;

CREATE FUNCTION webhook._wake_for(hook_id bigint) RETURNS void
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_wake_for';
COMMENT ON FUNCTION webhook._wake_for(bigint) IS
    'wake the delivery worker when the current transaction commits, to look at this hook';
REVOKE EXECUTE ON FUNCTION webhook._wake_for(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook.redeliver(delivery_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d webhook.delivery;
    new_id bigint;
BEGIN
    PERFORM webhook._not_null(delivery_id, 'delivery_id');
    SELECT x.* INTO d
      FROM webhook.delivery x
      JOIN webhook.hook h ON h.id = x.hook_id
      JOIN webhook.transport t ON t.id = h.transport_id
     WHERE x.id = delivery_id AND webhook._manages(t.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % does not exist', delivery_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM webhook._check_hook_active(d.hook_id);
    -- due when inserted, by a transaction that has its id (the worker's
    -- claim relies on it: src/queue.c, floors)
    PERFORM pg_current_xact_id();
    INSERT INTO webhook.delivery AS x (event_id, hook_id, state, next_attempt_at)
    VALUES (d.event_id, d.hook_id, 'pending', clock_timestamp())
    RETURNING x.id INTO new_id;
    PERFORM webhook._wake_for(d.hook_id);
    RETURN new_id;
END
$$;
CREATE OR REPLACE FUNCTION webhook.replay(hook_id bigint, since timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM webhook._not_null(hook_id, 'hook_id');
    PERFORM webhook._not_null(since, 'since');
    PERFORM webhook._check_hook_active(hook_id);
    -- due when inserted, as in redeliver()
    PERFORM pg_current_xact_id();
    -- events already on their way to the hook are not queued twice
    INSERT INTO webhook.delivery (event_id, hook_id, state, next_attempt_at)
    SELECT e.id, replay.hook_id, 'pending', clock_timestamp()
      FROM webhook.event e
     WHERE e.created_at >= since
       AND EXISTS (SELECT 1 FROM webhook.delivery d
                    WHERE d.event_id = e.id AND d.hook_id = replay.hook_id)
       AND NOT EXISTS (SELECT 1 FROM webhook.delivery d
                        WHERE d.event_id = e.id AND d.hook_id = replay.hook_id
                          AND d.state IN ('pending', 'delivering', 'failed'))
     ORDER BY e.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM webhook._wake_for(replay.hook_id);
    END IF;
    RETURN n;
END
$$;
CREATE OR REPLACE FUNCTION webhook.ping(hook_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hook_tenant text;
    ev bigint;
    result bigint;
BEGIN
    PERFORM webhook._check_hook_active(hook_id);
    SELECT t.tenant INTO hook_tenant
      FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id
     WHERE h.id = ping.hook_id;
    INSERT INTO webhook.event (tenant, event_type, payload)
    VALUES (hook_tenant, 'WEBHOOK_PING',
            pg_catalog.jsonb_build_object('hookId', hook_id, 'zen', 'Deliveries are at least once.'))
    RETURNING id INTO ev;
    -- due when inserted, after the event gave the transaction its id: never
    -- below a floor of the worker's claim (src/queue.c)
    INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at)
    VALUES (ev, ping.hook_id, pg_catalog.clock_timestamp())
    RETURNING id INTO result;
    PERFORM webhook._wake_for(ping.hook_id);
    RETURN result;
END
$$;
