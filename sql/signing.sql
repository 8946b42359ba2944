-- Signing: webhook.sign() against known vectors, and the secrets the
-- extension generates and accepts.

-- This file runs alone too (test/check REGRESS=signing).
\i sql/include/alone.sql

-- the Standard Webhooks specification's own vector
SELECT webhook.sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                    'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330,
                    '{"test": 2432232314}') AS standard;
-- hex HMAC-SHA256 of the body alone; as openssl computes it:
--   printf %s '{"type":"ORDER_SETTLED","id":42}' | openssl dgst -sha256 -hmac topsecret
SELECT webhook.sign('hmac-sha256', 'topsecret', 'msg_1', 1614265330,
                    '{"type":"ORDER_SETTLED","id":42}') AS hmac_sha256;
-- base64 HMAC-SHA1 of the body alone:
--   printf %s '{"type":"ORDER_SETTLED","id":42}' | openssl sha1 -hmac topsecret -binary | base64
SELECT webhook.sign('hmac-sha1', 'topsecret', 'msg_1', 1614265330,
                    '{"type":"ORDER_SETTLED","id":42}') AS hmac_sha1;
-- the plain HMAC schemes ignore id and timestamp; the standard one does not
SELECT webhook.sign('hmac-sha256', 'topsecret', 'msg_2', 1, '{"type":"ORDER_SETTLED","id":42}')
       = webhook.sign('hmac-sha256', 'topsecret', 'msg_1', 1614265330, '{"type":"ORDER_SETTLED","id":42}') AS same,
       webhook.sign('standard', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
                    1614265331, '{"test": 2432232314}')
       <> 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' AS timestamp_signed;
-- "none" signs nothing
SELECT webhook.sign('none', NULL, 'msg_1', 1614265330, '{}') IS NULL AS unsigned;

-- refused secrets and schemes; no error shows the secret
SELECT webhook.sign('standard', 'pw-SECRET-1', 'msg_1', 1, '{}');
SELECT webhook.sign('standard', 'whsec_', 'msg_1', 1, '{}');
SELECT webhook.sign('standard', 'whsec_!!SECRET-2!!', 'msg_1', 1, '{}');
SELECT webhook.sign('standard', NULL, 'msg_1', 1, '{}');
SELECT webhook.sign('hmac-sha256', '', 'msg_1', 1, '{}');
SELECT webhook.sign('hmac-sha1', NULL, 'msg_1', 1, '{}');
SELECT webhook.sign('hmac-md5', 'topsecret', 'msg_1', 1, '{}');

-- generated secrets: whsec_ and the base64 of 24 random bytes, each different
SELECT webhook_internal.generate_secret() ~ '^whsec_[A-Za-z0-9+/]{32}$' AS well_formed,
       webhook_internal.secret_is_valid(webhook_internal.generate_secret()) AS valid,
       webhook_internal.generate_secret() <> webhook_internal.generate_secret() AS random;
SELECT webhook.sign('standard', webhook_internal.generate_secret(), 'msg_1', 1, '{}')
       ~ '^v1,[A-Za-z0-9+/]{43}=$' AS signs;

-- which Standard Webhooks secrets are accepted: 24 to 64 bytes of base64
SELECT n AS bytes,
       webhook_internal.secret_is_valid('whsec_' || translate(encode(decode(repeat('ab', n), 'hex'), 'base64'), E'\n', '')) AS valid
  FROM unnest('{16,23,24,32,64,65}'::int[]) AS n;
SELECT s, webhook_internal.secret_is_valid(s) AS valid
  FROM unnest(ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                    'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                    'WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS',
                    'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa$w',
                    'whsec_']) AS s;
