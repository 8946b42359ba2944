-- webhook upgrade script: 0.2 to 0.3.
--
-- Every change made to the catalog since 0.2 (src/sql/*.sql), for a
-- database that has 0.2: test/e2e/test_upgrade.py checks that 0.2 updated
-- with this script is the very catalog a fresh 0.3 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.3'" to load this file. \quit
