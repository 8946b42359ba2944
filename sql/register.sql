-- register(): the one-call path.  Only 127.0.0.1 is ever contacted: nothing
-- listens on port 9 (discard), so a reachability check there fails fast.

-- This file runs alone too (test/check REGRESS=register).
\i sql/include/alone.sql

CREATE TEMP VIEW registered AS
SELECT t.tenant, t.name, t.base_url, h.path, h.event_types, h.signature,
       h.payload_format, h.active
  FROM webhook.transport t JOIN webhook.hook h ON h.transport_id = t.id
 WHERE t.name LIKE 'http://127.0.0.1:%'
 ORDER BY h.id;

-- an unreachable receiver: the 404 answer, and nothing registered
SELECT webhook.register('http://127.0.0.1:9/x');
SELECT webhook.register('http://127.0.0.1:9/x', event_types => '{ORDER_*}', tenant => 'acme');
SELECT count(*) FROM webhook.transport WHERE name LIKE 'http://127.0.0.1:%';

-- without the check: a transport for the origin, a hook for the path
SELECT webhook.register('http://127.0.0.1:9/x', check_reachable => false) AS r \gset
SELECT :'r'::jsonb - 'hook_id' AS answer,
       (:'r'::jsonb->>'hook_id')::bigint = (SELECT max(id) FROM webhook.hook) AS hook_id_ok;
SELECT (:'r'::jsonb->>'hook_id')::bigint AS hook_x \gset
SELECT * FROM registered;
SELECT webhook_internal.secret_is_valid(webhook.hook_secret(:hook_x)) AS secret_generated;

-- registering again is harmless: same hook (scheme and host are case-blind)
SELECT (webhook.register('http://127.0.0.1:9/x', check_reachable => false)->>'hook_id')::bigint = :hook_x AS same_hook;
SELECT (webhook.register('HTTP://127.0.0.1:9/x', '{*,*}', check_reachable => false)->>'hook_id')::bigint = :hook_x AS same_hook;
SELECT count(*) FROM registered;

-- another path, or other event types: another hook on the same transport
SELECT webhook.register('http://127.0.0.1:9/y?source=pg', '{ORDER_*,PAYMENT_SETTLED}',
                        check_reachable => false) - 'hook_id' AS answer;
SELECT (webhook.register('http://127.0.0.1:9/y?source=pg', '{PAYMENT_SETTLED,ORDER_*}',
                         check_reachable => false)->>'hook_id')::bigint
       = (SELECT max(id) FROM webhook.hook) AS same_set_same_hook;
SELECT webhook.register('http://127.0.0.1:9/x', '{ORDER_CREATED}', check_reachable => false) - 'hook_id' AS answer;
-- the origin of another port, and another tenant, get transports of their own
SELECT webhook.register('http://127.0.0.1:7/x', check_reachable => false) - 'hook_id' AS answer;
SELECT webhook.register('http://127.0.0.1:9/x', tenant => 'acme', check_reachable => false) - 'hook_id' AS answer;
SELECT * FROM registered;

-- a given secret is used, and replaces the secret of a reused hook
SELECT webhook.register('http://127.0.0.1:9/z', secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                        check_reachable => false) AS r \gset
SELECT webhook.hook_secret((:'r'::jsonb->>'hook_id')::bigint);
SELECT webhook.register('http://127.0.0.1:9/z', secret => 'whsec_' || encode(decode(repeat('ab', 24), 'hex'), 'base64'),
                        check_reachable => false) = :'r'::jsonb AS same_answer;
SELECT webhook.hook_secret((:'r'::jsonb->>'hook_id')::bigint);
-- without a secret a reused hook keeps its own
SELECT webhook.register('http://127.0.0.1:9/z', check_reachable => false) = :'r'::jsonb AS same_answer;
SELECT webhook.hook_secret((:'r'::jsonb->>'hook_id')::bigint);

-- a hook disabled by the worker (410 Gone) comes back on registration
UPDATE webhook.hook SET active = false, disabled_reason = 'receiver answered 410 Gone'
 WHERE id = :hook_x;
SELECT (webhook.register('http://127.0.0.1:9/x', check_reachable => false)->>'hook_id')::bigint = :hook_x AS same_hook;
SELECT active, disabled_reason FROM webhook.hook WHERE id = :hook_x;

-- a transport the user made for the origin is reused, whatever its name
SELECT webhook.create_transport('mine', 'http://127.0.0.1:8', tenant => 'beta') AS mine \gset
SELECT webhook.register('http://127.0.0.1:8/in', tenant => 'beta',
                        check_reachable => false)->>'hook_id' AS hook_in \gset
SELECT transport_id = :mine AS reused FROM webhook.hook WHERE id = :hook_in;
SELECT count(*) FROM webhook.transport WHERE tenant = 'beta';

--
-- refused arguments: errors, before any request is made
--
CREATE TEMP TABLE counts_before AS
SELECT (SELECT count(*) FROM webhook.transport) AS transports,
       (SELECT count(*) FROM webhook.hook) AS hooks;
CREATE TEMP VIEW nothing_registered AS
SELECT (SELECT count(*) FROM webhook.transport) = transports
       AND (SELECT count(*) FROM webhook.hook) = hooks AS unchanged
  FROM counts_before;
SELECT webhook.register(NULL);
SELECT webhook.register('');
SELECT webhook.register('127.0.0.1:9/x');
SELECT webhook.register('ftp://127.0.0.1:9/x');
SELECT webhook.register('file:///etc/passwd');
SELECT webhook.register('http:///x');
SELECT webhook.register('http://user:pw-SECRET-1@127.0.0.1:9/x');
SELECT webhook.register('http://127.0.0.1:0/x');
SELECT webhook.register('http://127.0.0.1:9/x#top');
SELECT webhook.register('http://127.0.0.1:9/a b');
SELECT webhook.register('http://127.0.0.1:9/x', tenant => 'no tenant');
SELECT webhook.register('http://127.0.0.1:9/x', tenant => NULL);
SELECT webhook.register('http://127.0.0.1:9/x', event_types => '{}');
SELECT webhook.register('http://127.0.0.1:9/x', event_types => '{order_created}');
SELECT webhook.register('http://127.0.0.1:9/x', event_types => NULL);
SELECT webhook.register('http://127.0.0.1:9/x', secret => 'pw-SECRET-2');
SELECT webhook.register('http://127.0.0.1:9/x', secret => '');
SELECT webhook.register('http://127.0.0.1:9/x', check_reachable => NULL);
SELECT * FROM nothing_registered;

-- clean up
SELECT webhook.delete_transport(id) FROM webhook.transport
 WHERE base_url LIKE 'http://127.0.0.1:%' ORDER BY id;
SELECT count(*) FROM webhook.transport;
