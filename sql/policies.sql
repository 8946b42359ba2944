-- Delivery policies: settings of transports and hooks, checked like the
-- others and shown by the listings.  (What they do is tested end to end.)

-- This file runs alone too (test/check REGRESS=policies).
\i sql/include/alone.sql

SELECT webhook.create_transport('policies', 'http://127.0.0.1:9', max_per_second => 50) AS t \gset
SELECT name, max_in_flight, max_per_second FROM webhook.transports() WHERE id = :t;
SELECT webhook.create_transport('p2', 'http://127.0.0.1:9', max_per_second => 0);
SELECT webhook.create_transport('p2', 'http://127.0.0.1:9', max_per_second => -1);
SELECT webhook.create_transport('p2', 'http://127.0.0.1:9', max_per_second => 'NaN');
SELECT webhook.create_transport('p2', 'http://127.0.0.1:9', max_per_second => 'infinity');
SELECT max_per_second FROM webhook.update_transport(:t, max_per_second => 0.5);
SELECT max_per_second FROM webhook.update_transport(:t, name => 'policies');
-- 0 removes the limit
SELECT max_per_second FROM webhook.update_transport(:t, max_per_second => 0);

-- ordered, on_dead
SELECT webhook.create_hook(:t, '{ORDER_*}', ordered => 'resource') AS h \gset
SELECT ordered, on_dead, filter, transform FROM webhook.hooks(transport_id => :t);
SELECT webhook.create_hook(:t, ordered => 'fifo');
SELECT webhook.create_hook(:t, ordered => NULL);
SELECT webhook.create_hook(:t, ordered => 'hook', on_dead => 'panic');
SELECT ordered, on_dead FROM webhook.update_hook(:h, ordered => 'hook', on_dead => 'stop');
SELECT ordered, on_dead FROM webhook.update_hook(:h, path => '/x');

-- filter: a jsonpath predicate over the payload; '$' removes it
SELECT filter FROM webhook.update_hook(:h, filter => '$.total > 100');
SELECT webhook.update_hook(:h, filter => '$.total >');
SELECT filter FROM webhook.update_hook(:h, path => '/y');
SELECT filter FROM webhook.update_hook(:h, filter => '$');

-- the filter decides in the writer's trigger: an event that does not match
-- makes no delivery to that hook
CREATE TABLE policies_orders (id int PRIMARY KEY, total numeric, state text);
SELECT webhook.watch('policies_orders', resource => 'order', state_column => 'state');
SELECT webhook.create_transport('filters', 'http://127.0.0.1:9') AS tf \gset
SELECT webhook.create_hook(:tf, '{ORDER_*}', path => '/big', filter => '$.total > 100');
SELECT webhook.create_hook(:tf, '{ORDER_*}', path => '/settled', filter => '$.state == "settled"');
SELECT webhook.create_hook(:tf, '{ORDER_*}', path => '/all');
-- not a predicate: never matches
SELECT webhook.create_hook(:tf, '{ORDER_*}', path => '/notbool', filter => '$.total');
-- a key some payloads lack, a comparison of mismatched types: no match,
-- never an error in the application's write
SELECT webhook.create_hook(:tf, '{ORDER_*}', path => '/odd',
                           filter => '$.customer.vip == true || $.total > "100"');
-- .datetime() raises errors silent mode does not catch (a date compared with
-- a time with time zone): the write goes through, a WARNING says why, and
-- the event goes to the hook as if it matched
SELECT webhook.create_hook(:tf, '{ORDER_CREATE}', path => '/dates',
                           filter => '$.state.datetime() < "2024-01-02T00:00:00+00".datetime()');
INSERT INTO policies_orders VALUES (1, 50, 'created'), (2, 150, 'created');
UPDATE policies_orders SET state = 'settled' WHERE id = 1;
INSERT INTO policies_orders VALUES (3, 10, '2024-01-01');
SELECT webhook.emit('ORDER_IMPORTED', '{"total": 500, "state": "settled"}') IS NOT NULL AS emitted;
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.event_type, coalesce(e.resource_id, '-') AS id,
       string_agg(h.path, ' ' ORDER BY h.path) AS delivered_to
  FROM webhook.event e
  JOIN webhook.delivery d ON d.event_id = e.id
  JOIN webhook.hook h ON h.id = d.hook_id
 WHERE h.transport_id = :tf
 GROUP BY e.id, e.event_type, e.resource_id ORDER BY e.id;
SELECT webhook.unwatch('policies_orders');
DROP TABLE policies_orders;
SELECT webhook.delete_transport(:tf);

-- transform: a function of one webhook.event returning jsonb, run by the
-- worker as the role that set it
CREATE FUNCTION policies_body(e webhook.event) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT jsonb_build_object('orderId', e.resource_id) $$;
CREATE FUNCTION policies_text(e webhook.event) RETURNS text
    LANGUAGE sql AS $$ SELECT e.resource_id $$;
CREATE FUNCTION policies_two(e webhook.event, x int) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT transform FROM webhook.update_hook(:h, transform => 'policies_body(webhook.event)');
SELECT transform::text, transform_role::text = current_user AS set_by_me
  FROM webhook.hook WHERE id = :h;
