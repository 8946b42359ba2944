-- Hooks: create (secrets generated or checked per signature scheme), list
-- with secrets masked, hook_secret, update, delete; and every refused
-- argument, each group followed by a check that the catalog did not change.
-- No error line may show a secret: the secrets below contain the word SECRET.

-- This file runs alone too (test/check REGRESS=hook).
\i sql/include/alone.sql

SELECT webhook.create_transport('shop', 'https://shop.test') AS shop \gset
SELECT webhook.create_transport('erp', 'https://erp.test/api', tenant => 'acme') AS erp \gset

--
-- create
--
-- all defaults: every event, Standard Webhooks with a generated secret
SELECT webhook.create_hook(:shop) AS h_default \gset
SELECT path, event_types, signature, signature_header, payload_format,
       retry_schedule, active, disabled_reason, uid ~ '^hk_[0-9a-f]{32}$' AS uid_ok,
       secret ~ '^whsec_[A-Za-z0-9+/]{32}$' AS secret_generated,
       webhook_internal.secret_is_valid(secret) AS secret_valid
  FROM webhook.hook WHERE id = :h_default;

-- a given Standard Webhooks secret is kept
SELECT webhook.create_hook(:shop, '{ORDER_*}', '/orders',
                           secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                           payload_format => 'thin') AS h_orders \gset
SELECT webhook.hook_secret(:h_orders);

-- plain HMAC schemes take any secret; the header defaults to X-Signature
SELECT webhook.create_hook(:shop, '{PAYMENT_SETTLED,ORDER_SETTLED,PAYMENT_SETTLED}', '/pay',
                           secret => 'topsecret', signature => 'hmac-sha256',
                           payload_format => 'envelope', retry_schedule => '{1 min,1 h}') AS h_pay \gset
SELECT webhook.create_hook(:erp, '{*}', '/poynt', secret => 'pw-SECRET-1',
                           signature => 'hmac-sha1',
                           signature_header => 'Poynt-Webhook-Signature',
                           payload_format => 'row') AS h_poynt \gset
-- a plain HMAC scheme without a secret gets a generated one too
SELECT webhook.create_hook(:erp, '{ORDER_CREATED}', '/gen', signature => 'hmac-sha256') AS h_gen \gset
-- "none" signs nothing and keeps no secret, even one given
SELECT webhook.create_hook(:erp, '{ORDER_CREATED}', '?source=pg', secret => 'ignored-SECRET-2',
                           signature => 'none', active => false) AS h_none \gset

SELECT path, event_types, signature, signature_header, payload_format, retry_schedule,
       active, secret IS NOT NULL AS has_secret
  FROM webhook.hook ORDER BY id;
SELECT webhook.hook_secret(:h_pay) AS pay, webhook.hook_secret(:h_poynt) AS poynt,
       webhook.hook_secret(:h_gen) ~ '^whsec_' AS gen_generated,
       webhook.hook_secret(:h_none) IS NULL AS none_has_no_secret;

--
-- listing: secrets masked, with tenant and full URL
--
SELECT tenant, url, path, event_types, secret, signature, signature_header,
       payload_format, active, uid IS NOT NULL AS has_uid,
       updated_at = created_at AS never_updated
  FROM webhook.hooks();
SELECT url FROM webhook.hooks(transport_id => :erp);
SELECT url FROM webhook.hooks(tenant => 'default');
SELECT url FROM webhook.hooks(tenant => 'acme', transport_id => :shop);
SELECT url FROM webhook.hooks(sort_by => 'url', sort_dir => 'DESC');
SELECT url FROM webhook.hooks(sort_by => 'path', page => 2, page_size => 4);
SELECT url, active FROM webhook.hooks(sort_by => 'active', page_size => 1);

--
-- refused arguments of create_hook
--
CREATE TEMP TABLE hook_before AS SELECT * FROM webhook.hook;
CREATE TEMP VIEW hook_unchanged AS
SELECT (SELECT count(*) FROM webhook.hook) = (SELECT count(*) FROM hook_before)
       AND NOT EXISTS (SELECT h::text FROM webhook.hook h
                       EXCEPT SELECT b::text FROM hook_before b)
       AS unchanged;

