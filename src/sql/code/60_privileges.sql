-- webhook install script, part 6: privileges and row-level security.
--
-- Members of webhook_admin (and superusers) manage every tenant: through
-- the API functions, and by reading and writing the catalog and its views.
-- Members of webhook_tenant (made so by webhook.grant_tenant()) read the
-- rows of the tenants they were granted, and change them only through the
-- API.  Nobody else has USAGE on the schema.  Writers of watched tables
-- need nothing here: the capture trigger switches to the extension's owner
-- for its own writes, and a trigger function's EXECUTE right is checked
-- only when the trigger is made (by webhook.watch()), never when it fires.
-- So the trigger function, which writes events for whatever tenant its
-- arguments name, is kept from everyone but the managers (part 4): nobody
-- else can attach it to a table of their own.  What only managers may run
-- is revoked from PUBLIC where it is declared.
--
-- Secrets and credentials (hook.secret and previous_secret; transport.auth,
-- query_key and client_key_password) are granted to nobody: only the
-- extension's owner reads them, and webhook.hook_secret() (or
-- rotate_secret(), once) shows a hook's secret to whoever manages its
-- tenant.  A column added later is granted to nobody until
-- said otherwise, so a new secret is safe by default.
--
-- Row-level security does not bind the extension's owner (no FORCE): the
-- owner is a superuser (webhook.control says superuser), whom row-level
-- security never binds, and it acts only in the extension's own code: the
-- worker, the capture trigger's writes and the API's SECURITY DEFINER
-- functions, which check their caller's grants themselves.

GRANT USAGE ON SCHEMA webhook, webhook_internal TO webhook_admin, webhook_tenant, pg_monitor;
GRANT INSERT, UPDATE, DELETE
   ON webhook.transport, webhook.hook, webhook.watch, webhook.tenant_grant,
      webhook.event, webhook.delivery, webhook.attempt
   TO webhook_admin;
GRANT SELECT ON webhook.watch TO webhook_admin;
GRANT SELECT ON webhook.event, webhook.delivery, webhook.attempt, webhook.tenant_grant,
                webhook.deliveries, webhook.delivery_log, webhook.hook_stats,
                webhook.tenant_grants
   TO webhook_admin, webhook_tenant;
GRANT SELECT (id, tenant, name, base_url, headers, connect_timeout, timeout, tls_verify,
              ca_file, client_cert_file, client_key_file, max_in_flight,
              max_per_second, created_at, updated_at)
   ON webhook.transport TO webhook_admin, webhook_tenant;
GRANT SELECT (id, uid, transport_id, path, event_types, signature, signature_header,
              payload_format, retry_schedule, active, disabled_reason,
              created_at, updated_at, previous_secret_until,
              ordered, on_dead, filter, transform, transform_role,
              failing_since, failing_deaths, last_death_at)
   ON webhook.hook TO webhook_admin, webhook_tenant;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA webhook TO webhook_admin;
-- webhook.attempt's and webhook.event's slots are read and written through
-- them, whose grants and policies then apply; by themselves they are the
-- owner's alone (the same explicit privileges in a fresh install as in one
-- updated from 0.4, whose attempt table became slot 0).  Where the slots stand is for admins and
-- monitoring to read.
REVOKE ALL ON webhook_internal.attempt_0, webhook_internal.attempt_1,
              webhook_internal.attempt_2, webhook_internal.attempt_3,
              webhook_internal.event_1, webhook_internal.event_2,
              webhook_internal.event_3 FROM PUBLIC;
GRANT SELECT ON webhook_internal.log_slot TO webhook_admin, pg_monitor;
GRANT SELECT ON webhook_internal.cursor TO webhook_admin, pg_monitor;

-- Row-level security: admins see and change every row; a tenant role
-- reads its tenants' rows.  A hook's tenant is its transport's, a
-- delivery's its hook's, an attempt's its hook's (or its delivery's, for
-- one recorded before 0.5, which names no hook): each policy reads
-- the table above it, under that table's own policy.
DROP POLICY IF EXISTS admins ON webhook.transport;
CREATE POLICY admins ON webhook.transport TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.hook;
CREATE POLICY admins ON webhook.hook TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.watch;
CREATE POLICY admins ON webhook.watch TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.tenant_grant;
CREATE POLICY admins ON webhook.tenant_grant TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.event;
CREATE POLICY admins ON webhook.event TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.delivery;
CREATE POLICY admins ON webhook.delivery TO webhook_admin USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS admins ON webhook.attempt;
CREATE POLICY admins ON webhook.attempt TO webhook_admin USING (true) WITH CHECK (true);

DROP POLICY IF EXISTS tenants ON webhook.transport;
CREATE POLICY tenants ON webhook.transport FOR SELECT TO webhook_tenant
    USING (tenant IN (SELECT pg_catalog.unnest(webhook_internal.my_tenants())));
DROP POLICY IF EXISTS tenants ON webhook.hook;
CREATE POLICY tenants ON webhook.hook FOR SELECT TO webhook_tenant
    USING (transport_id IN (SELECT t.id FROM webhook.transport t));
DROP POLICY IF EXISTS tenants ON webhook.event;
CREATE POLICY tenants ON webhook.event FOR SELECT TO webhook_tenant
    USING (tenant IN (SELECT pg_catalog.unnest(webhook_internal.my_tenants())));
DROP POLICY IF EXISTS tenants ON webhook.delivery;
CREATE POLICY tenants ON webhook.delivery FOR SELECT TO webhook_tenant
    USING (hook_id IN (SELECT h.id FROM webhook.hook h));
DROP POLICY IF EXISTS tenants ON webhook.attempt;
CREATE POLICY tenants ON webhook.attempt FOR SELECT TO webhook_tenant
    USING (hook_id IN (SELECT h.id FROM webhook.hook h)
           OR delivery_id IN (SELECT d.id FROM webhook.delivery d));
-- a role sees the grants it holds, itself or through a group role
DROP POLICY IF EXISTS tenants ON webhook.tenant_grant;
CREATE POLICY tenants ON webhook.tenant_grant FOR SELECT TO webhook_tenant
    USING (role IN (SELECT r.oid FROM pg_catalog.pg_roles r
                     WHERE pg_catalog.pg_has_role(r.oid, 'USAGE')));