SELECT webhook.update_hook(:h, transform => 'policies_text(webhook.event)');
SELECT webhook.update_hook(:h, transform => 'policies_two(webhook.event, integer)');
SELECT webhook.update_hook(:h, transform => 'nosuch(webhook.event)');
-- nobody can make it run as somebody else: the role is the writer's
UPDATE webhook.hook SET transform_role = 'pg_monitor' WHERE id = :h;
SELECT transform_role::text = current_user AS still_me FROM webhook.hook WHERE id = :h;
-- a role may set only a transform it may execute
CREATE ROLE webhook_test_policy LOGIN IN ROLE webhook_admin;
REVOKE EXECUTE ON FUNCTION policies_body(webhook.event) FROM PUBLIC;
SET SESSION AUTHORIZATION webhook_test_policy;
\set VERBOSITY terse
SELECT webhook.update_hook(:h, transform => 'policies_body(webhook.event)');
\set VERBOSITY default
SELECT transform FROM webhook.update_hook(:h, transform => '-');
RESET SESSION AUTHORIZATION;
SELECT transform, transform_role FROM webhook.hook WHERE id = :h;

-- re-enabled by a direct write, a hook forgets why it was disabled (or
-- paused), as with update_hook(id, active => true)
UPDATE webhook.hook SET active = false, disabled_reason = 'the receiver answered 410 Gone' WHERE id = :h;
UPDATE webhook.hook SET active = true WHERE id = :h;
SELECT active, disabled_reason FROM webhook.hook WHERE id = :h;

-- a restore (a superuser copying rows back) keeps who set the transform
GRANT EXECUTE ON FUNCTION policies_body(webhook.event) TO webhook_test_policy;
INSERT INTO webhook.hook (transport_id, event_types, transform, transform_role)
VALUES (:t, '{RESTORED_*}', 'policies_body(webhook.event)', 'webhook_test_policy')
RETURNING transform_role;
DELETE FROM webhook.hook WHERE transport_id = :t AND event_types = '{RESTORED_*}';
-- a function whose owner lacks the setter's rights is refused: its owner
-- could change what then runs with them
CREATE ROLE webhook_test_fn_owner;
CREATE FUNCTION policies_owned(e webhook.event) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
ALTER FUNCTION policies_owned(webhook.event) OWNER TO webhook_test_fn_owner;
SET SESSION AUTHORIZATION webhook_test_policy;
\set VERBOSITY terse
SELECT webhook.update_hook(:h, transform => 'policies_owned(webhook.event)');
\set VERBOSITY default
RESET SESSION AUTHORIZATION;

-- preview: the exact request; here a receiver built for another system
-- (an order-automation API) gets {"orderId": …, "eventType": "OrderAccepted"} from an
-- ORDER_ACCEPTED event of a watched orders table
CREATE FUNCTION automation_body(e webhook.event) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'orderId', e.resource_id,
        'eventType', replace(initcap(replace(e.event_type, '_', ' ')), ' ', ''))
$$;
CREATE TABLE policies_orders (id uuid PRIMARY KEY, state text NOT NULL);
SELECT webhook.watch('policies_orders', resource => 'order', state_column => 'state');
SELECT webhook.create_transport('automation', 'http://www.example.org/automation/',
                                query_key => 'QueryParameterKey-SECRET') AS ta \gset
SELECT webhook.create_hook(:ta, '{ORDER_ACCEPTED}', signature => 'hmac-sha256',
                           secret => 'HeaderSecret-SECRET',
                           transform => 'automation_body(webhook.event)') AS ha \gset
INSERT INTO policies_orders VALUES ('07c6ad8c-d1ba-4e73-9bbf-c70a085a449c', 'created');
UPDATE policies_orders SET state = 'accepted';
SELECT id AS ea FROM webhook.event WHERE event_type = 'ORDER_ACCEPTED' \gset
SELECT url, body FROM webhook.preview(:ha, :ea);
SELECT regexp_replace(h, '[0-9a-f]{64}|[0-9a-f-]{36}|(?<=^User-Agent: pg-webhook/).*', '…') AS header
  FROM webhook.preview(:ha, :ea) p, unnest(p.headers) h;
-- the signature is over these bytes, with the hook's secret
SELECT p.headers @> ARRAY['X-Signature: ' ||
           webhook.sign('hmac-sha256', 'HeaderSecret-SECRET', '', 0, p.body)] AS signed
  FROM webhook.preview(:ha, :ea) p;
-- errors: a transform that fails says why, as the attempt would
CREATE OR REPLACE FUNCTION automation_body(e webhook.event) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT (e.payload->>'state')::int::text::jsonb $$;
SELECT body FROM webhook.preview(:ha, :ea);
SELECT webhook.preview(:ha, 999999);
SELECT webhook.preview(999999, :ea);
SELECT webhook.unwatch('policies_orders');
DROP TABLE policies_orders;
SELECT webhook.delete_transport(:ta);
DROP FUNCTION automation_body(webhook.event);
SELECT webhook.delete_transport(:t);
DELETE FROM webhook.event;
DROP FUNCTION policies_body(webhook.event), policies_text(webhook.event),
              policies_two(webhook.event, integer), policies_owned(webhook.event);
DROP ROLE webhook_test_policy, webhook_test_fn_owner;
