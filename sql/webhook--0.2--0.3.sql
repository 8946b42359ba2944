-- webhook upgrade script: 0.2 to 0.3.
--
-- Every change made to the catalog since 0.2 (src/sql/*.sql), for a
-- database that has 0.2: test/e2e/test_upgrade.py checks that 0.2 updated
-- with this script is the very catalog a fresh 0.3 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.3'" to load this file. \quit

-- The worker's fair share and poison events: an event's weight in the
-- claim, before its body is built (src/sql/50_queue.sql).
CREATE FUNCTION webhook._stored_bytes(value jsonb) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_stored_bytes';
COMMENT ON FUNCTION webhook._stored_bytes(jsonb) IS
    'the size of a value uncompressed, read from its header without reading it whole';
