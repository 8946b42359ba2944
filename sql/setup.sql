-- The first test: create the extension in the fresh regression database.
CREATE EXTENSION webhook;
SELECT extname, extversion FROM pg_extension WHERE extname = 'webhook';
-- The worker delivers in this database (test/regress.conf).
SELECT webhook.wait_until_running('30 s') AS worker_running;
