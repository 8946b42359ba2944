-- webhook install script, code part 3 (before the validators): what the
-- listings show of the catalog's rows: a hook's full URL, and credentials
-- masked.  The conventions of 29_validators.sql hold.

-- A hook's URL: the transport's base_url joined with the hook's path.
CREATE OR REPLACE FUNCTION webhook_internal.hook_url(base_url text, path text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN path = '' OR pg_catalog.left(path, 1) = '?' THEN base_url || path
                WHEN pg_catalog.left(path, 1) = '/'
                    THEN pg_catalog.rtrim(base_url, '/') || path
                ELSE pg_catalog.rtrim(base_url, '/') || '/' || path END
$$;
COMMENT ON FUNCTION webhook_internal.hook_url(text, text) IS
    'the URL a hook is sent to: base_url joined with path';

-- webhook.retention as an interval; '30 days' when the library is not loaded
-- in this session (the setting is then unknown).  Inlinable, hence no SET.
CREATE OR REPLACE FUNCTION webhook_internal.retention() RETURNS interval
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(
                     pg_catalog.current_setting('webhook.retention', true), ''),
                 '30 days')::pg_catalog.interval $$;
COMMENT ON FUNCTION webhook_internal.retention() IS
    'the webhook.retention setting as an interval';

CREATE OR REPLACE FUNCTION webhook_internal.mask(secret text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN secret IS NULL THEN NULL ELSE '********' END $$;
COMMENT ON FUNCTION webhook_internal.mask(text) IS
    '"********" for a set secret, NULL for none';

CREATE OR REPLACE FUNCTION webhook_internal.mask_auth(auth jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE auth->>'type'
                     WHEN 'basic' THEN pg_catalog.jsonb_set(auth, '{password}', '"********"')
                     WHEN 'bearer' THEN pg_catalog.jsonb_set(auth, '{token}', '"********"')
                     ELSE auth END $$;
COMMENT ON FUNCTION webhook_internal.mask_auth(jsonb) IS
    'a transport''s auth with its password or token replaced by "********"';

-- A transport row as the listings show it: credentials masked.
CREATE OR REPLACE FUNCTION webhook_internal.transport_info(t webhook.transport) RETURNS webhook.transport_info
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT ROW(t.id, t.tenant, t.name, t.base_url, t.headers,
                     webhook_internal.mask_auth(t.auth), webhook_internal.mask(t.query_key),
                     t.connect_timeout, t.timeout, t.tls_verify, t.ca_file,
                     t.client_cert_file, t.client_key_file,
                     webhook_internal.mask(t.client_key_password), t.max_in_flight,
                     t.max_per_second, t.created_at, t.updated_at)::webhook.transport_info $$;
COMMENT ON FUNCTION webhook_internal.transport_info(webhook.transport) IS
    'a transport with its credentials masked';

-- A hook row as the listings show it: secret masked, tenant and URL added.
CREATE OR REPLACE FUNCTION webhook_internal.hook_info(h webhook.hook, t webhook.transport) RETURNS webhook.hook_info
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT ROW(h.id, h.uid, h.transport_id, t.tenant, webhook_internal.hook_url(t.base_url, h.path),
                     h.path, h.event_types, webhook_internal.mask(h.secret), h.signature,
                     h.signature_header, h.payload_format, h.retry_schedule,
                     h.ordered, h.on_dead, h.filter, h.transform,
                     h.active, h.disabled_reason, h.created_at,
                     h.updated_at)::webhook.hook_info $$;
COMMENT ON FUNCTION webhook_internal.hook_info(webhook.hook, webhook.transport) IS
    'a hook with its secret masked, and its tenant and full URL';
