-- The last test: the extension drops cleanly.
DROP EXTENSION webhook;
SELECT count(*) AS extensions_left FROM pg_extension WHERE extname = 'webhook';
-- nothing of it is left in its schema (PostgreSQL keeps the schema that
-- CREATE EXTENSION made for it, empty)
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'webhook')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'webhook')
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'webhook') AS objects_left;
DROP SCHEMA IF EXISTS webhook;
