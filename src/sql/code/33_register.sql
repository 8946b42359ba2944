-- webhook install script, part 3.3: register(), the one-call path: a
-- transport and a hook for a URL.  The conventions of 29_validators.sql hold.

-- Sends a request anywhere: only register() (SECURITY DEFINER, checking
-- its caller) calls it.
CREATE OR REPLACE FUNCTION webhook_internal.http_head(url text, timeout_ms integer, tls_verify boolean,
                                   ca_file text, client_cert_file text,
                                   client_key_file text, client_key_password text)
    RETURNS integer
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_http_head';
COMMENT ON FUNCTION webhook_internal.http_head(text, integer, boolean, text, text, text, text) IS
    'the status of a HEAD request with a transport''s TLS settings (no redirects, deny_networks obeyed), or null';
REVOKE EXECUTE ON FUNCTION webhook_internal.http_head(text, integer, boolean, text, text, text, text)
    FROM PUBLIC;

-- Reuse rule: the transport is the tenant's transport whose base_url is the
-- URL's origin (preferring the one named after it), else a new one named
-- after the origin.  The hook is that transport's hook with the same path and
-- the same set of event types, else a new one.  A reused hook is reactivated
-- (where it stopped, if it was inactive) and takes the given secret, if
-- any; so registering twice is harmless.  With since, the hook is sent
-- the log's events since then: a new one from create_hook(since), a
-- reused one by replay().
CREATE OR REPLACE FUNCTION webhook.register(
        url text,
        event_types text[] DEFAULT '{*}',
        secret text DEFAULT NULL,
        tenant text DEFAULT 'default',
        check_reachable boolean DEFAULT true,
        since timestamptz DEFAULT NULL)
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
    u := webhook_internal.parse_url(url, 'url');
    origin := u.scheme || '://' || lower(u.authority);
    PERFORM webhook_internal.check_tenant(tenant);
    PERFORM webhook_internal.check_manages(tenant);
    PERFORM webhook_internal.not_null(check_reachable, 'check_reachable');
    h.path := u.rest;
    h.event_types := event_types;
    PERFORM webhook_internal.check_hook_limits(h, NULL);
    h.event_types := webhook_internal.check_event_types(event_types);
    h.secret := secret;
    h.signature := 'standard';
    h.payload_format := 'standard';
    h.retry_schedule := webhook_internal.default_retry_schedule()::interval[];
    h.active := true;
    IF secret IS NOT NULL THEN
        IF secret = '' OR NOT webhook_internal.secret_is_valid(secret) THEN
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
        status := webhook_internal.http_head(url, 5000, coalesce(t.tls_verify, true), t.ca_file,
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
                                   path => h.path, secret => secret, since => since);
    ELSE
        PERFORM webhook.update_hook(hid, active => true, secret => secret);
        IF since IS NOT NULL THEN
            PERFORM webhook.replay(hid, since);
        END IF;
    END IF;

    RETURN jsonb_build_object('status', 200,
                              'message', 'Registered client at: ' || url,
                              'hook_id', hid);
END
$$;
COMMENT ON FUNCTION webhook.register(text, text[], text, text, boolean, timestamptz) IS
    'make or reuse a transport for the URL''s origin and a hook for its path; with check_reachable, first checks that the URL answers a HEAD request; with since, sends the hook the events the log holds since then';
