-- The last test.  No message of the extension in this server's log showed a
-- secret: the tests' credentials are marked SECRET, generated secrets start
-- with whsec_.  PostgreSQL's own STATEMENT entries are not ours: a failed
-- statement is logged whole, arguments included (see the README's Security
-- section for keeping secrets out of them).  An entry is a line and the
-- lines after it that PostgreSQL indents with a tab, whatever
-- log_line_prefix is.  The log must be there to be read: a server with no log
-- file of its own (logging_collector off, or no stderr in log_destination), or
-- one this session cannot read, fails here, rather than pass a scan of nothing.

-- This file runs alone too (test/check REGRESS=cleanup).
\i sql/include/alone.sql

SELECT log IS NOT NULL AS log_file, pg_read_file(log, 0, 1, true) IS NOT NULL AS log_read
  FROM pg_current_logfile('stderr') AS log;
SELECT entry
  FROM pg_current_logfile('stderr') AS log, pg_stat_file(log, true) AS f,
       regexp_split_to_table(pg_read_file(log, 0, f.size, true), E'\n(?!\t)') AS entry
 WHERE entry !~ '^([^\n]* )?STATEMENT:  '
   AND entry ~ 'SECRET|whsec_[A-Za-z0-9+/=]{20,}';
-- The extension drops cleanly.
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
