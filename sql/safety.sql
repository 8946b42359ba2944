-- Never harm the host database, at the SQL surface: what a hostile table
-- owner, an admin's direct write or typo, and DDL on a watched table can and
-- cannot do.  (What a hostile receiver can do is tested end to end.)

-- This file runs alone too (test/check REGRESS=safety).
\i sql/include/alone.sql

SELECT webhook.create_transport('safety', 'http://127.0.0.1:9') AS t \gset
SELECT webhook.create_hook(:t, '{*}') AS h \gset

------------------------------------------------------------------------------
-- 1. Code reached from a watched row runs as the writer, never as the
--    extension's owner.  A table owner with no rights on the webhook schema
--    gives a column a type whose cast to json tries to make its owner a
--    superuser; the capture trigger serialises the row with that cast.
------------------------------------------------------------------------------
CREATE ROLE webhook_test_owner LOGIN;
GRANT CREATE ON SCHEMA public TO webhook_test_owner;
SET ROLE webhook_test_owner;
CREATE TABLE owned_orders (id integer PRIMARY KEY);
CREATE TABLE cast_ran_as (who text, escalated boolean);
RESET ROLE;
SELECT webhook.watch('owned_orders', resource => 'order');

SET ROLE webhook_test_owner;
CREATE TYPE mood AS ENUM ('happy');
CREATE FUNCTION mood_json(m mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE webhook_test_owner SUPERUSER';
        INSERT INTO cast_ran_as VALUES (current_user, true);
    EXCEPTION WHEN insufficient_privilege THEN
        INSERT INTO cast_ran_as VALUES (current_user, false);
    END;
    RETURN to_json(m::text);
END
$$;
CREATE CAST (mood AS json) WITH FUNCTION mood_json(mood);
ALTER TABLE owned_orders ADD COLUMN mood mood DEFAULT 'happy';
INSERT INTO owned_orders VALUES (1);
RESET ROLE;
-- the cast ran, as the table owner, and could not escalate
SELECT who, escalated FROM cast_ran_as;
SELECT rolsuper FROM pg_roles WHERE rolname = 'webhook_test_owner';
-- and the event was captured all the same
SELECT event_type, payload FROM webhook.event WHERE resource = 'order';

-- Every SECURITY DEFINER function of the extension fixes its search_path.
SELECT p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'webhook' AND p.prosecdef
   AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'
 ORDER BY 1;
-- ... and so does every function that takes a table (watch, unwatch) or acts
-- on a hook (ping, SECURITY DEFINER: it checks its caller's tenants); capture
-- and emit run as their caller.
SELECT p.proname, p.prosecdef,
       coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}' AS fixed_path
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'webhook' AND p.proname IN ('watch', 'unwatch', 'ping', 'capture', 'emit')
 ORDER BY 1;

------------------------------------------------------------------------------
-- 2. Direct writes to the tables are checked as the API checks them.
------------------------------------------------------------------------------
UPDATE webhook.transport SET headers = jsonb_build_object('X-A', E'a\r\nInjected: 1')
 WHERE id = :t;
UPDATE webhook.transport SET headers = jsonb_build_object('X-A', E'a\u0001b') WHERE id = :t;
UPDATE webhook.transport SET base_url = 'file:///etc/passwd' WHERE id = :t;
UPDATE webhook.transport SET headers = jsonb_build_object('X-A', E'a\tb') WHERE id = :t;
SELECT headers FROM webhook.transport WHERE id = :t;
UPDATE webhook.hook SET retry_schedule = '[5:5]={1 s}' WHERE id = :h;
UPDATE webhook.hook SET retry_schedule = '{{1 s},{2 s}}' WHERE id = :h;
UPDATE webhook.hook SET retry_schedule = '{1000000 years}' WHERE id = :h;
UPDATE webhook.hook SET signature = 'md5' WHERE id = :h;
INSERT INTO webhook.hook (transport_id, signature, secret, signature_header)
VALUES (:t, 'hmac-sha256', 'k', 'Authorization');
INSERT INTO webhook.hook (transport_id, signature, secret, signature_header)
VALUES (:t, 'hmac-sha256', 'k', 'webhook-extra');
-- a direct insert is normalised like an API call: a signing hook gets a secret
INSERT INTO webhook.hook (transport_id) VALUES (:t) RETURNING secret ~ '^whsec_' AS generated_secret;
-- the API refuses the same schedules
SELECT webhook.update_hook(:h, retry_schedule => '[5:5]={1 s}');
SELECT webhook.update_hook(:h, retry_schedule => '{{1 s},{2 s}}');
SELECT webhook.update_hook(:h, retry_schedule => '{31 days}');
SELECT retry_schedule FROM webhook.hook WHERE id = :h;
SELECT webhook.create_hook(:t, signature => 'hmac-sha1', signature_header => 'authorization');

------------------------------------------------------------------------------
-- 6. Settings are checked when they are set; a refused value keeps the old.
------------------------------------------------------------------------------
SET webhook.retention = 'bogus';
SET webhook.retention = '-1 day';
SHOW webhook.retention;
SET webhook.retention = 'P7D';
SHOW webhook.retention;
SELECT webhook.prune() >= 0 AS prune_works;
RESET webhook.retention;
ALTER SYSTEM SET webhook.deny_networks = '10.0.0.0/8,not-a-network';
ALTER SYSTEM SET webhook.deny_networks = '10.0.0.0/33';
ALTER SYSTEM SET webhook.deny_networks = '10.0.0.0/8x';
ALTER SYSTEM SET webhook.user_agent = E'x\r\nInjected: 1';
SHOW webhook.deny_networks;
SELECT webhook.wait_until_running('-1 s');

------------------------------------------------------------------------------
-- 8. Renaming or dropping a watched table's columns never makes its writes
--    fail: renames are followed, a dropped column is reported.
------------------------------------------------------------------------------
CREATE TABLE renamed_orders (id integer PRIMARY KEY, shop text, state text, "Ref" text);
SELECT webhook.watch('renamed_orders', resource => 'order', tenant_column => 'shop',
                     state_column => 'state');
ALTER TABLE renamed_orders RENAME COLUMN state TO "Order State";
ALTER TABLE renamed_orders RENAME COLUMN shop TO tenant;
ALTER TABLE renamed_orders RENAME COLUMN "Ref" TO ref;
SELECT tenant_column, id_column, state_column FROM webhook.watch WHERE tbl = 'renamed_orders'::regclass;
SELECT pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'renamed_orders'::regclass AND tgname = 'webhook_capture';
INSERT INTO renamed_orders VALUES (1, 'default', 'new', 'r1');
UPDATE renamed_orders SET "Order State" = 'paid' WHERE id = 1;
-- a dropped state column: updates become ORDER_UPDATE
ALTER TABLE renamed_orders DROP COLUMN "Order State";
UPDATE renamed_orders SET ref = 'r2' WHERE id = 1;
-- a dropped id column: events without resource_id
ALTER TABLE renamed_orders DROP CONSTRAINT renamed_orders_pkey, DROP COLUMN id;
INSERT INTO renamed_orders VALUES ('default', 'r3');
-- a dropped tenant column: nothing is captured (no tenant to route to)
ALTER TABLE renamed_orders DROP COLUMN tenant;
INSERT INTO renamed_orders VALUES ('r4');
DELETE FROM renamed_orders;
SELECT event_type, resource_id, payload FROM webhook.event
 WHERE resource = 'order' AND payload ? 'ref' ORDER BY id;
-- a dropped table is no longer watched, and unwatch of its oid is harmless
SELECT 'renamed_orders'::regclass::oid AS dropped_oid \gset
DROP TABLE renamed_orders;
SELECT count(*) FROM webhook.watch WHERE tbl = :dropped_oid;
SET client_min_messages = warning;
SELECT webhook.unwatch(:dropped_oid);
RESET client_min_messages;

SELECT webhook.unwatch('owned_orders');
DROP TABLE owned_orders, cast_ran_as;
DROP CAST (mood AS json);
DROP FUNCTION mood_json(mood);
DROP TYPE mood;
REVOKE CREATE ON SCHEMA public FROM webhook_test_owner;
DROP ROLE webhook_test_owner;
SELECT webhook.delete_transport(:t);
DELETE FROM webhook.event;