-- transport
SELECT webhook.create_hook(999999);
SELECT webhook.create_hook(NULL);
-- event types
SELECT webhook.create_hook(:shop, NULL);
SELECT webhook.create_hook(:shop, '{}');
SELECT webhook.create_hook(:shop, '{order_created}');
SELECT webhook.create_hook(:shop, '{ORDER-CREATED}');
SELECT webhook.create_hook(:shop, '{ORDER*}');
SELECT webhook.create_hook(:shop, '{*_CREATED}');
SELECT webhook.create_hook(:shop, '{_*}');
SELECT webhook.create_hook(:shop, '{""}');
SELECT webhook.create_hook(:shop, ARRAY['ORDER_CREATED', NULL]);
SELECT * FROM hook_unchanged;
-- path
SELECT webhook.create_hook(:shop, path => NULL);
SELECT webhook.create_hook(:shop, path => 'orders');
SELECT webhook.create_hook(:shop, path => '/a b');
SELECT webhook.create_hook(:shop, path => E'/a\r\nX-Injected: 1');
SELECT webhook.create_hook(:shop, path => '/a#b');
SELECT * FROM hook_unchanged;
-- signature schemes and secrets
SELECT webhook.create_hook(:shop, signature => 'rsa');
SELECT webhook.create_hook(:shop, signature => 'HMAC-SHA256');
SELECT webhook.create_hook(:shop, signature => NULL);
SELECT webhook.create_hook(:shop, secret => '');
SELECT webhook.create_hook(:shop, secret => '', signature => 'hmac-sha1');
SELECT webhook.create_hook(:shop, secret => 'pw-SECRET-3');
SELECT webhook.create_hook(:shop, secret => 'whsec_SECRET4');
-- 23 and 65 bytes: too short, too long
SELECT webhook.create_hook(:shop, secret => 'whsec_' || encode(decode(repeat('ab', 23), 'hex'), 'base64'));
SELECT webhook.create_hook(:shop, secret => 'whsec_' || translate(encode(decode(repeat('ab', 65), 'hex'), 'base64'), E'\n', ''));
SELECT webhook.create_hook(:shop, signature_header => 'X-Signature');
SELECT webhook.create_hook(:shop, signature => 'none', signature_header => 'X-Signature');
SELECT webhook.create_hook(:shop, signature => 'hmac-sha256', signature_header => 'Bad Header');
SELECT webhook.create_hook(:shop, signature => 'hmac-sha256', signature_header => E'X-Sig\r\nX-Injected');
SELECT webhook.create_hook(:shop, signature => 'hmac-sha256', signature_header => 'webhook-signature');
SELECT webhook.create_hook(:shop, signature => 'hmac-sha256', signature_header => 'Content-Length');
SELECT * FROM hook_unchanged;
-- payload formats, retry schedules, active
SELECT webhook.create_hook(:shop, payload_format => 'xml');
SELECT webhook.create_hook(:shop, payload_format => NULL);
SELECT webhook.create_hook(:shop, retry_schedule => NULL);
SELECT webhook.create_hook(:shop, retry_schedule => '{5s,0s}');
SELECT webhook.create_hook(:shop, retry_schedule => '{5s,-1 min}');
SELECT webhook.create_hook(:shop, retry_schedule => ARRAY['5 s'::interval, NULL]);
SELECT webhook.create_hook(:shop, active => NULL);
SELECT * FROM hook_unchanged;
-- listing arguments
SELECT * FROM webhook.hooks(page => 0);
SELECT * FROM webhook.hooks(page_size => 5000);
SELECT * FROM webhook.hooks(sort_by => 'secret');
SELECT * FROM webhook.hooks(sort_by => 'id DESC, (SELECT 1)');
SELECT * FROM webhook.hooks(sort_dir => 'up');
SELECT * FROM webhook.hooks(sort_dir => NULL);
SELECT * FROM webhook.hooks(tenant => 'x y');
-- the secret of an unknown hook
SELECT webhook.hook_secret(999999);
SELECT webhook.hook_secret(NULL);

--
-- update
--
UPDATE webhook.hook SET created_at = '2000-01-01', updated_at = '2000-01-01';
SELECT url, event_types, secret, payload_format, updated_at > created_at AS updated
  FROM webhook.update_hook(:h_default, event_types => '{ORDER_*,INVOICE_PAID}',
                           path => '/all', payload_format => 'envelope');
-- NULL keeps everything
SELECT url, event_types, signature, payload_format FROM webhook.update_hook(:h_default);
-- a new given secret, then secret => '' for a new generated one
SELECT secret FROM webhook.update_hook(:h_orders, secret => 'whsec_' || encode(decode(repeat('cd', 32), 'hex'), 'base64'));
SELECT webhook.hook_secret(:h_orders);
SELECT webhook.hook_secret(:h_orders) AS old_secret \gset
SELECT secret FROM webhook.update_hook(:h_orders, secret => '');
SELECT webhook.hook_secret(:h_orders) <> :'old_secret' AS rotated,
       webhook_internal.secret_is_valid(webhook.hook_secret(:h_orders)) AS valid;
