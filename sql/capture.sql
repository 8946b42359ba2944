-- Capture: watched tables' changes become events in the writing
-- transaction, and deliveries once the log is spilled: by the worker, also
-- while sending is off, as in this suite, and here by
-- webhook_internal.spill(true) before the deliveries are read, which waits
-- for the worker's if one is under way (what is checked does not depend on
-- who spilled).  They stay pending.

-- This file runs alone too (test/check REGRESS=capture).
\i sql/include/alone.sql

CREATE TABLE shop_orders (
    id integer PRIMARY KEY,
    shop text NOT NULL,
    "Order State" text NOT NULL DEFAULT 'created',
    total numeric(10,2)
);

-- two tenants, each with one transport; hooks with exact, pattern and * types
SELECT webhook.create_transport('pos', 'http://127.0.0.1:9/pos', tenant => 'acme') AS acme_t \gset
SELECT webhook.create_transport('pos', 'http://127.0.0.1:9/pos', tenant => 'globex') AS globex_t \gset
SELECT webhook.create_hook(:acme_t, '{ORDER_*}', signature => 'none') AS h_pattern \gset
SELECT webhook.create_hook(:acme_t, '{ORDER_SETTLED}', signature => 'none') AS h_exact \gset
SELECT webhook.create_hook(:globex_t, '{*}', signature => 'none') AS h_all \gset
SELECT webhook.create_transport('tills', 'http://127.0.0.1:9/tills') AS default_t \gset
SELECT webhook.create_hook(:default_t, '{TILL_*}', signature => 'none') AS h_till \gset

-- the state column's name needs quoting; the tenant comes from "shop"
SELECT webhook.watch('shop_orders', resource => 'order', tenant_column => 'shop',
                     state_column => 'Order State');
SELECT tbl, resource, tenant_column, id_column, state_column, events FROM webhook.watch;

CREATE VIEW captured AS
SELECT e.event_type, e.tenant, e.resource, e.resource_id, e.payload, e.previous,
       (SELECT array_agg(CASE d.hook_id WHEN :h_pattern THEN 'pattern'
                                        WHEN :h_exact THEN 'exact'
                                        WHEN :h_all THEN 'all' END
                         ORDER BY d.hook_id)
          FROM webhook.delivery d WHERE d.event_id = e.id) AS hooks,
       (SELECT bool_and(d.state = 'pending') FROM webhook.delivery d WHERE d.event_id = e.id) AS pending
  FROM webhook.event e ORDER BY e.id;

-- multi-row INSERT: one event per row, routed by tenant
INSERT INTO shop_orders (id, shop, total) VALUES (1, 'acme', 10), (2, 'globex', 20), (3, 'initech', 30);
-- a state change is <RESOURCE>_<NEW STATE>; other changes are _UPDATE with "previous"
UPDATE shop_orders SET "Order State" = 'settled' WHERE id = 1;
UPDATE shop_orders SET total = 25 WHERE id = 2;
UPDATE shop_orders SET "Order State" = 'out for delivery', total = 26 WHERE id = 2;
-- an UPDATE that changes nothing emits nothing
UPDATE shop_orders SET total = total;
DELETE FROM shop_orders WHERE id = 2;
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT * FROM captured;

-- initech has no hook: no event is stored at all
SELECT count(*) AS initech_events FROM webhook.event WHERE tenant = 'initech';

-- a rolled-back transaction leaves nothing
DELETE FROM webhook.event;
BEGIN;
INSERT INTO shop_orders (id, shop) VALUES (10, 'acme');
ROLLBACK;
SELECT count(*) AS after_rollback FROM webhook.event;

-- a rolled-back savepoint leaves nothing of its part
BEGIN;
INSERT INTO shop_orders (id, shop) VALUES (11, 'acme');
SAVEPOINT s;
INSERT INTO shop_orders (id, shop) VALUES (12, 'acme');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT resource_id FROM webhook.event ORDER BY id;

