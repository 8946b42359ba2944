-- webhook install script, part 3.2: hooks, the subscriptions of a transport
-- (create, update, delete, list; their secrets, rotation).  The conventions
-- of 29_validators.sql hold.

-- Store a hook that create_hook() or update_hook() built, over old (the
-- row it replaces, locked; NULL for a new one): checked against the limits
-- and the validators, written, and returned as stored.
CREATE OR REPLACE FUNCTION webhook_internal.store_hook(h webhook.hook, old webhook.hook)
    RETURNS webhook.hook
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the limits before the patterns are looked at one by one
    PERFORM webhook_internal.check_hook_limits(h, old);
    h := webhook_internal.check_hook(h, old.id IS NOT NULL);

    BEGIN
        IF old.id IS NULL THEN
            INSERT INTO webhook.hook AS x
                   (transport_id, path, event_types, secret, signature,
                    signature_header, payload_format, retry_schedule, active,
                    ordered, on_dead, filter, transform, transform_role)
            VALUES (h.transport_id, h.path, h.event_types, h.secret, h.signature,
                    h.signature_header, h.payload_format, h.retry_schedule, h.active,
                    h.ordered, h.on_dead, h.filter, h.transform, h.transform_role)
            RETURNING x.* INTO h;
        ELSE
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
             WHERE x.id = old.id
            RETURNING x.* INTO h;
        END IF;
    EXCEPTION
        WHEN foreign_key_violation THEN
            -- the transport was deleted meanwhile
            PERFORM webhook_internal.does_not_exist('transport', h.transport_id);
        WHEN integrity_constraint_violation THEN
            -- never let the failing row (and its secret) into a message
            RAISE EXCEPTION 'invalid hook'
                USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN h;
END
$$;
COMMENT ON FUNCTION webhook_internal.store_hook(webhook.hook, webhook.hook) IS
    'check and write a hook built by create_hook or update_hook (old: the row it replaces, or NULL)';
REVOKE EXECUTE ON FUNCTION webhook_internal.store_hook(webhook.hook, webhook.hook) FROM PUBLIC;

