-- Transports: create, list with credentials masked, update, delete; and
-- every refused argument, each group followed by a check that the catalog
-- did not change.  Error messages must never show a credential: every secret
-- below contains the word SECRET, and no error line may.

-- This file runs alone too (test/check REGRESS=transport).
\i sql/include/alone.sql

--
-- create
--
SELECT webhook.create_transport('billing', 'https://billing.test/hooks') AS billing \gset
SELECT webhook.create_transport(
           name => 'erp', base_url => 'http://erp.test:8080', tenant => 'acme',
           headers => '{"X-Source": "pg", "X-Api-Key": "k-123"}',
           auth => '{"type": "basic", "username": "svc", "password": "pw-SECRET-1"}',
           query_key => 'qk-SECRET-2', connect_timeout => '5 s', timeout => '10 s',
           ca_file => '/etc/ssl/certs/erp-ca.pem', client_cert_file => '/etc/ssl/erp.crt',
           client_key_file => '/etc/ssl/erp.key', client_key_password => 'kp-SECRET-3',
           max_in_flight => 4) AS erp \gset
SELECT webhook.create_transport('crm', 'http://[::1]:9000/in', tenant => 'acme',
                                auth => '{"type": "bearer", "token": "tok-SECRET-4"}') AS crm \gset
-- {"type": "none"} is no auth; JSON null headers are no headers
SELECT webhook.create_transport('plain', 'HTTP://Plain.test', tenant => 'beta',
                                auth => '{"type": "none"}', headers => 'null') AS plain \gset
-- switching TLS verification off is allowed, with a warning
SELECT webhook.create_transport('legacy', 'https://legacy.test', tenant => 'beta',
                                tls_verify => false) IS NOT NULL AS ok;

-- the table holds the credentials, auth normalised
SELECT tenant, name, base_url, headers, auth, query_key, client_key_password
  FROM webhook.transport ORDER BY id;

-- the listing masks them
SELECT tenant, name, base_url, headers, auth, query_key, connect_timeout, timeout,
       tls_verify, ca_file, client_cert_file, client_key_file, client_key_password,
       max_in_flight, updated_at = created_at AS never_updated
  FROM webhook.transports();
SELECT id = :billing AS is_billing FROM webhook.transports() LIMIT 1;

-- filters, sorting and paging
SELECT name FROM webhook.transports(tenant => 'acme');
SELECT name FROM webhook.transports(sort_by => 'name');
SELECT name FROM webhook.transports(sort_by => 'name', sort_dir => 'desc');
SELECT name FROM webhook.transports(sort_by => 'name', page => 2, page_size => 2);
SELECT name FROM webhook.transports(sort_by => 'max_in_flight', sort_dir => 'DESC', page_size => 1);
SELECT count(*) FROM webhook.transports(page => 9);
SELECT count(*) FROM webhook.transports(tenant => 'nobody');

--
-- refused arguments of create_transport
--
CREATE TEMP TABLE transport_before AS SELECT * FROM webhook.transport;
CREATE TEMP VIEW transport_unchanged AS
SELECT (SELECT count(*) FROM webhook.transport) = (SELECT count(*) FROM transport_before)
       AND NOT EXISTS (SELECT * FROM webhook.transport EXCEPT SELECT * FROM transport_before)
       AS unchanged;

-- names and tenants
SELECT webhook.create_transport(NULL, 'https://x.test');
SELECT webhook.create_transport('', 'https://x.test');
SELECT webhook.create_transport('billing', 'https://other.test');
SELECT webhook.create_transport('x', 'https://x.test', tenant => 'acme corp');
SELECT webhook.create_transport('x', 'https://x.test', tenant => '');
SELECT webhook.create_transport('x', 'https://x.test', tenant => NULL);
SELECT * FROM transport_unchanged;