-- COPY goes through the trigger too
DELETE FROM webhook.event;
COPY shop_orders (id, shop, total) FROM stdin;
20	acme	1.50
21	globex	2.50
\.
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT event_type, tenant, resource_id, payload->>'total' AS total, hooks FROM captured;

-- hooks are re-read after a change: a hook that no longer subscribes to a
-- type gets none of its events; an inactive hook's are logged with it, as
-- an active one's (its cursor reads them once it is re-enabled)
DELETE FROM webhook.event;
SELECT active FROM webhook.update_hook(:h_pattern, active => false);
SELECT event_types FROM webhook.update_hook(:h_exact, event_types => '{ORDER_CREATE}');
INSERT INTO shop_orders (id, shop) VALUES (30, 'acme');
UPDATE shop_orders SET "Order State" = 'settled' WHERE id = 30;
SELECT e.event_type,
       ARRAY(SELECT CASE h WHEN :h_pattern THEN 'pattern' WHEN :h_exact THEN 'exact' END
               FROM unnest(e.hook_ids) h ORDER BY h) AS logged_for
  FROM webhook.event e ORDER BY e.id;
SELECT event_types FROM webhook.update_hook(:h_exact, event_types => '{ORDER_SETTLED}');
SELECT active FROM webhook.update_hook(:h_pattern, active => true);
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT event_type, hooks, pending FROM captured;

-- watch is idempotent and can narrow the events
SELECT webhook.watch('shop_orders', resource => 'order', tenant_column => 'shop',
                     events => '{insert}');
SELECT tgname, pg_get_triggerdef(oid) LIKE '%AFTER INSERT ON public.shop_orders%' AS insert_only
  FROM pg_trigger WHERE tgrelid = 'shop_orders'::regclass AND NOT tgisinternal;
DELETE FROM webhook.event;
UPDATE shop_orders SET total = 99 WHERE id = 30;
SELECT count(*) AS after_update_on_insert_only FROM webhook.event;

-- an explicit id column; a table without a key needs one
CREATE TABLE till_events (till text, amount integer);
SELECT webhook.watch('till_events');
SELECT webhook.watch('till_events', id_column => 'till', resource => 'till');
DELETE FROM webhook.event;
INSERT INTO till_events VALUES ('T-1', 5);
SELECT event_type, tenant, resource, resource_id, payload FROM webhook.event;

-- bad arguments, each changing nothing
SELECT webhook.watch('no_such_table');
SELECT webhook.watch('shop_orders', tenant_column => 'tenant');
SELECT webhook.watch('shop_orders', state_column => 'order state');
SELECT webhook.watch('shop_orders', id_column => 'nope');
SELECT webhook.watch('shop_orders', events => '{TRUNCATE}');
SELECT webhook.watch('shop_orders', events => '{}');
SELECT webhook.watch('shop_orders', resource => 'bad name');
SELECT webhook.watch('captured');
SELECT tbl, events FROM webhook.watch ORDER BY tbl::text;

-- the trigger refuses to be installed by hand the wrong way
CREATE TRIGGER wrong BEFORE INSERT ON till_events FOR EACH ROW EXECUTE FUNCTION webhook.capture();
INSERT INTO till_events VALUES ('T-2', 1);
DROP TRIGGER wrong ON till_events;

-- The log as the extension made it is written directly; changed by an
-- admin (a column, a trigger of hers), by an INSERT statement, which
-- honours the change.  A dropped column is no change.  The deliveries are
-- the spill's: its INSERT statement honours what an admin added to
-- webhook.delivery, and what that refuses stops the spill, never the
-- writer.
SELECT webhook.watch('shop_orders', resource => 'order', tenant_column => 'shop',
                     state_column => 'Order State');
DELETE FROM webhook.event;
ALTER TABLE webhook.event ADD COLUMN note text DEFAULT 'by statement';
CREATE TABLE noted_deliveries (state text);
CREATE FUNCTION delivery_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.noted_deliveries VALUES (NEW.state);
    RETURN NULL;
