-- webhook install script, part 2b: tenants.
--
-- Members of webhook_admin (and superusers) manage every tenant; a role
-- granted a tenant with webhook.grant_tenant() manages that tenant only.
-- One rule, two mechanisms:
-- * the tables and views: row-level security (60_privileges.sql), keyed on
--   current_user's grants (my_tenants);
-- * the API: SECURITY DEFINER functions, which run as the extension's owner
--   and check the grants of their caller (manages) before they act.  An
--   object of a tenant the caller does not manage "does not exist", the very
--   message an unknown id gets, so that nothing is learnt across tenants.

CREATE OR REPLACE FUNCTION webhook_internal.caller() RETURNS regrole
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'webhook_caller';
COMMENT ON FUNCTION webhook_internal.caller() IS
    'the role the session acts as (login role or SET ROLE), whatever SECURITY DEFINER functions run in between';

-- The tenants a role manages; NULL for all of them (superusers and members
-- of webhook_admin).  Grants of roles dropped since are ignored.  Read by a
-- tenant role directly, row-level security lets it see its own grants only.
CREATE OR REPLACE FUNCTION webhook_internal.tenants_of(member oid) RETURNS text[]
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pg_has_role(member, 'webhook_admin', 'USAGE') THEN NULL
           ELSE ARRAY(SELECT DISTINCT g.tenant
                        FROM webhook.tenant_grant g
                        JOIN pg_roles r ON r.oid = g.role
                       WHERE pg_has_role(member, r.oid, 'USAGE')
                       ORDER BY 1) END
$$;
COMMENT ON FUNCTION webhook_internal.tenants_of(oid) IS
    'the tenants a role manages through its grants, NULL meaning every tenant';

-- For row-level security: the tenants of the role that runs the query.
CREATE OR REPLACE FUNCTION webhook_internal.my_tenants() RETURNS text[]
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT webhook_internal.tenants_of(r.oid) FROM pg_roles r WHERE r.rolname = current_user
$$;
COMMENT ON FUNCTION webhook_internal.my_tenants() IS
    'the tenants current_user manages (NULL: all); row-level security''s key';

