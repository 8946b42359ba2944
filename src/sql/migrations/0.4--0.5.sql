-- webhook upgrade from 0.4 to 0.5: the migration of the state.  The code
-- (src/sql/code) follows it in the upgrade script and replaces every
-- function, view, trigger and policy; what the code no longer makes, or
-- makes with another signature, is dropped here first.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.5'" to load this file. \quit