-- A hook keeps its place in the log while it is inactive, however it got
-- so (update_hook(), the worker after a 410 or webhook.disable_after, a
-- dropped role, an admin's UPDATE, created so): writers go on giving it
-- its events (its cursor stays where the hook stopped, ordered or not),
-- and nothing is made when
-- it is re-enabled, nor waited for.  Re-enabled, the worker is told, so
-- that it reads on from there at once: its waiting deliveries, then the
-- events it missed, oldest first (a hook that on_dead => 'stop' paused
-- too, when it resumes).  What the log no longer holds
-- (webhook.retention: an inactive hook does not keep the log from being
-- pruned) is not sent.
CREATE OR REPLACE FUNCTION webhook_internal.hook_reenabled() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.wake_for(NEW.id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_internal.hook_reenabled() IS
    'trigger: a re-enabled hook''s worker is woken to read on where the hook stopped';
CREATE OR REPLACE TRIGGER hook_reenabled AFTER UPDATE OF active, disabled_reason ON webhook.hook
    FOR EACH ROW WHEN (NEW.active AND NEW.disabled_reason IS NULL
                       AND (NOT OLD.active OR OLD.disabled_reason IS NOT NULL))
    EXECUTE FUNCTION webhook_internal.hook_reenabled();

-- A delivery's resource_key: its event's resource_id, the first 200
-- characters (src/sql/catalog/20_tables.sql says why; RESOURCE_KEY_CHARS in
-- src/webhook.h, for the claim, which cuts it in its own SQL).
CREATE OR REPLACE FUNCTION webhook_internal.resource_key(resource_id text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.left(resource_id, 200);
COMMENT ON FUNCTION webhook_internal.resource_key(text) IS
    'the key of a delivery''s resource: the first 200 characters of its event''s resource_id';

-- A hook made ordered: its unfinished deliveries are grouped by their
-- resource_key, by which its claim finds the earliest of each group
-- (src/queue.c).  Ordered by resource, each carries its event's
-- resource_id, cut (those made while the hook was not ordered so lack it:
-- a retry of a request read from the log); ordered whole, none does (one
-- group).  Set here.
CREATE OR REPLACE FUNCTION webhook_internal.hook_ordering_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE webhook.delivery d
       SET resource_key = x.key
      FROM (SELECT e.id, CASE WHEN NEW.ordered = 'resource'
                              THEN webhook_internal.resource_key(e.resource_id) END AS key
              FROM webhook.event e) x
     WHERE d.hook_id = NEW.id AND d.state IN ('pending', 'failed') AND x.id = d.event_id
       AND d.resource_key IS DISTINCT FROM x.key;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_internal.hook_ordering_changed() IS
    'trigger: a hook made ordered has its unfinished deliveries'' resource_key set to its group''s';
CREATE OR REPLACE TRIGGER hook_ordering_changed AFTER UPDATE OF ordered ON webhook.hook
    FOR EACH ROW WHEN (NEW.ordered <> 'none' AND NEW.ordered IS DISTINCT FROM OLD.ordered)
    EXECUTE FUNCTION webhook_internal.hook_ordering_changed();

CREATE OR REPLACE FUNCTION webhook.create_hook(
        transport_id bigint,
        event_types text[] DEFAULT '{*}',
        path text DEFAULT '',
        secret text DEFAULT NULL,
        signature text DEFAULT 'standard',
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT 'standard',
        retry_schedule interval[] DEFAULT webhook_internal.default_retry_schedule()::interval[],
        active boolean DEFAULT true,
        ordered text DEFAULT 'none',
        on_dead text DEFAULT 'continue',
        filter jsonpath DEFAULT NULL,
        transform regprocedure DEFAULT NULL,
        since timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
BEGIN
    h.transport_id := transport_id;
    h.event_types := event_types;
    h.path := path;
    h.secret := secret;
    h.signature := webhook_internal.check_choice(signature, 'signature scheme', h.signature);
    h.signature_header := signature_header;
    h.payload_format := webhook_internal.check_choice(payload_format, 'payload format', h.payload_format);
    h.retry_schedule := retry_schedule;
    h.active := active;
    h.ordered := webhook_internal.check_choice(ordered, 'ordering', h.ordered);
    h.on_dead := webhook_internal.check_choice(on_dead, 'on_dead', h.on_dead);
    h.filter := filter;
    h.transform := transform;
    h := webhook_internal.store_hook(h, NULL);
    -- it reads the log from now on (src/sql/catalog/20_tables.sql)
    PERFORM webhook_internal.cursor_to_now(h.id);
    -- since then: the log's events, queued now (an inactive hook's wait,
    -- as its other deliveries do, until it is enabled)
    IF since IS NOT NULL
       AND webhook_internal.queue_from_log(
               h.id, (SELECT t.tenant FROM webhook.transport t WHERE t.id = h.transport_id),
               h.event_types, h.filter, since, false) > 0
       AND h.active THEN
        PERFORM webhook_internal.wake_for(h.id);
    END IF;
    RETURN h.id;
END
$$;
COMMENT ON FUNCTION webhook.create_hook(bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure,
                                       timestamptz) IS
    'subscribe a transport to event types; without a secret one is generated (see webhook.hook_secret); with since, the events of those types the log holds since then are sent first, oldest first; returns the hook id';

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
        transform regprocedure DEFAULT NULL,
        resume text DEFAULT 'where_stopped')
    RETURNS webhook.hook_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.hook;
    h webhook.hook;
    t webhook.transport;
    r webhook.resume_point;
    from_now boolean;
BEGIN
    PERFORM webhook_internal.not_null(id, 'id');
    r := coalesce(webhook_internal.check_choice(resume, 'resume point', r), 'where_stopped');
    old := webhook_internal.locked_hook(id);

    h := old;
    h.transport_id := coalesce(transport_id, old.transport_id);
    h.event_types := coalesce(event_types, old.event_types);
    h.path := coalesce(path, old.path);
    h.signature := coalesce(webhook_internal.check_choice(signature, 'signature scheme', h.signature),
                            old.signature);
    h.payload_format := coalesce(webhook_internal.check_choice(payload_format, 'payload format', h.payload_format),
                                 old.payload_format);
    h.retry_schedule := coalesce(retry_schedule, old.retry_schedule);
    h.active := coalesce(active, old.active);
    h.ordered := coalesce(webhook_internal.check_choice(ordered, 'ordering', h.ordered), old.ordered);
    h.on_dead := coalesce(webhook_internal.check_choice(on_dead, 'on_dead', h.on_dead), old.on_dead);
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
    -- active => true re-enables a hook a 410 or webhook.disable_after
    -- disabled, and resumes one that on_dead => 'stop' paused (active, with a
    -- disabled_reason); its failures start again from none
    IF update_hook.active THEN
        h.disabled_reason := NULL;
        h.failing_since := NULL;
        h.failing_deaths := 0;
        h.last_death_at := NULL;
    END IF;
    -- where it starts: where it stopped (its waiting deliveries go, then
    -- the events it missed while inactive: webhook_internal.hook_reenabled()),
    -- or now (those are skipped, and its waiting deliveries cancelled)
    from_now := update_hook.active AND r = 'now'
                AND (NOT old.active OR old.disabled_reason IS NOT NULL);

    h := webhook_internal.store_hook(h, old);
    IF from_now THEN
        UPDATE webhook.delivery d
           SET state = 'cancelled', finished_at = now(),
               last_error = 'skipped: the hook was re-enabled with resume => ''now'''
         WHERE d.hook_id = h.id AND d.state IN ('pending', 'failed');
        PERFORM webhook_internal.cursor_to_now(h.id);
    END IF;
    SELECT * INTO t FROM webhook.transport x WHERE x.id = h.transport_id;
    RETURN webhook_internal.hook_info(h, t);
END
$$;
COMMENT ON FUNCTION webhook.update_hook(bigint, bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure,
                                       text) IS
    'change a hook: NULL arguments keep their value, secret => '''' generates a new secret, filter => ''$'' removes the filter, transform => ''-'' the transform, active => true clears disabled_reason and the failures counted towards webhook.disable_after and re-enables (or resumes) the hook where it stopped, with the events it missed, or from now with resume => ''now''; returns the hook as webhook.hooks() shows it';

CREATE OR REPLACE FUNCTION webhook.delete_hook(id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(id, 'id');
    DELETE FROM webhook.hook x
     WHERE x.id = delete_hook.id
       AND webhook_internal.manages((SELECT tr.tenant FROM webhook.transport tr
                              WHERE tr.id = x.transport_id));
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('hook', id);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook.delete_hook(bigint) IS
    'delete a hook with its deliveries';

CREATE OR REPLACE FUNCTION webhook.hooks(
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
    dir := webhook_internal.check_paging(page, page_size, sort_by, sort_dir,
                                 '{id,uid,transport_id,tenant,url,path,signature,payload_format,ordered,active,created_at,updated_at}', tenant);
    RETURN QUERY EXECUTE format(
        'SELECT i.*
           FROM webhook.hook h
           JOIN webhook.transport t ON t.id = h.transport_id
          CROSS JOIN LATERAL webhook_internal.hook_info(h, t) i
          WHERE ($1 IS NULL OR h.transport_id = $1)
            AND ($2 IS NULL OR t.tenant = $2)
            AND ($5::text[] IS NULL OR t.tenant = ANY ($5))
          ORDER BY i.%I %s, i.id %s
          LIMIT $3 OFFSET $4', sort_by, dir, dir)
        USING transport_id, tenant, page_size, (page - 1)::bigint * page_size,
              webhook_internal.tenants_of(webhook_internal.caller());
END
$$;
COMMENT ON FUNCTION webhook.hooks(bigint, text, integer, integer, text, text) IS
    'list hooks, one page at a time, secrets masked';

CREATE OR REPLACE FUNCTION webhook.hook_secret(id bigint) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.not_null(id, 'id');
    RETURN (webhook_internal.managed_hook(id)).secret;
END
$$;
COMMENT ON FUNCTION webhook.hook_secret(bigint) IS
    'the hook''s signing secret (NULL for signature "none"): the only place it is shown';

CREATE OR REPLACE FUNCTION webhook.sign(scheme text, secret text, msg_id text,
                             ts bigint, body text) RETURNS text
    LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'webhook_sign';
COMMENT ON FUNCTION webhook.sign(text, text, text, bigint, text) IS
    'the signature header value the worker sends for this message';

-- Replace a hook's secret with a generated one and return it (once: after
-- this, hook_secret() shows it).  The secret replaced stays the previous
-- secret until now() + overlap: meanwhile the worker signs every request
-- with both, so that receivers can move to the new one at their own pace;
-- then it drops it.  overlap 0 drops it at once.  Rotating again while an
-- overlap runs keeps only the secret being replaced as the previous one:
-- the one before it signs no more.
CREATE OR REPLACE FUNCTION webhook.rotate_secret(hook_id bigint, overlap interval DEFAULT '24 hours')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
    new_secret text;
    until timestamptz;
BEGIN
    PERFORM webhook_internal.not_null(hook_id, 'hook_id');
    PERFORM webhook_internal.not_null(overlap, 'overlap');
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

    h := webhook_internal.locked_hook(hook_id);
    IF h.signature = 'none' THEN
        RAISE EXCEPTION 'hook % has no secret to rotate', hook_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its signature scheme is "none"; choose one with webhook.update_hook(id, signature => ...), which generates a secret.';
    END IF;

    new_secret := webhook_internal.generate_secret();
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
