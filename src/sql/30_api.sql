-- webhook install script, part 3: the SQL API for transports, hooks and
-- deliveries, and the views for psql.
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

\echo Use "CREATE EXTENSION webhook" to load this file. \quit

-- A hook's URL: the transport's base_url joined with the hook's path.
CREATE FUNCTION webhook._hook_url(base_url text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN path = '' OR pg_catalog.left(path, 1) = '?' THEN base_url || path
                WHEN pg_catalog.left(path, 1) = '/'
                    THEN pg_catalog.rtrim(base_url, '/') || path
                ELSE pg_catalog.rtrim(base_url, '/') || '/' || path END
$$;
COMMENT ON FUNCTION webhook._hook_url(text, text) IS
    'the URL a hook is sent to: base_url joined with path';

-- What the listing functions return: the catalog rows with secrets masked.
CREATE TYPE webhook.transport_info AS (
    id                  bigint,
    tenant              text,
    name                text,
    base_url            text,
    headers             jsonb,
    auth                jsonb,
    query_key           text,
    connect_timeout     interval,
    timeout             interval,
    tls_verify          boolean,
    ca_file             text,
    client_cert_file    text,
    client_key_file     text,
    client_key_password text,
    max_in_flight       integer,
    max_per_second      double precision,
    created_at          timestamptz,
    updated_at          timestamptz
);
COMMENT ON TYPE webhook.transport_info IS
    'a transport as webhook.transports() shows it: credentials masked';

CREATE TYPE webhook.hook_info AS (
    id               bigint,
    uid              text,
    transport_id     bigint,
    tenant           text,
    url              text,
    path             text,
    event_types      text[],
    secret           text,
    signature        text,
    signature_header text,
    payload_format   text,
    retry_schedule   interval[],
    ordered          text,
    on_dead          text,
    filter           jsonpath,
    transform        regprocedure,
    active           boolean,
    disabled_reason  text,
    created_at       timestamptz,
    updated_at       timestamptz
);
COMMENT ON TYPE webhook.hook_info IS
    'a hook as webhook.hooks() shows it: secret masked, with its tenant and full URL';

CREATE TYPE webhook.notification AS (
    delivery_id  bigint,
    event_uid    uuid,
    event_type   text,
    tenant       text,
    hook_id      bigint,
    state        text,
    attempts     integer,
    last_status  integer,
    created_at   timestamptz,
    finished_at  timestamptz
);
COMMENT ON TYPE webhook.notification IS
    'one delivery as webhook.notifications() shows it';

------------------------------------------------------------------------------
-- Internal helpers: checks shared by the API functions.
------------------------------------------------------------------------------

-- webhook.retention as an interval; '30 days' when the library is not loaded
-- in this session (the setting is then unknown).  Inlinable, hence no SET.
CREATE FUNCTION webhook._retention() RETURNS interval
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(
                     pg_catalog.current_setting('webhook.retention', true), ''),
                 '30 days')::pg_catalog.interval $$;
COMMENT ON FUNCTION webhook._retention() IS
    'the webhook.retention setting as an interval';

