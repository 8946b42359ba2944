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
SELECT webhook_internal.hook_url('http://h/api', '') AS empty,
       webhook_internal.hook_url('http://h/api/', '/x') AS slash,
       webhook_internal.hook_url('http://h/api', 'x') AS bare,
       webhook_internal.hook_url('http://h/api', '?a=1') AS query;

SELECT webhook.delete_transport(:t);
DELETE FROM webhook.event;