-- Raise insufficient_privilege unless the caller manages every tenant (a
-- superuser or a member of webhook_admin): "only members of webhook_admin
-- <action>".
CREATE OR REPLACE FUNCTION webhook_internal.require_admin(action text, hint text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF webhook_internal.tenants_of(webhook_internal.caller()) IS NOT NULL THEN
        RAISE EXCEPTION 'only members of webhook_admin %', action
            USING ERRCODE = 'insufficient_privilege', HINT = hint;
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.require_admin(text, text) IS
    'raise an error unless the caller (webhook_internal.caller()) manages every tenant';

-- For the API: does the caller manage the tenant?
CREATE OR REPLACE FUNCTION webhook_internal.manages(tenant text) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(x.tenants IS NULL OR tenant = ANY (x.tenants), false)
      FROM (SELECT webhook_internal.tenants_of(webhook_internal.caller()) AS tenants) x
$$;
COMMENT ON FUNCTION webhook_internal.manages(text) IS
    'whether the caller (webhook_internal.caller()) manages the tenant';

-- Raise an error unless the caller manages the tenant it named.
CREATE OR REPLACE FUNCTION webhook_internal.check_manages(tenant text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT webhook_internal.manages(tenant) THEN
        RAISE EXCEPTION 'permission denied for tenant "%"', tenant
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A member of webhook_admin can grant it with webhook.grant_tenant(role, tenant).';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_manages(text) IS
    'raise an error unless the caller manages the tenant';

-- The error an unknown id gets: of a transport, hook, delivery or event
-- that is missing, or of a tenant the caller does not manage, alike.
CREATE OR REPLACE FUNCTION webhook_internal.does_not_exist(what text, id bigint) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% % does not exist', what, id
        USING ERRCODE = 'no_data_found';
END
$$;
COMMENT ON FUNCTION webhook_internal.does_not_exist(text, bigint) IS
    'raise the error of an unknown or unmanaged id: "<what> <id> does not exist"';

-- The hook, if it exists and the caller manages its tenant (its
-- transport's); else the error an unknown id gets.
CREATE OR REPLACE FUNCTION webhook_internal.managed_hook(id bigint) RETURNS webhook.hook
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
BEGIN
    PERFORM webhook_internal.not_null(id, 'hook_id');
    SELECT x.* INTO h
      FROM webhook.hook x JOIN webhook.transport t ON t.id = x.transport_id
     WHERE x.id = managed_hook.id AND webhook_internal.manages(t.tenant);
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('hook', id);
    END IF;
    RETURN h;
END
$$;
COMMENT ON FUNCTION webhook_internal.managed_hook(bigint) IS
    'the hook, or "does not exist" when it is missing or of a tenant the caller does not manage';

-- The same, locked for an update.  Another tenant's row is neither locked
-- nor waited for: it does not exist before it is locked.
CREATE OR REPLACE FUNCTION webhook_internal.locked_hook(id bigint) RETURNS webhook.hook
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook := webhook_internal.managed_hook(id);
BEGIN
    SELECT x.* INTO h FROM webhook.hook x WHERE x.id = h.id FOR UPDATE;
    IF NOT FOUND THEN
        -- deleted meanwhile
        PERFORM webhook_internal.does_not_exist('hook', id);
    END IF;
    RETURN h;
END
$$;
COMMENT ON FUNCTION webhook_internal.locked_hook(bigint) IS
    'the hook locked FOR UPDATE, or "does not exist" when it is missing or of a tenant the caller does not manage';
REVOKE EXECUTE ON FUNCTION webhook_internal.locked_hook(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook.grant_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM webhook_internal.require_admin('grant tenants', 'Ask a member of webhook_admin.');
    PERFORM webhook_internal.not_null(role, 'role');
    -- a number given as the role (a regrole of an oid) may name no role
    IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION 'role with OID % does not exist', role::oid
            USING ERRCODE = 'undefined_object',
                  HINT = 'Name an existing role.';
    END IF;
    PERFORM webhook_internal.check_tenant(tenant);
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

CREATE OR REPLACE FUNCTION webhook.revoke_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.require_admin('revoke tenants', 'Ask a member of webhook_admin.');
    PERFORM webhook_internal.not_null(role, 'role');
    PERFORM webhook_internal.check_tenant(tenant);
    -- the role stays a member of webhook_tenant: roles are the cluster's,
    -- grants this database's; with no grant left it sees no rows
    DELETE FROM webhook.tenant_grant g
     WHERE g.role = revoke_tenant.role AND g.tenant = revoke_tenant.tenant;
    RETURN FOUND;
END
$$;
COMMENT ON FUNCTION webhook.revoke_tenant(regrole, text) IS
    'stop a role from managing a tenant, from its next statement on; returns false if it did not';
REVOKE EXECUTE ON FUNCTION webhook.revoke_tenant(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.revoke_tenant(regrole, text) TO webhook_admin;

-- After DROP ROLE (src/webhook.c calls it, as the extension's owner): the
-- grants of roles that are gone go, and so do transforms set by them, with
-- their hooks disabled (the transform shaped, perhaps filtered, what the
-- receiver gets: sending the event as it is instead is for an
-- administrator to decide).  A role that gets one of their oids one day
-- is given nothing.
CREATE OR REPLACE FUNCTION webhook_internal.forget_dropped_roles() RETURNS void
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
COMMENT ON FUNCTION webhook_internal.forget_dropped_roles() IS
    'after DROP ROLE: delete the grants of dropped roles, and remove the transforms they set, disabling their hooks';
REVOKE EXECUTE ON FUNCTION webhook_internal.forget_dropped_roles() FROM PUBLIC;

CREATE OR REPLACE VIEW webhook.tenant_grants WITH (security_invoker = true) AS
SELECT g.role, g.tenant, g.granted_at
  FROM webhook.tenant_grant g;
COMMENT ON VIEW webhook.tenant_grants IS
    'which role manages which tenant (members of webhook_admin manage all); a tenant role sees its own';