CREATE FUNCTION webhook._mask(secret text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN secret IS NULL THEN NULL ELSE '********' END $$;
COMMENT ON FUNCTION webhook._mask(text) IS
    '"********" for a set secret, NULL for none';

CREATE FUNCTION webhook._mask_auth(auth jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE auth->>'type'
                     WHEN 'basic' THEN pg_catalog.jsonb_set(auth, '{password}', '"********"')
                     WHEN 'bearer' THEN pg_catalog.jsonb_set(auth, '{token}', '"********"')
                     ELSE auth END $$;
COMMENT ON FUNCTION webhook._mask_auth(jsonb) IS
    'a transport''s auth with its password or token replaced by "********"';

-- Raise null_value_not_allowed when a required argument is NULL.
CREATE FUNCTION webhook._not_null(val anyelement, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF val IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be null', what
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook._not_null(anyelement, text) IS
    'raise an error when the required argument is null';

CREATE FUNCTION webhook._check_tenant(tenant text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(tenant, 'tenant');
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

-- Split an http(s) URL into scheme, authority (host[:port]) and the rest
-- (path and query).  The URL itself never appears in a message: it may carry
-- credentials.  what is the argument's name, for the messages.
CREATE FUNCTION webhook._parse_url(url text, what text,
                                   OUT scheme text, OUT authority text, OUT rest text)
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[];
    hp text[];
BEGIN
    PERFORM webhook._not_null(url, what);
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

-- Header names are RFC 9110 tokens; names the extension sets itself, and the
-- ones that frame the message, cannot be overridden.
CREATE FUNCTION webhook._check_header_name(header text, what text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
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

-- A transport's static headers: a JSON object of strings, or SQL/JSON null
-- for none.  Values are never printed: they may be API keys.
CREATE FUNCTION webhook._check_headers(headers jsonb) RETURNS jsonb
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
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(headers) e LOOP
        PERFORM webhook._check_header_name(k, 'header name');
        IF jsonb_typeof(v) <> 'string' THEN
            RAISE EXCEPTION 'value of header "%" must be a string', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Write headers as {"Name": "value", ...}.';
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

-- auth normalised to {"type":"basic","username","password"} or
-- {"type":"bearer","token"}; NULL, JSON null and {"type":"none"} mean none.
CREATE FUNCTION webhook._check_auth(auth jsonb) RETURNS jsonb
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

-- An optional file name: NULL or '' for none, else an absolute path.
CREATE FUNCTION webhook._check_file(file text, what text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF file IS NULL OR file = '' THEN
        RETURN NULL;
    END IF;
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

-- Check a whole transport row as it is about to be stored and return it
-- normalised.  Shared by create_transport and update_transport.
CREATE FUNCTION webhook._check_transport(t webhook.transport) RETURNS webhook.transport
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
BEGIN
    t.tenant := webhook._check_tenant(t.tenant);
    PERFORM webhook._not_null(t.name, 'name');
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
    IF t.query_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'query_key must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM webhook._not_null(t.connect_timeout, 'connect_timeout');
    PERFORM webhook._not_null(t.timeout, 'timeout');
    IF t.connect_timeout <= interval '0' THEN
        RAISE EXCEPTION 'connect_timeout must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an interval such as ''10 s''.';
    END IF;
    IF t.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive'
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

-- Event type patterns: exact names (ORDER_SETTLED), prefixes (ORDER_*) or *.
-- Returned without duplicates, in the order given.
CREATE FUNCTION webhook._check_event_types(event_types text[]) RETURNS text[]
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

CREATE FUNCTION webhook._check_retry_schedule(retry_schedule interval[]) RETURNS interval[]
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
                  HINT = 'Give the wait before each retry, such as ''{5s,5min,30min,2h,5h,10h,10h}''.';
    END IF;
    FOREACH step IN ARRAY retry_schedule LOOP
        IF step IS NULL OR step <= interval '0' OR step > interval '30 days' THEN
            RAISE EXCEPTION 'every step of retry_schedule must be positive and at most 30 days'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give the wait before each retry, such as ''{5s,5min,30min,2h,5h,10h,10h}''.';
        END IF;
    END LOOP;
    RETURN retry_schedule;
END
$$;
COMMENT ON FUNCTION webhook._check_retry_schedule(interval[]) IS
    'a retry schedule checked: a list from 1, every step positive and at most 30 days; {} for one attempt';

-- Check a whole hook row as it is about to be stored and return it
-- normalised: a signing scheme without a secret gets a generated one, the
-- plain HMAC schemes get the default header X-Signature, and "none" drops the
-- secret.  Shared by create_hook, update_hook and register.  in_update only
-- changes the hints.
CREATE FUNCTION webhook._check_hook(h webhook.hook, in_update boolean) RETURNS webhook.hook
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(h.transport_id, 'transport_id');
    IF NOT EXISTS (SELECT 1 FROM webhook.transport t
                    WHERE t.id = h.transport_id AND webhook._manages(t.tenant)) THEN
        RAISE EXCEPTION 'transport % does not exist', h.transport_id
            USING ERRCODE = 'no_data_found';
    END IF;

    PERFORM webhook._not_null(h.path, 'path');
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

-- The same checks on every write to the tables, whoever makes it: an
-- admin's direct INSERT or UPDATE can store nothing that the API functions
-- would refuse (a header value with CR LF would become a header line of its
-- own).  The hook trigger fires only for the columns the checks read, so the
-- worker's disabling of a hook (active, disabled_reason) never runs it.
CREATE FUNCTION webhook._transport_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN webhook._check_transport(NEW);
END
$$;
COMMENT ON FUNCTION webhook._transport_written() IS
    'trigger: a transport row is checked and normalised however it is written';
CREATE TRIGGER transport_checked BEFORE INSERT OR UPDATE ON webhook.transport
    FOR EACH ROW EXECUTE FUNCTION webhook._transport_written();

CREATE FUNCTION webhook._hook_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW := webhook._check_hook(NEW, TG_OP = 'UPDATE');
    -- the worker runs the transform as the role that set it, never another
    IF NEW.transform IS NULL THEN
        NEW.transform_role := NULL;
    ELSIF TG_OP = 'INSERT' OR NEW.transform IS DISTINCT FROM OLD.transform THEN
        NEW.transform_role := webhook._caller();
    ELSE
        NEW.transform_role := OLD.transform_role;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION webhook._hook_written() IS
    'trigger: a hook row is checked and normalised however it is written';
CREATE TRIGGER hook_checked
    BEFORE INSERT OR UPDATE OF transport_id, path, event_types, secret, signature,
                               signature_header, payload_format, retry_schedule,
                               ordered, on_dead, filter, transform, transform_role
    ON webhook.hook FOR EACH ROW EXECUTE FUNCTION webhook._hook_written();


-- Check paging and sorting arguments; returns ASC or DESC.
CREATE FUNCTION webhook._check_paging(page integer, page_size integer,
                                      sort_by text, sort_dir text, sortable text[])
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(page, 'page');
    PERFORM webhook._not_null(page_size, 'page_size');
    PERFORM webhook._not_null(sort_by, 'sort_by');
    PERFORM webhook._not_null(sort_dir, 'sort_dir');
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
    RETURN upper(sort_dir);
END
$$;
COMMENT ON FUNCTION webhook._check_paging(integer, integer, text, text, text[]) IS
    'paging and sorting arguments checked; the sort direction upper-cased';

-- A transport row as the listings show it: credentials masked.
CREATE FUNCTION webhook._transport_info(t webhook.transport) RETURNS webhook.transport_info
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT ROW(t.id, t.tenant, t.name, t.base_url, t.headers,
                     webhook._mask_auth(t.auth), webhook._mask(t.query_key),
                     t.connect_timeout, t.timeout, t.tls_verify, t.ca_file,
                     t.client_cert_file, t.client_key_file,
                     webhook._mask(t.client_key_password), t.max_in_flight,
                     t.max_per_second, t.created_at, t.updated_at)::webhook.transport_info $$;
COMMENT ON FUNCTION webhook._transport_info(webhook.transport) IS
    'a transport with its credentials masked';

-- A hook row as the listings show it: secret masked, tenant and URL added.
CREATE FUNCTION webhook._hook_info(h webhook.hook, t webhook.transport) RETURNS webhook.hook_info
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT ROW(h.id, h.uid, h.transport_id, t.tenant, webhook._hook_url(t.base_url, h.path),
                     h.path, h.event_types, webhook._mask(h.secret), h.signature,
                     h.signature_header, h.payload_format, h.retry_schedule,
                     h.ordered, h.on_dead, h.filter, h.transform,
                     h.active, h.disabled_reason, h.created_at,
                     h.updated_at)::webhook.hook_info $$;
COMMENT ON FUNCTION webhook._hook_info(webhook.hook, webhook.transport) IS
    'a hook with its secret masked, and its tenant and full URL';

------------------------------------------------------------------------------
-- Transports
------------------------------------------------------------------------------

CREATE FUNCTION webhook.create_transport(
        name text,
        base_url text,
        tenant text DEFAULT 'default',
        headers jsonb DEFAULT '{}',
        auth jsonb DEFAULT NULL,
        query_key text DEFAULT NULL,
        connect_timeout interval DEFAULT '30 s',
        timeout interval DEFAULT '30 s',
        tls_verify boolean DEFAULT true,
        ca_file text DEFAULT NULL,
        client_cert_file text DEFAULT NULL,
        client_key_file text DEFAULT NULL,
        client_key_password text DEFAULT NULL,
        max_in_flight integer DEFAULT 16,
        max_per_second double precision DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t webhook.transport;
    new_id bigint;
BEGIN
    t.tenant := tenant;
    t.name := name;
    t.base_url := base_url;
    t.headers := headers;
    t.auth := auth;
    t.query_key := query_key;
    t.connect_timeout := connect_timeout;
    t.timeout := timeout;
    t.tls_verify := tls_verify;
    t.ca_file := ca_file;
    t.client_cert_file := client_cert_file;
    t.client_key_file := client_key_file;
    t.client_key_password := client_key_password;
    t.max_in_flight := max_in_flight;
    t.max_per_second := max_per_second;
    t := webhook._check_transport(t);
    PERFORM webhook._check_manages(t.tenant);

    IF EXISTS (SELECT 1 FROM webhook.transport x
                WHERE x.tenant = t.tenant AND x.name = t.name) THEN
        RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or change the existing transport with webhook.update_transport().';
    END IF;

    BEGIN
        INSERT INTO webhook.transport AS x
               (tenant, name, base_url, headers, auth, query_key, connect_timeout,
                timeout, tls_verify, ca_file, client_cert_file, client_key_file,
                client_key_password, max_in_flight, max_per_second)
        VALUES (t.tenant, t.name, t.base_url, t.headers, t.auth, t.query_key,
                t.connect_timeout, t.timeout, t.tls_verify, t.ca_file,
                t.client_cert_file, t.client_key_file, t.client_key_password,
                t.max_in_flight, t.max_per_second)
        RETURNING x.id INTO new_id;
    EXCEPTION
        WHEN unique_violation THEN
            -- a concurrent create won the race
            RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Choose another name, or change the existing transport with webhook.update_transport().';
        WHEN integrity_constraint_violation THEN
            -- never let the failing row (and its credentials) into a message
            RAISE EXCEPTION 'invalid transport'
                USING ERRCODE = 'invalid_parameter_value';
    END;

    IF NOT t.tls_verify THEN
        RAISE WARNING 'TLS verification is disabled for transport "%"', t.name
            USING HINT = 'Any server can impersonate the receiver; give the receiver''s CA with ca_file instead.';
    END IF;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION webhook.create_transport(text, text, text, jsonb, jsonb, text, interval,
                                             interval, boolean, text, text, text, text, integer,
                                             double precision) IS
    'create an HTTP destination for a tenant; returns its id';

CREATE FUNCTION webhook.update_transport(
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
    SELECT * INTO old FROM webhook.transport x WHERE x.id = update_transport.id FOR UPDATE;
    IF NOT FOUND OR NOT webhook._manages(old.tenant) THEN
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

CREATE FUNCTION webhook.delete_transport(id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(id, 'id');
    DELETE FROM webhook.transport x
     WHERE x.id = delete_transport.id AND webhook._manages(x.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transport % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook.delete_transport(bigint) IS
    'delete a transport with its hooks and their deliveries';

CREATE FUNCTION webhook.transports(
        tenant text DEFAULT NULL,
        page integer DEFAULT 1,
        page_size integer DEFAULT 50,
        sort_by text DEFAULT 'created_at',
        sort_dir text DEFAULT 'ASC')
    RETURNS SETOF webhook.transport_info
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dir text;
BEGIN
    dir := webhook._check_paging(page, page_size, sort_by, sort_dir,
                                 '{id,tenant,name,base_url,connect_timeout,timeout,tls_verify,max_in_flight,max_per_second,created_at,updated_at}');
    IF tenant IS NOT NULL THEN
        PERFORM webhook._check_tenant(tenant);
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT (webhook._transport_info(x)).*
           FROM webhook.transport x
          WHERE ($1 IS NULL OR x.tenant = $1)
            AND ($4::text[] IS NULL OR x.tenant = ANY ($4))
          ORDER BY x.%I %s, x.id %s
          LIMIT $2 OFFSET $3', sort_by, dir, dir)
        USING tenant, page_size, (page - 1)::bigint * page_size,
              webhook._tenants_of(webhook._caller());
END
$$;
COMMENT ON FUNCTION webhook.transports(text, integer, integer, text, text) IS
    'list transports, one page at a time, credentials masked';

------------------------------------------------------------------------------
-- Hooks
------------------------------------------------------------------------------

CREATE FUNCTION webhook.create_hook(
        transport_id bigint,
        event_types text[] DEFAULT '{*}',
        path text DEFAULT '',
        secret text DEFAULT NULL,
        signature text DEFAULT 'standard',
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT 'standard',
        retry_schedule interval[] DEFAULT '{5s,5min,30min,2h,5h,10h,10h}',
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
COMMENT ON FUNCTION webhook.create_hook(bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure) IS
    'subscribe a transport to event types; without a secret one is generated (see webhook.hook_secret); returns the hook id';

CREATE FUNCTION webhook.update_hook(
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
    -- active => true re-enables a hook a 410 disabled, and resumes one that
    -- on_dead => 'stop' paused (active, with a disabled_reason)
    IF update_hook.active THEN
        h.disabled_reason := NULL;
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
    'change a hook: NULL arguments keep their value, secret => '''' generates a new secret, filter => ''$'' removes the filter, transform => ''-'' the transform, active => true clears disabled_reason; returns the hook as webhook.hooks() shows it';

CREATE FUNCTION webhook.delete_hook(id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(id, 'id');
    DELETE FROM webhook.hook x
     WHERE x.id = delete_hook.id
       AND webhook._manages((SELECT tr.tenant FROM webhook.transport tr
                              WHERE tr.id = x.transport_id));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook.delete_hook(bigint) IS
    'delete a hook with its deliveries';

CREATE FUNCTION webhook.hooks(
        transport_id bigint DEFAULT NULL,
        tenant text DEFAULT NULL,
        page integer DEFAULT 1,
        page_size integer DEFAULT 50,
        sort_by text DEFAULT 'created_at',
        sort_dir text DEFAULT 'ASC')
    RETURNS SETOF webhook.hook_info
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dir text;
BEGIN
    dir := webhook._check_paging(page, page_size, sort_by, sort_dir,
                                 '{id,uid,transport_id,tenant,url,path,signature,payload_format,ordered,active,created_at,updated_at}');
    IF tenant IS NOT NULL THEN
        PERFORM webhook._check_tenant(tenant);
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT i.*
           FROM webhook.hook h
           JOIN webhook.transport t ON t.id = h.transport_id
          CROSS JOIN LATERAL webhook._hook_info(h, t) i
          WHERE ($1 IS NULL OR h.transport_id = $1)
            AND ($2 IS NULL OR t.tenant = $2)
            AND ($5::text[] IS NULL OR t.tenant = ANY ($5))
          ORDER BY i.%I %s, i.id %s
          LIMIT $3 OFFSET $4', sort_by, dir, dir)
        USING transport_id, tenant, page_size, (page - 1)::bigint * page_size,
              webhook._tenants_of(webhook._caller());
END
$$;
COMMENT ON FUNCTION webhook.hooks(bigint, text, integer, integer, text, text) IS
    'list hooks, one page at a time, secrets masked';

CREATE FUNCTION webhook.hook_secret(id bigint) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._not_null(id, 'id');
    RETURN (webhook._managed_hook(id)).secret;
END
$$;
COMMENT ON FUNCTION webhook.hook_secret(bigint) IS
    'the hook''s signing secret (NULL for signature "none"): the only place it is shown';

-- Replace a hook's secret with a generated one and return it (once: after
-- this, hook_secret() shows it).  The secret replaced stays the previous
-- secret until now() + overlap: meanwhile the worker signs every request
-- with both, so that receivers can move to the new one at their own pace;
-- then it drops it.  overlap 0 drops it at once.  Rotating again while an
-- overlap runs keeps only the secret being replaced as the previous one:
-- the one before it signs no more.
CREATE FUNCTION webhook.rotate_secret(hook_id bigint, overlap interval DEFAULT '24 hours')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
    new_secret text;
    until timestamptz;
BEGIN
    PERFORM webhook._not_null(hook_id, 'hook_id');
    PERFORM webhook._not_null(overlap, 'overlap');
    IF overlap < interval '0' THEN
        RAISE EXCEPTION 'overlap must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass how long the old secret should go on signing, such as ''24 hours'', or 0 to drop it at once.';
    END IF;
    BEGIN
        until := now() + overlap;
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION 'overlap is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an overlap of days or weeks, such as ''24 hours''.';
    END;

    SELECT x.* INTO h FROM webhook.hook x
     WHERE x.id = rotate_secret.hook_id
       AND webhook._manages((SELECT t.tenant FROM webhook.transport t
                              WHERE t.id = x.transport_id))
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', hook_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF h.signature = 'none' THEN
        RAISE EXCEPTION 'hook % has no secret to rotate', hook_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its signature scheme is "none"; choose one with webhook.update_hook(id, signature => ...), which generates a secret.';
    END IF;

    new_secret := webhook._generate_secret();
    UPDATE webhook.hook x
       SET secret = new_secret,
           previous_secret = CASE WHEN overlap > interval '0' THEN h.secret END,
           previous_secret_until = CASE WHEN overlap > interval '0' THEN until END,
           updated_at = now()
     WHERE x.id = rotate_secret.hook_id;
    RETURN new_secret;
END
$$;
COMMENT ON FUNCTION webhook.rotate_secret(bigint, interval) IS
    'replace the hook''s secret with a generated one, returned; the old one also signs until the overlap is over';

------------------------------------------------------------------------------
-- register(): the one-call path
------------------------------------------------------------------------------

-- Reuse rule: the transport is the tenant's transport whose base_url is the
-- URL's origin (preferring the one named after it), else a new one named
-- after the origin.  The hook is that transport's hook with the same path and
-- the same set of event types, else a new one.  A reused hook is reactivated
-- and takes the given secret, if any; so registering twice is harmless.
CREATE FUNCTION webhook.register(
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
    h.retry_schedule := '{5s,5min,30min,2h,5h,10h,10h}';
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

------------------------------------------------------------------------------
-- Deliveries
------------------------------------------------------------------------------

-- Raise an error unless the hook exists and is active.
CREATE FUNCTION webhook._check_hook_active(hook_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    is_active boolean;
BEGIN
    SELECT x.active INTO is_active
      FROM webhook.hook x JOIN webhook.transport t ON t.id = x.transport_id
     WHERE x.id = hook_id AND webhook._manages(t.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', hook_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT is_active THEN
        RAISE EXCEPTION 'hook % is not active', hook_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Reactivate it with webhook.update_hook(%s, active => true).', hook_id);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook._check_hook_active(bigint) IS
    'raise an error unless the hook exists and is active';

CREATE FUNCTION webhook.redeliver(delivery_id bigint) RETURNS bigint
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
    INSERT INTO webhook.delivery AS x (event_id, hook_id, state, next_attempt_at)
    VALUES (d.event_id, d.hook_id, 'pending', now())
    RETURNING x.id INTO new_id;
    PERFORM webhook.wake();
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION webhook.redeliver(bigint) IS
    'send a delivery''s event to its hook again, now; returns the new delivery''s id';

CREATE FUNCTION webhook.replay(hook_id bigint, since timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM webhook._not_null(hook_id, 'hook_id');
    PERFORM webhook._not_null(since, 'since');
    PERFORM webhook._check_hook_active(hook_id);
    -- events already on their way to the hook are not queued twice
    INSERT INTO webhook.delivery (event_id, hook_id, state, next_attempt_at)
    SELECT e.id, replay.hook_id, 'pending', now()
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
        PERFORM webhook.wake();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION webhook.replay(bigint, timestamptz) IS
    'send again, now, every event since the given time that was delivered (or given up) to the hook; events still queued for it are skipped; returns how many were queued';

CREATE FUNCTION webhook._preview(hook_id bigint, event_id bigint,
                                 OUT url text, OUT headers text[], OUT body text)
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_preview';
COMMENT ON FUNCTION webhook._preview(bigint, bigint) IS
    'the request the worker would send the hook for the event (webhook.preview checks the caller first)';

-- Volatile: a transform runs for real, as the role that set it.
CREATE FUNCTION webhook.preview(hook_id bigint, event_id bigint,
                                OUT url text, OUT headers text[], OUT body text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._managed_hook(hook_id);
    PERFORM webhook._not_null(event_id, 'event_id');
    IF NOT EXISTS (SELECT 1 FROM webhook.event e
                    WHERE e.id = preview.event_id AND webhook._manages(e.tenant)) THEN
        RAISE EXCEPTION 'event % does not exist', event_id
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT p.url, p.headers, p.body INTO url, headers, body
      FROM webhook._preview(hook_id, event_id) p;
END
$$;
COMMENT ON FUNCTION webhook.preview(bigint, bigint) IS
    'the request the hook would be sent for the event now: URL, header lines (signed; credentials masked) and body, made by its transform if it has one';

CREATE FUNCTION webhook.notifications(
        tenant text DEFAULT NULL,
        hook_id bigint DEFAULT NULL,
        since timestamptz DEFAULT now() - interval '30 days')
    RETURNS SETOF webhook.notification
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tenant IS NOT NULL THEN
        PERFORM webhook._check_tenant(tenant);
    END IF;
    RETURN QUERY
        SELECT d.id, e.uid, e.event_type, e.tenant, d.hook_id, d.state,
               d.attempts, d.last_status, d.created_at, d.finished_at
          FROM (SELECT webhook._tenants_of(webhook._caller()) AS tenants) x,
               webhook.delivery d
          JOIN webhook.event e ON e.id = d.event_id
          JOIN webhook.hook h ON h.id = d.hook_id
          JOIN webhook.transport t ON t.id = h.transport_id
         WHERE (notifications.tenant IS NULL OR e.tenant = notifications.tenant)
           AND (x.tenants IS NULL OR t.tenant = ANY (x.tenants))
           AND (notifications.hook_id IS NULL OR d.hook_id = notifications.hook_id)
           AND (notifications.since IS NULL OR d.created_at >= notifications.since)
         ORDER BY d.created_at, d.id;
END
$$;
COMMENT ON FUNCTION webhook.notifications(text, bigint, timestamptz) IS
    'the deliveries made since the given time (all with since => NULL), oldest first';

CREATE FUNCTION webhook.prune(older_than interval DEFAULT webhook._retention())
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bound timestamptz;
    n bigint;
BEGIN
    PERFORM webhook._not_null(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    bound := now() - older_than;
    -- attempts go with their delivery (ON DELETE CASCADE)
    DELETE FROM webhook.delivery d
     WHERE d.state IN ('succeeded', 'dead', 'cancelled')
       AND coalesce(d.finished_at, d.created_at) < bound;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- deliveries a write added for a hook deleted meanwhile: nobody sends them
    DELETE FROM webhook.delivery d
     WHERE NOT EXISTS (SELECT 1 FROM webhook.hook h WHERE h.id = d.hook_id);
    DELETE FROM webhook.event e
     WHERE e.created_at < bound
       AND NOT EXISTS (SELECT 1 FROM webhook.delivery d WHERE d.event_id = e.id);
    RETURN n;
END
$$;
COMMENT ON FUNCTION webhook.prune(interval) IS
    'delete finished deliveries (with their attempts) older than the bound and those of deleted hooks, then events older than the bound with no delivery left; returns the number of finished deliveries deleted';

------------------------------------------------------------------------------
-- Views for psql.  security_invoker, so that row-level security on the
-- catalog applies to whoever reads them.
------------------------------------------------------------------------------

CREATE VIEW webhook.delivery_log WITH (security_invoker = true) AS
SELECT a.started_at AS attempted_at,
       e.tenant,
       d.hook_id,
       a.delivery_id,
       e.event_type,
       e.resource_id,
       -- a transport's query_key must not show
       pg_catalog.regexp_replace(a.url, '([?&]key=)[^&#]*', '\1********') AS url,
       a.attempt_no,
       a.status_code,
       a.duration_ms,
       a.error,
       d.state
  FROM webhook.attempt a
  JOIN webhook.delivery d ON d.id = a.delivery_id
  JOIN webhook.event e ON e.id = d.event_id;
COMMENT ON VIEW webhook.delivery_log IS
    'one row per HTTP attempt, with its event and the delivery''s current state';

CREATE VIEW webhook.hook_stats WITH (security_invoker = true) AS
SELECT h.id AS hook_id,
       t.tenant,
       coalesce(c.pending, 0) AS pending,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.dead, 0) AS dead,
       pg_catalog.round(c.succeeded::numeric
                        / nullif(c.succeeded + c.failed + c.dead, 0), 4) AS success_rate,
       pg_catalog.round(p.p50::numeric, 1) AS p50_ms,
       pg_catalog.round(p.p95::numeric, 1) AS p95_ms
  FROM webhook.hook h
  JOIN webhook.transport t ON t.id = h.transport_id
  LEFT JOIN (SELECT d.hook_id,
                    pg_catalog.count(*) FILTER (WHERE d.state IN ('pending', 'delivering')) AS pending,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'succeeded') AS succeeded,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'failed') AS failed,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'dead') AS dead
               FROM webhook.delivery d
              WHERE d.created_at >= pg_catalog.now() - webhook._retention()
              GROUP BY d.hook_id) c ON c.hook_id = h.id
  LEFT JOIN (SELECT d.hook_id,
                    pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50,
                    pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95
               FROM webhook.delivery d
               JOIN webhook.attempt a ON a.delivery_id = d.id
              WHERE d.created_at >= pg_catalog.now() - webhook._retention()
                AND a.duration_ms IS NOT NULL
              GROUP BY d.hook_id) p ON p.hook_id = h.id;
COMMENT ON VIEW webhook.hook_stats IS
    'per hook, over the deliveries created within webhook.retention: counts by state (pending includes delivering), success_rate = succeeded / (succeeded + failed + dead), and the median and 95th percentile attempt duration in ms';