-- URLs
SELECT webhook.create_transport('x', NULL);
SELECT webhook.create_transport('x', 'ftp://x.test/');
SELECT webhook.create_transport('x', 'x.test/hooks');
SELECT webhook.create_transport('x', 'http://');
SELECT webhook.create_transport('x', 'http:///hooks');
SELECT webhook.create_transport('x', 'https://user:pw-SECRET-5@x.test/');
SELECT webhook.create_transport('x', 'https://token-SECRET-6@x.test/');
SELECT webhook.create_transport('x', 'http://x.test:99999/');
SELECT webhook.create_transport('x', 'http://x.test:http/');
SELECT webhook.create_transport('x', 'http://x.test:/');
SELECT webhook.create_transport('x', 'http://x test/');
SELECT webhook.create_transport('x', E'http://x.test/\r\nHost: y');
SELECT webhook.create_transport('x', 'http://x.test/in?key=SECRET-7');
SELECT webhook.create_transport('x', 'http://x.test/in#top');
SELECT * FROM transport_unchanged;

-- headers
SELECT webhook.create_transport('x', 'https://x.test', headers => '[]');
SELECT webhook.create_transport('x', 'https://x.test', headers => '"X-A: b"');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"X-A": 1}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"X-A": null}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"Bad Name": "v"}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"": "v"}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"X-A:": "v"}');
SELECT webhook.create_transport('x', 'https://x.test',
                                headers => jsonb_build_object(E'X-A\r\nInjected', 'v'));
SELECT webhook.create_transport('x', 'https://x.test',
                                headers => jsonb_build_object('X-A', E'v-SECRET-8\r\nInjected: 1'));
SELECT webhook.create_transport('x', 'https://x.test',
                                headers => jsonb_build_object('X-A', E'v-SECRET-9\nInjected: 1'));
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"Content-Type": "text/plain"}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"HOST": "evil.test"}');
SELECT webhook.create_transport('x', 'https://x.test', headers => '{"webhook-signature": "v1,x"}');
SELECT * FROM transport_unchanged;

-- auth
SELECT webhook.create_transport('x', 'https://x.test', auth => '"basic"');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"username": "u", "password": "pw-SECRET-10"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": 1}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "digest"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "username": "u"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "password": "pw-SECRET-11"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "username": "", "password": "pw-SECRET-12"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "username": "u", "password": 12345}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "username": "a:b", "password": "pw-SECRET-13"}');
SELECT webhook.create_transport('x', 'https://x.test',
                                auth => jsonb_build_object('type', 'basic', 'username', 'u', 'password', E'pw-SECRET-14\r\n'));
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "basic", "username": "u", "password": "pw-SECRET-15", "realm": "r"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "bearer"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "bearer", "token": ""}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "bearer", "token": "tok SECRET-16"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "bearer", "token": "tok-SECRET-17", "username": "u"}');
SELECT webhook.create_transport('x', 'https://x.test', auth => '{"type": "none", "token": "tok-SECRET-18"}');
SELECT * FROM transport_unchanged;

-- timeouts, TLS files, key, limits
SELECT webhook.create_transport('x', 'https://x.test', connect_timeout => '0');
SELECT webhook.create_transport('x', 'https://x.test', connect_timeout => NULL);
SELECT webhook.create_transport('x', 'https://x.test', timeout => '-1 s');
SELECT webhook.create_transport('x', 'https://x.test', timeout => NULL);
SELECT webhook.create_transport('x', 'https://x.test', tls_verify => NULL);
SELECT webhook.create_transport('x', 'https://x.test', ca_file => 'certs/ca.pem');
SELECT webhook.create_transport('x', 'https://x.test', client_key_file => '/etc/ssl/x.key');
SELECT webhook.create_transport('x', 'https://x.test', client_key_password => 'kp-SECRET-19');
SELECT webhook.create_transport('x', 'https://x.test', query_key => E'qk-SECRET-20\n');
SELECT webhook.create_transport('x', 'https://x.test', max_in_flight => 0);
SELECT webhook.create_transport('x', 'https://x.test', max_in_flight => 2000000000);
SELECT webhook.create_transport('x', 'https://x.test', max_in_flight => NULL);
SELECT * FROM transport_unchanged;

