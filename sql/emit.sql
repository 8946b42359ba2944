-- emit: events raised from SQL, delivered to the tenant's subscribed hooks.

-- This file runs alone too (test/check REGRESS=emit).
\i sql/include/alone.sql

SELECT webhook.create_transport('emit', 'http://127.0.0.1:9', tenant => 'shop1') AS t \gset
SELECT webhook.create_hook(:t, '{ORDER_*,TILL_OPENED}', signature => 'none') AS h \gset

SELECT webhook.emit('ORDER_SETTLED', '{"orderId": 7, "total": 12.5}', tenant => 'shop1',
                    resource => 'orders', resource_id => '7') IS NOT NULL AS has_uid;
SELECT webhook.emit('TILL_OPENED', '{"till": 3}', tenant => 'shop1') IS NOT NULL AS has_uid;
-- stored even when no hook wants it, but then with no delivery
SELECT webhook.emit('STOCK_LOW', '{"sku": "A-1"}', tenant => 'shop1') IS NOT NULL AS has_uid;
SELECT webhook.emit('ORDER_CREATE', '{}', tenant => 'other') IS NOT NULL AS has_uid;

SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.event_type, e.tenant, e.resource, e.resource_id, e.payload,
       count(d.id) AS deliveries
  FROM webhook.event e LEFT JOIN webhook.delivery d ON d.event_id = e.id
 GROUP BY e.id ORDER BY e.id;

-- the uid returned is the event's
SELECT webhook.emit('ORDER_CREATE', '{}', tenant => 'shop1') AS uid \gset
SELECT count(*) AS found FROM webhook.event WHERE uid = :'uid';

-- rolled back: nothing
BEGIN;
SELECT webhook.emit('ORDER_CANCELLED', '{}', tenant => 'shop1') IS NOT NULL AS has_uid;
ROLLBACK;
SELECT count(*) AS cancelled FROM webhook.event WHERE event_type = 'ORDER_CANCELLED';

-- ping: a WEBHOOK_PING delivery to that hook only, whatever its event types
SELECT webhook.ping(:h) IS NOT NULL AS queued;
SELECT webhook_internal.spill(true) AS spilled \gset
SELECT e.event_type, e.tenant, d.hook_id = :h AS to_hook, d.state
  FROM webhook.event e JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.event_type = 'WEBHOOK_PING';
SELECT webhook.ping(-1);
SELECT active FROM webhook.update_hook(:h, active => false);
SELECT webhook.ping(:h);
SELECT active FROM webhook.update_hook(:h, active => true);

-- bad input
SELECT webhook.emit('order settled', '{}');
SELECT webhook.emit('', '{}');
SELECT webhook.emit('ORDER_X', '{}', tenant => 'bad tenant!');
SELECT webhook.emit('ORDER_X', NULL);
SELECT webhook.emit(NULL, '{}');

-- the render helper gives each payload format
SELECT format, webhook.render(format, e, 'hk_test')::jsonb - 'timestamp' - 'createdAt' - 'id' AS body
  FROM webhook.event e, unnest('{standard,thin,envelope,row}'::text[]) AS format
 WHERE e.event_type = 'ORDER_SETTLED';
-- the bodies are written in C (src/render.c): the same bytes jsonb prints
-- of the objects webhook.render() built before, for values that test its
-- escapes, nulls, nesting and times
WITH v(uid, tenant, event_type, resource, resource_id, payload, previous, created_at) AS (
    VALUES (gen_random_uuid(), 'default', 'ORDER_SETTLED', 'orders', '42',
            '{"b": [1, 2.50, {"c": null}], "a": "x\"y\\z\n\u0001é"}'::jsonb,
            '{"status": "open"}'::jsonb, '2026-12-06 10:11:12.345678+03'::timestamptz),
           (gen_random_uuid(), 'tenant "q"', 'ORDER_X', NULL, NULL, '7'::jsonb, NULL,
            '0999-01-02 03:04:05.9999+00'::timestamptz),
           (gen_random_uuid(), 't', 'E\\', 'r/1', 'a"b', '"s"'::jsonb, 'null'::jsonb,
            '10000-01-01 00:00:00.001+00'::timestamptz),
           (gen_random_uuid(), 't', 'E', 'r', NULL, '[]'::jsonb, '{}'::jsonb,
            '0044-03-15 12:00:00+00 BC'::timestamptz),
           (gen_random_uuid(), 't', 'E', NULL, 'id', '{}'::jsonb, NULL, 'infinity'::timestamptz)
), built AS (
    SELECT f.format, webhook_internal.render_body(f.format, v.uid, v.tenant, v.event_type,
                                                  v.resource, v.resource_id, v.payload,
                                                  v.previous, v.created_at, 'hk_"x"') AS body,
           CASE f.format
               WHEN 'standard' THEN
                   (jsonb_build_object('type', v.event_type, 'timestamp', t.iso, 'data', v.payload)
                    || CASE WHEN v.previous IS NULL THEN '{}'::jsonb
                            ELSE jsonb_build_object('previous', v.previous) END)::text
               WHEN 'thin' THEN
                   jsonb_build_object('resourceId', v.resource_id, 'eventType', v.event_type)::text
               WHEN 'envelope' THEN
                   jsonb_build_object('id', v.uid, 'eventType', v.event_type, 'hookId', 'hk_"x"',
                                      'tenant', v.tenant, 'createdAt', t.iso,
                                      'resource', '/' || v.resource, 'resourceId', v.resource_id,
                                      'links', jsonb_build_array(jsonb_build_object(
                                          'href', '/' || v.resource || '/' || v.resource_id,
                                          'method', 'GET', 'rel', 'resource')))::text
               ELSE v.payload::text
           END AS expected
      FROM v
      CROSS JOIN LATERAL (SELECT to_char(v.created_at AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso) t
      CROSS JOIN unnest('{standard,thin,envelope,row,other}'::text[]) AS f(format)
)
SELECT format, count(*) AS bodies, count(*) FILTER (WHERE body IS NOT DISTINCT FROM expected) AS same
  FROM built GROUP BY format ORDER BY format;
SELECT webhook_internal.hook_url('http://h/api', '') AS empty,
       webhook_internal.hook_url('http://h/api/', '/x') AS slash,
       webhook_internal.hook_url('http://h/api', 'x') AS bare,
       webhook_internal.hook_url('http://h/api', '?a=1') AS query;

SELECT webhook.delete_transport(:t);
DELETE FROM webhook.event;
