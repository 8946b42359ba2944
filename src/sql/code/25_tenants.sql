-- webhook install script, part 2b: tenants.
--
-- Members of webhook_admin (and superusers) manage every tenant; a role
-- granted a tenant with webhook.grant_tenant() manages that tenant only.
-- One rule, two mechanisms:
-- * the tables and views: row-level security (60_privileges.sql), keyed on
--   current_user's grants (_my_tenants);
-- * the API: SECURITY DEFINER functions, which run as the extension's owner
--   and check the grants of their caller (_manages) before they act.  An
--   object of a tenant the caller does not manage "does not exist", the very
--   message an unknown id gets, so that nothing is learnt across tenants.

CREATE OR REPLACE FUNCTION webhook._caller() RETURNS regrole
    LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'webhook_caller';
COMMENT ON FUNCTION webhook._caller() IS
    'the role the session acts as (login role or SET ROLE), whatever SECURITY DEFINER functions run in between';

-- The tenants a role manages; NULL for all of them (superusers and members
-- of webhook_admin).  Grants of roles dropped since are ignored.  Read by a
-- tenant role directly, row-level security lets it see its own grants only.
CREATE OR REPLACE FUNCTION webhook._tenants_of(member oid) RETURNS text[]
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN pg_has_role(member, 'webhook_admin', 'USAGE') THEN NULL
           ELSE ARRAY(SELECT DISTINCT g.tenant
                        FROM webhook.tenant_grant g
                        JOIN pg_roles r ON r.oid = g.role
                       WHERE pg_has_role(member, r.oid, 'USAGE')
                       ORDER BY 1) END
$$;
COMMENT ON FUNCTION webhook._tenants_of(oid) IS
    'the tenants a role manages through its grants, NULL meaning every tenant';

-- For row-level security: the tenants of the role that runs the query.
CREATE OR REPLACE FUNCTION webhook._my_tenants() RETURNS text[]
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT webhook._tenants_of(r.oid) FROM pg_roles r WHERE r.rolname = current_user
$$;
COMMENT ON FUNCTION webhook._my_tenants() IS
    'the tenants current_user manages (NULL: all); row-level security''s key';

-- For the API: does the caller manage the tenant?
CREATE OR REPLACE FUNCTION webhook._manages(tenant text) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(x.tenants IS NULL OR tenant = ANY (x.tenants), false)
      FROM (SELECT webhook._tenants_of(webhook._caller()) AS tenants) x
$$;
COMMENT ON FUNCTION webhook._manages(text) IS
    'whether the caller (webhook._caller()) manages the tenant';

-- Raise an error unless the caller manages the tenant it named.
CREATE OR REPLACE FUNCTION webhook._check_manages(tenant text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT webhook._manages(tenant) THEN
        RAISE EXCEPTION 'permission denied for tenant "%"', tenant
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A member of webhook_admin can grant it with webhook.grant_tenant(role, tenant).';
    END IF;
END
$$;
COMMENT ON FUNCTION webhook._check_manages(text) IS
    'raise an error unless the caller manages the tenant';

-- The transport, if it exists and the caller manages its tenant; else the
-- error an unknown id gets.
CREATE OR REPLACE FUNCTION webhook._managed_transport(id bigint) RETURNS webhook.transport
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t webhook.transport;
BEGIN
    PERFORM webhook._not_null(id, 'transport_id');
    SELECT * INTO t FROM webhook.transport x WHERE x.id = _managed_transport.id;
    IF NOT FOUND OR NOT webhook._manages(t.tenant) THEN
        RAISE EXCEPTION 'transport % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION webhook._managed_transport(bigint) IS
    'the transport, or "does not exist" when it is missing or of a tenant the caller does not manage';

-- The same for a hook, whose tenant is its transport's.
CREATE OR REPLACE FUNCTION webhook._managed_hook(id bigint) RETURNS webhook.hook
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
BEGIN
    PERFORM webhook._not_null(id, 'hook_id');
    SELECT x.* INTO h
      FROM webhook.hook x JOIN webhook.transport t ON t.id = x.transport_id
     WHERE x.id = _managed_hook.id AND webhook._manages(t.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN h;
END
$$;
COMMENT ON FUNCTION webhook._managed_hook(bigint) IS
    'the hook, or "does not exist" when it is missing or of a tenant the caller does not manage';

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

CREATE OR REPLACE FUNCTION webhook.revoke_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
        RAISE EXCEPTION 'permission denied to revoke tenants'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only members of webhook_admin revoke tenants.';
    END IF;
    PERFORM webhook._not_null(role, 'role');
    PERFORM webhook._check_tenant(tenant);
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
CREATE OR REPLACE FUNCTION webhook._forget_dropped_roles() RETURNS void
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

CREATE OR REPLACE VIEW webhook.tenant_grants WITH (security_invoker = true) AS
SELECT g.role, g.tenant, g.granted_at
  FROM webhook.tenant_grant g;
COMMENT ON VIEW webhook.tenant_grants IS
    'which role manages which tenant (members of webhook_admin manage all); a tenant role sees its own';
