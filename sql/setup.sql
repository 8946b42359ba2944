-- The first test: create the extension in the fresh regression database.
-- What the suite needs of its server is in test/regress.conf.  Roles an
-- interrupted run left behind (roles outlive the database) are dropped.
SET client_min_messages = warning;
DROP ROLE IF EXISTS webhook_test_admin, webhook_test_app, webhook_test_policy,
    webhook_test_owner, webhook_test_acme, webhook_test_globex, webhook_test_boss,
    webhook_test_nobody, webhook_test_team;
RESET client_min_messages;
CREATE EXTENSION webhook;
SELECT extname, extversion FROM pg_extension WHERE extname = 'webhook';
-- Nothing is sent while the suite runs: the tests fill the queue by hand and
-- expect it as they left it.  A server that sends fails here.
SHOW webhook.enabled;
-- The worker delivers in this database (test/regress.conf).
SELECT webhook.wait_until_running('30 s') AS worker_running;
