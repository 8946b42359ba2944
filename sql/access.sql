-- Access: webhook_admin members manage through the API; other roles have no
-- way into the schema; writers of a watched table need no rights on it.

-- This file runs alone too (test/check REGRESS=access).
\i sql/include/alone.sql

CREATE ROLE webhook_test_admin LOGIN IN ROLE webhook_admin;
CREATE ROLE webhook_test_app LOGIN;
CREATE TABLE access_orders (id integer PRIMARY KEY, total numeric);
GRANT INSERT ON access_orders TO webhook_test_app;
SELECT webhook.watch('access_orders', resource => 'order');

SET ROLE webhook_test_admin;
SELECT webhook.create_transport('access', 'http://127.0.0.1:9') AS t \gset
SELECT webhook.create_hook(:t, '{ORDER_*}', signature => 'hmac-sha256', secret => 'xyz') AS h \gset
SELECT name, base_url FROM webhook.transports() WHERE name = 'access';
SELECT signature, secret FROM webhook.hooks(transport_id => :t);
SELECT webhook.hook_secret(:h);
RESET ROLE;

-- an application role writes orders; the event is captured all the same
SET ROLE webhook_test_app;
INSERT INTO access_orders VALUES (1, 9.5);
SELECT count(*) FROM webhook.event;
SELECT webhook.emit('ORDER_CREATE', '{}');
SELECT webhook.create_transport('sneaky', 'http://127.0.0.1:9');
RESET ROLE;
SELECT event_type, resource_id FROM webhook.event ORDER BY id;

SET ROLE webhook_test_admin;
SELECT webhook.delete_transport(:t);
RESET ROLE;
-- only managers may attach the capture trigger to a table
SELECT has_function_privilege('webhook_test_app', 'webhook.capture()', 'EXECUTE') AS app_may_attach,
       has_function_privilege('webhook_test_admin', 'webhook.capture()', 'EXECUTE') AS admin_may_attach;
SELECT webhook.unwatch('access_orders');
DROP TABLE access_orders;
DELETE FROM webhook.event;
DROP ROLE webhook_test_admin, webhook_test_app;