END
$$;
CREATE TRIGGER noted AFTER INSERT ON webhook.delivery
    FOR EACH ROW EXECUTE FUNCTION delivery_inserted();
INSERT INTO shop_orders (id, shop) VALUES (41, 'acme');
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT resource_id, note FROM webhook.event;
SELECT state, count(*) FROM noted_deliveries GROUP BY state;
DROP TRIGGER noted ON webhook.delivery;
DROP FUNCTION delivery_inserted();
DROP TABLE noted_deliveries;
ALTER TABLE webhook.event DROP COLUMN note;
-- a CHECK constraint of the admin's in place of the extension's, too
ALTER TABLE webhook.delivery DROP CONSTRAINT delivery_state_check,
    ADD CONSTRAINT admins_check CHECK (hook_id < 0) NOT VALID;
INSERT INTO shop_orders (id, shop) VALUES (43, 'acme');
\set VERBOSITY terse
SELECT webhook_internal.spill(true) AS spilled \gset
\set VERBOSITY default
ALTER TABLE webhook.delivery DROP CONSTRAINT admins_check,
    ADD CONSTRAINT delivery_state_check
        CHECK (state IN ('pending', 'delivering', 'succeeded', 'failed', 'dead', 'cancelled'));
INSERT INTO shop_orders (id, shop, total) VALUES (42, 'acme', 4.2);
UPDATE shop_orders SET total = 4.3 WHERE id = 42;
UPDATE shop_orders SET total = 4.4, "Order State" = 'settled' WHERE id = 42;
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT * FROM captured;
SELECT count(*) AS events, count(DISTINCT uid) AS distinct_uids,
       count(*) FILTER (WHERE uid::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab]') AS random_uids
  FROM webhook.event;
SELECT d.state, d.attempts, d.next_attempt_at BETWEEN e.created_at AND now() AS due_at_once,
       d.created_at >= e.created_at AS after_the_event, d.finished_at, d.last_status
  FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id
 WHERE e.resource_id = '42' ORDER BY d.id;
-- a column made NOT NULL that the extension leaves null: the spill's
-- statement refuses the row, as PostgreSQL would any other, until it goes
-- (everything spilled first, so that no spill of the worker's is left to
-- make a delivery of an event deleted here)
SELECT webhook_internal.spill(true) AS spilled \gset
DELETE FROM webhook.event;
DELETE FROM webhook.delivery;
ALTER TABLE webhook.delivery ALTER COLUMN last_error SET NOT NULL;
INSERT INTO shop_orders (id, shop) VALUES (44, 'acme');
\set VERBOSITY terse
SELECT webhook_internal.spill(true) AS spilled \gset
\set VERBOSITY default
ALTER TABLE webhook.delivery ALTER COLUMN last_error DROP NOT NULL;
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT count(*) AS deliveries FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id
 WHERE e.resource_id = '44' AND d.last_error IS NULL;
SELECT webhook.watch('shop_orders', resource => 'order', tenant_column => 'shop',
                     events => '{insert}');

-- unwatch removes the trigger and the configuration
SELECT webhook.unwatch('shop_orders');
SELECT webhook.unwatch('shop_orders');
DELETE FROM webhook.event;
INSERT INTO shop_orders (id, shop) VALUES (40, 'acme');
SELECT count(*) AS after_unwatch FROM webhook.event;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'shop_orders'::regclass AND NOT tgisinternal;
SELECT tbl FROM webhook.watch;

SELECT webhook.unwatch('till_events');
DROP VIEW captured;
DROP TABLE shop_orders, till_events;
SELECT webhook.delete_transport(:acme_t);
SELECT webhook.delete_transport(:globex_t);
SELECT webhook.delete_transport(:default_t);
DELETE FROM webhook.event;
