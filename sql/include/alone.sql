-- The opening of every pg_regress file after setup (\i sql/include/alone.sql,
-- a path from the tree's top, where make installcheck runs), so that each
-- runs alone too (test/check REGRESS=<name>): the extension made if setup
-- did not, ids numbered from 1001 whatever ran before, and error lines
-- shown without the PL/pgSQL call stack, which moves with every edit.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS webhook;
RESET client_min_messages;
SELECT bool_and(setval(oid, 1000) = 1000) AS ids_from_1001
  FROM pg_class WHERE relkind = 'S' AND relnamespace = 'webhook'::regnamespace;
\set SHOW_CONTEXT never