-- listing arguments
SELECT * FROM webhook.transports(page => 0);
SELECT * FROM webhook.transports(page => NULL);
SELECT * FROM webhook.transports(page_size => 0);
SELECT * FROM webhook.transports(page_size => 1001);
SELECT * FROM webhook.transports(sort_by => 'query_key');
SELECT * FROM webhook.transports(sort_by => 'name; DROP TABLE webhook.hook');
SELECT * FROM webhook.transports(sort_by => 'NAME');
SELECT * FROM webhook.transports(sort_dir => 'sideways');
SELECT * FROM webhook.transports(tenant => 'no such tenant');

--
-- update
--
-- make timestamps known, to see updated_at move
UPDATE webhook.transport SET created_at = '2000-01-01', updated_at = '2000-01-01';
SELECT name, base_url, timeout, auth, updated_at > created_at AS updated
  FROM webhook.update_transport(:billing, timeout => '5 s', base_url => 'https://billing.test/v2',
                                auth => '{"type": "bearer", "token": "tok-SECRET-21"}');
SELECT timeout, auth, updated_at > '2000-01-01' AS updated
  FROM webhook.transport WHERE id = :billing;
-- NULL keeps everything (and still counts as an update)
SELECT name, base_url, timeout, auth
  FROM webhook.update_transport(:billing);
-- '' unsets optional texts, {"type": "none"} the credentials
SELECT auth, query_key, ca_file, client_cert_file, client_key_file, client_key_password
  FROM webhook.update_transport(:erp, auth => '{"type": "none"}', query_key => '',
                                ca_file => '', client_key_password => '',
                                client_key_file => '', client_cert_file => '');
SELECT auth, query_key, ca_file, client_key_password FROM webhook.transport WHERE id = :erp;
-- rename; a move to another tenant is refused, by the API or directly:
-- the transport's deliveries would go along
SELECT tenant, name FROM webhook.update_transport(:plain, name => 'simple');
SELECT webhook.update_transport(:plain, tenant => 'acme');
UPDATE webhook.transport SET tenant = 'acme' WHERE id = :plain;
SELECT tenant FROM webhook.transport WHERE id = :plain;
-- headers are replaced as a whole
SELECT headers FROM webhook.update_transport(:crm, headers => '{"X-Trace": "on"}');
-- switching TLS verification off warns; leaving it off does not warn again
SELECT tls_verify FROM webhook.update_transport(:crm, tls_verify => false);
SELECT tls_verify FROM webhook.update_transport(:crm, max_in_flight => 2);
SELECT tls_verify FROM webhook.update_transport(:crm, tls_verify => true);

-- refused updates change nothing
DELETE FROM transport_before;
INSERT INTO transport_before SELECT * FROM webhook.transport;
SELECT webhook.update_transport(999999, name => 'x');
SELECT webhook.update_transport(NULL, name => 'x');
SELECT webhook.update_transport(:crm, name => 'erp');
SELECT webhook.update_transport(:crm, name => '');
SELECT webhook.update_transport(:crm, tenant => 'bad/tenant');
SELECT webhook.update_transport(:crm, base_url => 'https://u:pw-SECRET-22@x.test');
SELECT webhook.update_transport(:crm, base_url => 'mailto:x@x.test');
SELECT webhook.update_transport(:crm, headers => '{"X-A": ["v"]}');
SELECT webhook.update_transport(:crm, headers => jsonb_build_object('X-A', E'a\rb'));
SELECT webhook.update_transport(:crm, auth => '{"type": "basic", "username": "u"}');
SELECT webhook.update_transport(:crm, auth => '{"type": "oauth2", "token": "tok-SECRET-23"}');
SELECT webhook.update_transport(:crm, connect_timeout => '-5 s');
SELECT webhook.update_transport(:crm, timeout => '0 s');
SELECT webhook.update_transport(:crm, max_in_flight => -1);
SELECT webhook.update_transport(:crm, client_key_password => 'kp-SECRET-24');
SELECT webhook.update_transport(:crm, ca_file => E'/etc/ca\n.pem');
SELECT * FROM transport_unchanged;

--
-- delete
--
SELECT webhook.delete_transport(:billing);
SELECT webhook.delete_transport(:billing);
SELECT webhook.delete_transport(NULL);
SELECT count(*) FROM webhook.transport WHERE id = :billing;
SELECT webhook.delete_transport(id) FROM webhook.transport ORDER BY id;
SELECT count(*) FROM webhook.transport;