-- standard -> hmac-sha256 keeps the secret and takes the default header
SELECT webhook.hook_secret(:h_orders) AS orders_secret \gset
SELECT signature, signature_header
  FROM webhook.update_hook(:h_orders, signature => 'hmac-sha256');
SELECT webhook.hook_secret(:h_orders) = :'orders_secret' AS kept;
-- and a header of one's choice
SELECT signature, signature_header
  FROM webhook.update_hook(:h_orders, signature => 'hmac-sha1', signature_header => 'X-Orders-Sig');
-- back to standard drops the header; the whsec_ secret still fits
SELECT signature, signature_header
  FROM webhook.update_hook(:h_orders, signature => 'standard');
SELECT webhook.hook_secret(:h_orders) = :'orders_secret' AS kept;
-- to none: no secret, no header; back to standard: a new generated secret
SELECT signature, signature_header, secret
  FROM webhook.update_hook(:h_pay, signature => 'none');
SELECT webhook.hook_secret(:h_pay) IS NULL AS no_secret;
SELECT signature, secret FROM webhook.update_hook(:h_pay, signature => 'standard');
SELECT webhook.hook_secret(:h_pay) ~ '^whsec_' AS generated;
-- move to another transport of its tenant; not to another tenant's: its
-- deliveries would go along
SELECT webhook.create_transport('shop2', 'https://shop2.test') AS shop2 \gset
SELECT tenant, url FROM webhook.update_hook(:h_pay, transport_id => :shop2);
SELECT webhook.update_hook(:h_pay, transport_id => :erp);
UPDATE webhook.hook SET transport_id = :erp WHERE id = :h_pay;
SELECT transport_id = :shop2 AS not_moved FROM webhook.hook WHERE id = :h_pay;
-- a hook disabled by the worker (410 Gone) is reactivated, which clears the reason
UPDATE webhook.hook SET active = false, disabled_reason = 'receiver answered 410 Gone'
 WHERE id = :h_poynt;
SELECT active, disabled_reason FROM webhook.update_hook(:h_poynt, active => true);
SELECT active, disabled_reason FROM webhook.update_hook(:h_poynt, active => false);

-- refused updates change nothing
DELETE FROM hook_before;
INSERT INTO hook_before SELECT * FROM webhook.hook;
SELECT webhook.update_hook(999999, active => true);
SELECT webhook.update_hook(NULL, active => true);
SELECT webhook.update_hook(:h_default, transport_id => 999999);
SELECT webhook.update_hook(:h_default, event_types => '{}');
SELECT webhook.update_hook(:h_default, event_types => '{Order_Created}');
SELECT webhook.update_hook(:h_default, path => 'relative');
SELECT webhook.update_hook(:h_default, signature => 'sha512');
SELECT webhook.update_hook(:h_default, payload_format => 'full');
SELECT webhook.update_hook(:h_poynt, active => true, resume => 'later');
SELECT webhook.update_hook(:h_default, retry_schedule => '{0 s}');
SELECT webhook.update_hook(:h_default, secret => 'not-a-whsec-SECRET-5');
SELECT webhook.update_hook(:h_default, signature_header => 'X-Signature');
SELECT webhook.update_hook(:h_poynt, signature_header => 'X Bad');
-- the hmac-sha1 secret of this hook is no Standard Webhooks secret
SELECT webhook.update_hook(:h_poynt, signature => 'standard');
SELECT * FROM hook_unchanged;
-- which a new generated secret fixes
SELECT signature, signature_header FROM webhook.update_hook(:h_poynt, signature => 'standard', secret => '');
SELECT webhook_internal.secret_is_valid(webhook.hook_secret(:h_poynt)) AS valid;

-- retry_schedule '{}' is one attempt and no retry
SELECT webhook.create_hook(:shop, retry_schedule => '{}') AS one_attempt \gset
SELECT retry_schedule FROM webhook.hooks() WHERE id = :one_attempt;
SELECT (webhook.update_hook(:one_attempt, retry_schedule => '{1 s}')).retry_schedule;
SELECT webhook.delete_hook(:one_attempt);

--
-- delete
--
SELECT webhook.delete_hook(:h_gen);
SELECT webhook.delete_hook(999999);
SELECT webhook.delete_hook(NULL);
SELECT count(*) FROM webhook.hook WHERE id = :h_gen;
-- deleting a transport deletes its hooks
SELECT count(*) FROM webhook.hook WHERE transport_id = :erp;
SELECT webhook.delete_transport(:erp);
SELECT count(*) FROM webhook.hook WHERE transport_id = :erp;
SELECT webhook.delete_transport(:shop);
SELECT webhook.delete_transport(:shop2);
SELECT count(*) AS hooks_left FROM webhook.hook;
