-- webhook install script, code part 3: the validators, which the SQL API's
-- pieces share (31 to 35: transports, hooks, register, deliveries, views)
-- and every write goes through, whoever makes it (30_policy.sql).  The
-- conventions below hold for every part 3.
--
-- Every function here validates all of its arguments before it changes
-- anything, so a refused call leaves the catalog as it was, and it raises
-- errors with a specific SQLSTATE, a lower-case message and a hint.
-- Secrets (hook secrets, auth passwords and tokens, query keys, key
-- passwords) never appear in a message, a listing or a view: listings print
-- "********" instead, and webhook.hook_secret() is the only way back to a
-- hook's secret.  The catalog's CHECK constraints are a second line of
-- defence only: their errors print the failing row, secrets included, so the
-- functions check everything first and never let such an error through.
--
-- Errors: invalid arguments raise invalid_parameter_value (22023), missing
-- required arguments null_value_not_allowed (22004), unknown transport, hook
-- and delivery ids no_data_found (P0002), a transport name already used in
-- the tenant duplicate_object (42710), and acting on an inactive hook
-- object_not_in_prerequisite_state (55000).
--
-- Every function runs with search_path = pg_catalog, pg_temp and names the
-- extension's objects with their schema.

-- Raise null_value_not_allowed when a required argument is NULL.
CREATE OR REPLACE FUNCTION webhook_internal.not_null(val anyelement, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF val IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', what
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.not_null(anyelement, text) IS
    'raise an error when the required argument is null';

-- Raise invalid_parameter_value when a text is longer than max_bytes; the
-- value itself is never printed (it may be a secret, or megabytes).
CREATE OR REPLACE FUNCTION webhook_internal.check_length(val text, what text, max_bytes integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(val) > max_bytes THEN
        RAISE EXCEPTION '% is too long: % bytes, at most %', what, octet_length(val), max_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The limit of %s is %s bytes.', what, max_bytes);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_length(text, text, integer) IS
    'raise an error when the text is longer than max_bytes bytes';

-- A tenant's id: what the domain webhook.tenant_id allows, at most 128
-- bytes.  emit() (C) checks its tenant with this function too.
CREATE OR REPLACE FUNCTION webhook_internal.check_tenant(tenant text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(tenant, 'tenant');
    PERFORM webhook_internal.check_length(tenant, 'tenant', 128);
    BEGIN
        PERFORM tenant::webhook.tenant_id;
    EXCEPTION WHEN check_violation THEN
        RAISE EXCEPTION 'invalid tenant name "%"', tenant
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Tenant names are made of ASCII letters, digits, "_" and "-".';
    END;
    RETURN tenant;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_tenant(text) IS
    'the tenant name, or an error when it is null or malformed';

-- One of an enumeration's values (the type of kind, whose value is not
-- read), or an error that lists them; NULL stays NULL.
CREATE OR REPLACE FUNCTION webhook_internal.check_choice(value text, what text, kind anyenum)
    RETURNS anyenum
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    choices text[] := pg_catalog.enum_range(kind)::text[];
BEGIN
    IF value IS NOT NULL AND value <> ALL (choices) THEN
        RAISE EXCEPTION 'unknown % "%"', what, value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('Valid values are %s and "%s" (\dT+ %s says what each means).',
                                           pg_catalog.array_to_string(
                                               (SELECT pg_catalog.array_agg(pg_catalog.format('"%s"', c))
                                                  FROM pg_catalog.unnest(choices[1:pg_catalog.cardinality(choices) - 1]) c),
                                               ', '),
                                           choices[pg_catalog.cardinality(choices)],
                                           pg_catalog.pg_typeof(kind));
    END IF;
    RETURN value;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_choice(text, text, anyenum) IS
    'the value as the enumeration the third argument is of, or an error naming the valid values';

-- Split an http(s) URL into scheme, authority (host[:port]) and the rest
-- (path and query).  The URL itself never appears in a message: it may carry
-- credentials.  what is the argument's name, for the messages.
CREATE OR REPLACE FUNCTION webhook_internal.parse_url(url text, what text,
                                   OUT scheme text, OUT authority text, OUT rest text)
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[];
    hp text[];
BEGIN
    PERFORM webhook_internal.not_null(url, what);
    PERFORM webhook_internal.check_length(url, what, 2048);
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
COMMENT ON FUNCTION webhook_internal.parse_url(text, text) IS
    'scheme, host[:port] and path of an http(s) URL, or an error';

-- Header names are RFC 9110 tokens; names the extension sets itself, and the
-- ones that frame the message, cannot be overridden.
CREATE OR REPLACE FUNCTION webhook_internal.check_header_name(header text, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.check_length(header, what, 256);
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
COMMENT ON FUNCTION webhook_internal.check_header_name(text, text) IS
    'raise an error unless the text is a header name a hook or transport may set';

-- A transport's static headers: a JSON object of strings, or SQL/JSON null
-- for none.  Values are never printed: they may be API keys.
CREATE OR REPLACE FUNCTION webhook_internal.check_headers(headers jsonb) RETURNS jsonb
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
        PERFORM webhook_internal.check_header_name(k, 'header name');
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
COMMENT ON FUNCTION webhook_internal.check_headers(jsonb) IS
    'a transport''s headers checked: a JSON object of strings without control characters but tab';

-- auth normalised to {"type":"basic","username","password"} or
-- {"type":"bearer","token"}; NULL, JSON null and {"type":"none"} mean none.
CREATE OR REPLACE FUNCTION webhook_internal.check_auth(auth jsonb) RETURNS jsonb
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

    PERFORM webhook_internal.check_length(auth->>'username', 'auth username', 1024);
    PERFORM webhook_internal.check_length(auth->>'password', 'auth password', 8192);
    PERFORM webhook_internal.check_length(auth->>'token', 'auth token', 8192);
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
COMMENT ON FUNCTION webhook_internal.check_auth(jsonb) IS
    'a transport''s auth checked and normalised; NULL for none';

-- An optional file name: NULL or '' for none, else an absolute path.
CREATE OR REPLACE FUNCTION webhook_internal.check_file(file text, what text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF file IS NULL OR file = '' THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_internal.check_length(file, what, 4096);
    IF file !~ '^/' OR file ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION '% must be an absolute path', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a file on the database server, such as /etc/ssl/certs/ca.pem; pass '''' to unset it.';
    END IF;
    RETURN file;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_file(text, text) IS
    'an optional absolute file name on the server; '''' means none';

-- Check a whole transport row as it is about to be stored and return it
-- normalised.  Shared by create_transport and update_transport.
CREATE OR REPLACE FUNCTION webhook_internal.check_transport(t webhook.transport) RETURNS webhook.transport
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
BEGIN
    t.tenant := webhook_internal.check_tenant(t.tenant);
    PERFORM webhook_internal.not_null(t.name, 'name');
    PERFORM webhook_internal.check_length(t.name, 'name', 256);
    IF t.name = '' OR t.name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid transport name'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Transport names are non-empty and have no control characters.';
    END IF;

    u := webhook_internal.parse_url(t.base_url, 'base_url');
    IF strpos(u.rest, '?') > 0 THEN
        RAISE EXCEPTION 'base_url must not contain a query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Put a query in the hook''s path, or an API key in query_key.';
    END IF;

    t.headers := webhook_internal.check_headers(t.headers);
    t.auth := webhook_internal.check_auth(t.auth);

    IF t.query_key = '' THEN
        t.query_key := NULL;
    END IF;
    PERFORM webhook_internal.check_length(t.query_key, 'query_key', 2048);
    IF t.query_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'query_key must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM webhook_internal.not_null(t.connect_timeout, 'connect_timeout');
    PERFORM webhook_internal.not_null(t.timeout, 'timeout');
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

    PERFORM webhook_internal.not_null(t.tls_verify, 'tls_verify');
    t.ca_file := webhook_internal.check_file(t.ca_file, 'ca_file');
    t.client_cert_file := webhook_internal.check_file(t.client_cert_file, 'client_cert_file');
    t.client_key_file := webhook_internal.check_file(t.client_key_file, 'client_key_file');
    IF t.client_key_password = '' THEN
        t.client_key_password := NULL;
    END IF;
    PERFORM webhook_internal.check_length(t.client_key_password, 'client_key_password', 1024);
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

    PERFORM webhook_internal.not_null(t.max_in_flight, 'max_in_flight');
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
COMMENT ON FUNCTION webhook_internal.check_transport(webhook.transport) IS
    'a transport row checked and normalised before it is stored';

-- Event type patterns: exact names (ORDER_SETTLED), prefixes (ORDER_*) or *.
-- Returned without duplicates, in the order given.
CREATE OR REPLACE FUNCTION webhook_internal.check_event_types(event_types text[]) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p text;
BEGIN
    PERFORM webhook_internal.not_null(event_types, 'event_types');
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
        PERFORM webhook_internal.check_length(p, 'event type pattern', 256);
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
COMMENT ON FUNCTION webhook_internal.check_event_types(text[]) IS
    'event type patterns checked, duplicates removed';

CREATE OR REPLACE FUNCTION webhook_internal.check_retry_schedule(retry_schedule interval[]) RETURNS interval[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval;
BEGIN
    PERFORM webhook_internal.not_null(retry_schedule, 'retry_schedule');
    -- '{}': one attempt, no retry (for receivers that poll for what they missed)
    IF cardinality(retry_schedule) = 0 THEN
        RETURN '{}';
    END IF;
    -- the worker reads step n as retry_schedule[n]
    IF array_ndims(retry_schedule) <> 1 OR array_lower(retry_schedule, 1) <> 1 THEN
        RAISE EXCEPTION 'retry_schedule must be a one-dimensional array starting at 1'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Give the wait before each retry, such as ''%s''.',
                                webhook_internal.default_retry_schedule());
    END IF;
    FOREACH step IN ARRAY retry_schedule LOOP
        IF step IS NULL OR step <= interval '0' OR step > interval '30 days' THEN
            RAISE EXCEPTION 'every step of retry_schedule must be positive and at most 30 days'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Give the wait before each retry, such as ''%s''.',
                                    webhook_internal.default_retry_schedule());
        END IF;
    END LOOP;
    RETURN retry_schedule;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_retry_schedule(interval[]) IS
    'a retry schedule checked: a list from 1, every step positive and at most 30 days; {} for one attempt';

-- Hook secrets (signing.c).
CREATE OR REPLACE FUNCTION webhook_internal.generate_secret() RETURNS text
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_generate_secret';
COMMENT ON FUNCTION webhook_internal.generate_secret() IS
    'a new Standard Webhooks secret: whsec_ and the base64 of 24 random bytes';

CREATE OR REPLACE FUNCTION webhook_internal.secret_is_valid(secret text) RETURNS boolean
    LANGUAGE c STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'webhook_secret_is_valid';
COMMENT ON FUNCTION webhook_internal.secret_is_valid(text) IS
    'whether a secret is whsec_ and the base64 of 24 to 64 bytes';

-- Check a whole hook row as it is about to be stored and return it
-- normalised: a signing scheme without a secret gets a generated one, the
-- plain HMAC schemes get the default header X-Signature, and "none" drops the
-- secret.  Shared by create_hook, update_hook and register.  in_update only
-- changes the hints.
CREATE OR REPLACE FUNCTION webhook_internal.check_hook(h webhook.hook, in_update boolean) RETURNS webhook.hook
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(h.transport_id, 'transport_id');
    IF NOT EXISTS (SELECT 1 FROM webhook.transport t
                    WHERE t.id = h.transport_id AND webhook_internal.manages(t.tenant)) THEN
        PERFORM webhook_internal.does_not_exist('transport', h.transport_id);
    END IF;

    PERFORM webhook_internal.check_length(h.uid, 'uid', 256);
    PERFORM webhook_internal.not_null(h.path, 'path');
    PERFORM webhook_internal.check_length(h.path, 'path', 2048);
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

    h.event_types := webhook_internal.check_event_types(h.event_types);

    PERFORM webhook_internal.not_null(h.signature, 'signature');
    PERFORM webhook_internal.not_null(h.payload_format, 'payload_format');

    PERFORM webhook_internal.check_length(h.secret, 'secret', 1024);
    PERFORM webhook_internal.check_length(h.filter::text, 'filter', 4096);
    IF h.signature = 'none' THEN
        h.secret := NULL;
    ELSIF h.secret IS NULL THEN
        h.secret := webhook_internal.generate_secret();
    ELSIF h.secret = '' THEN
        RAISE EXCEPTION 'secret must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN in_update
                              THEN 'Pass secret => NULL to keep the secret, or omit it.'
                              ELSE 'Pass no secret to have one generated.' END;
    ELSIF h.signature = 'standard' AND NOT webhook_internal.secret_is_valid(h.secret) THEN
        RAISE EXCEPTION 'invalid secret for signature scheme "standard"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Standard Webhooks secrets are "whsec_" followed by the base64 of 24 to 64 bytes; '
                         || CASE WHEN in_update
                                 THEN 'pass secret => '''' to have a new one generated.'
                                 ELSE 'pass no secret to have one generated.' END;
    END IF;

    IF h.signature IN ('hmac-sha256', 'hmac-sha1') THEN
        h.signature_header := coalesce(h.signature_header, 'X-Signature');
        PERFORM webhook_internal.check_header_name(h.signature_header, 'signature_header');
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

    h.retry_schedule := webhook_internal.check_retry_schedule(h.retry_schedule);
    PERFORM webhook_internal.not_null(h.active, 'active');

    PERFORM webhook_internal.not_null(h.ordered, 'ordered');
    PERFORM webhook_internal.not_null(h.on_dead, 'on_dead');

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
        IF NOT has_function_privilege(webhook_internal.caller(), h.transform, 'EXECUTE') THEN
            RAISE EXCEPTION 'permission denied for function %', h.transform
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'The worker runs the transform with the rights of the role that sets it.';
        END IF;
    END IF;
    RETURN h;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_hook(webhook.hook, boolean) IS
    'a hook row checked and normalised before it is stored (generates a missing secret)';

-- Check a listing's arguments: paging, sorting (by one of sortable), and
-- the tenant it is filtered by, if any; returns ASC or DESC.
CREATE OR REPLACE FUNCTION webhook_internal.check_paging(page integer, page_size integer,
                                      sort_by text, sort_dir text, sortable text[],
                                      tenant text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(page, 'page');
    PERFORM webhook_internal.not_null(page_size, 'page_size');
    PERFORM webhook_internal.not_null(sort_by, 'sort_by');
    PERFORM webhook_internal.not_null(sort_dir, 'sort_dir');
    IF page < 1 THEN
        RAISE EXCEPTION 'page must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF page_size NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 1000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT sort_by = ANY (sortable) THEN
        RAISE EXCEPTION 'cannot sort by "%"', sort_by
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Sort by one of ' || array_to_string(sortable, ', ') || '.';
    END IF;
    IF upper(sort_dir) NOT IN ('ASC', 'DESC') THEN
        RAISE EXCEPTION 'invalid sort direction "%"', sort_dir
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Sort ASC or DESC.';
    END IF;
    IF tenant IS NOT NULL THEN
        PERFORM webhook_internal.check_tenant(tenant);
    END IF;
    RETURN upper(sort_dir);
END
$$;
COMMENT ON FUNCTION webhook_internal.check_paging(integer, integer, text, text, text[], text) IS
    'a listing''s paging, sorting and tenant arguments checked; the sort direction upper-cased';
