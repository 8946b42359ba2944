-- webhook install script, code part 3 (after the validators): the policy
-- on what a tenant may store.  The limits (webhook.max_* settings) and the
-- write triggers that hold every row of webhook.transport and webhook.hook
-- to the validators and the limits, whoever writes it: the API's functions
-- or an admin's INSERT and UPDATE.  The conventions of 29_validators.sql
-- hold.

-- Limits.  What a tenant configures is bounded twice: every text it passes
-- by a fixed length in bytes (_check_length; those that are indexed must fit
-- an index row, the others are bounded all the same), and counts, retry
-- steps and timeouts by settings (webhook.max_*, read with _limit(), checked
-- by _check_transport_limits, _check_hook_limits and the write triggers).
-- A setting holds for new values only: a row above a limit lowered since
-- stays, and writes that leave that value as it is go through.
CREATE OR REPLACE FUNCTION webhook_internal.tenant_limit(name text) RETURNS integer
    LANGUAGE c STRICT STABLE AS 'MODULE_PATHNAME', 'webhook_limit';
COMMENT ON FUNCTION webhook_internal.tenant_limit(text) IS
    'the value of the setting webhook.<name> (max_timeout in milliseconds)';

-- The settings' limits on a transport about to be stored, and its tenant,
-- which never changes; old is the row it replaces (NULL for a new one): a
-- value that does not change is not held to the settings.
CREATE OR REPLACE FUNCTION webhook_internal.check_transport_limits(t webhook.transport, old webhook.transport)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    max_timeout constant interval := webhook_internal.tenant_limit('max_timeout') * interval '1 ms';
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
COMMENT ON FUNCTION webhook_internal.check_transport_limits(webhook.transport, webhook.transport) IS
    'raise an error when a transport''s new timeouts exceed webhook.max_timeout, or it moves to another tenant';

-- The same for a hook: retry steps, event type patterns, and its tenant
-- (a hook does not move to a transport of another tenant).
CREATE OR REPLACE FUNCTION webhook_internal.check_hook_limits(h webhook.hook, old webhook.hook)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    n := webhook_internal.tenant_limit('max_retry_steps');
    IF h.retry_schedule IS DISTINCT FROM old.retry_schedule
       AND cardinality(h.retry_schedule) > n THEN
        RAISE EXCEPTION 'retry_schedule has % steps, more than webhook.max_retry_steps (%)',
                        cardinality(h.retry_schedule), n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give fewer, longer steps; an administrator sets webhook.max_retry_steps.';
    END IF;
    n := webhook_internal.tenant_limit('max_event_types');
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
                    WHERE t.id = h.transport_id AND webhook_internal.manages(t.tenant))
       AND (SELECT t.tenant FROM webhook.transport t WHERE t.id = h.transport_id)
           IS DISTINCT FROM
           (SELECT t.tenant FROM webhook.transport t WHERE t.id = old.transport_id) THEN
        RAISE EXCEPTION 'hook % cannot move to a transport of another tenant', old.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Create a hook on the other tenant''s transport: the history of a hook stays with its tenant.';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_hook_limits(webhook.hook, webhook.hook) IS
    'raise an error when a hook''s new retry_schedule or event_types exceed their settings, or it moves to another tenant';

-- Raise program_limit_exceeded when the tenant has as many transports (or
-- hooks: what) as its setting allows.  Takes the tenant's lock until the
-- transaction ends first, so that concurrent creations in one tenant count
-- one after the other (each statement of this function sees what committed
-- before it, in READ COMMITTED; in SERIALIZABLE a concurrent creation is a
-- serialization failure).
CREATE OR REPLACE FUNCTION webhook_internal.check_tenant_room(tenant text, what text) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lim constant integer := webhook_internal.tenant_limit('max_' || what || '_per_tenant');
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('webhook.tenant ' || tenant, 0));
    IF what = 'transports' THEN
        SELECT count(*) INTO n FROM webhook.transport t
         WHERE t.tenant = check_tenant_room.tenant;
    ELSE
        SELECT count(*) INTO n FROM webhook.hook h
          JOIN webhook.transport t ON t.id = h.transport_id
         WHERE t.tenant = check_tenant_room.tenant;
    END IF;
    IF n >= lim THEN
        RAISE EXCEPTION 'tenant "%" has % %, the most webhook.max_%_per_tenant allows',
                        tenant, n, what, what
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = format('Delete one first; an administrator sets webhook.max_%s_per_tenant.', what);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_tenant_room(text, text) IS
    'raise an error when the tenant has as many transports or hooks as webhook.max_transports_per_tenant or max_hooks_per_tenant allow';

-- The same checks on every write to the tables, whoever makes it: an
-- admin's direct INSERT or UPDATE can store nothing that the API functions
-- would refuse (a header value with CR LF would become a header line of its
-- own).  The hook trigger fires only for the columns the checks read, so the
-- worker's disabling of a hook (active, disabled_reason) never runs it.
CREATE OR REPLACE FUNCTION webhook_internal.transport_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (OLD is NULL for an INSERT)
    PERFORM webhook_internal.check_transport_limits(NEW, OLD);
    NEW := webhook_internal.check_transport(NEW);
    -- files on the database server: only for those who manage every tenant
    -- (a tenant could otherwise read, or present, another one's key)
    IF (NEW.ca_file, NEW.client_cert_file, NEW.client_key_file) IS DISTINCT FROM
       (CASE WHEN TG_OP = 'UPDATE' THEN (OLD.ca_file, OLD.client_cert_file, OLD.client_key_file)
             ELSE (NULL::text, NULL::text, NULL::text) END) THEN
        PERFORM webhook_internal.require_admin(
            'set ca_file, client_cert_file and client_key_file',
            'They name files on the database server: ask an administrator to set them.');
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM webhook_internal.check_tenant_room(NEW.tenant, 'transports');
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION webhook_internal.transport_written() IS
    'trigger: a transport row is checked and normalised however it is written';
CREATE OR REPLACE TRIGGER transport_checked BEFORE INSERT OR UPDATE ON webhook.transport
    FOR EACH ROW EXECUTE FUNCTION webhook_internal.transport_written();

CREATE OR REPLACE FUNCTION webhook_internal.hook_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a transform whose role is gone is removed, the hook disabled, and
    -- nothing else changed (webhook_internal.forget_dropped_roles(), after DROP
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
    PERFORM webhook_internal.check_hook_limits(NEW, OLD);
    NEW := webhook_internal.check_hook(NEW, TG_OP = 'UPDATE');
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
        PERFORM webhook_internal.require_admin(
            'set transforms',
            'A transform runs inside the delivery worker: ask an administrator to set it.');
        IF TG_OP = 'UPDATE' OR NEW.transform_role IS NULL
           OR NOT pg_has_role(webhook_internal.caller(), NEW.transform_role, 'MEMBER') THEN
            NEW.transform_role := webhook_internal.caller();
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
        PERFORM webhook_internal.check_tenant_room(
            (SELECT t.tenant FROM webhook.transport t WHERE t.id = NEW.transport_id), 'hooks');
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION webhook_internal.hook_written() IS
    'trigger: a hook row is checked and normalised however it is written';
CREATE OR REPLACE TRIGGER hook_checked
    BEFORE INSERT OR UPDATE OF transport_id, path, event_types, secret, signature,
                               signature_header, payload_format, retry_schedule,
                               ordered, on_dead, filter, transform, transform_role,
                               active
    ON webhook.hook FOR EACH ROW EXECUTE FUNCTION webhook_internal.hook_written();
