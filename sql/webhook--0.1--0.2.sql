-- webhook upgrade script: 0.1 to 0.2.
--
-- Every change made to the catalog since 0.1 (src/sql/*.sql), for a
-- database that has 0.1: test/e2e/test_upgrade.py checks that 0.1 updated
-- with this script is the very catalog a fresh 0.2 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.2'" to load this file. \quit

------------------------------------------------------------------------------
-- Operations: notifications() paged and sorted like hooks() and transports() (page,
-- page_size, sort_by, sort_dir); the default window is webhook.retention,
-- not 30 days.  A new signature: the old function goes.
DROP FUNCTION webhook.notifications(text, bigint, timestamptz);

-- One page of the deliveries made since a time (by default the last
-- webhook.retention), paged and sorted like hooks() and transports().
CREATE FUNCTION webhook.notifications(
        tenant text DEFAULT NULL,
        hook_id bigint DEFAULT NULL,
        since timestamptz DEFAULT now() - webhook._retention(),
        page integer DEFAULT 1,
        page_size integer DEFAULT 50,
        sort_by text DEFAULT 'created_at',
        sort_dir text DEFAULT 'ASC')
    RETURNS SETOF webhook.notification
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dir text;
BEGIN
    dir := webhook._check_paging(page, page_size, sort_by, sort_dir,
                                 '{delivery_id,event_type,tenant,hook_id,state,attempts,last_status,created_at,finished_at}');
    IF tenant IS NOT NULL THEN
        PERFORM webhook._check_tenant(tenant);
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT n.*
           FROM (SELECT d.id AS delivery_id, e.uid AS event_uid, e.event_type, e.tenant,
                        d.hook_id, d.state, d.attempts, d.last_status, d.created_at,
                        d.finished_at
                   FROM webhook.delivery d
                   JOIN webhook.event e ON e.id = d.event_id
                   JOIN webhook.hook h ON h.id = d.hook_id
                   JOIN webhook.transport t ON t.id = h.transport_id
                  WHERE ($1 IS NULL OR e.tenant = $1)
                    AND ($2 IS NULL OR d.hook_id = $2)
                    AND ($3 IS NULL OR d.created_at >= $3)
                    AND ($6::text[] IS NULL OR t.tenant = ANY ($6))) n
          ORDER BY n.%I %s, n.delivery_id %s
          LIMIT $4 OFFSET $5', sort_by, dir, dir)
        USING tenant, hook_id, since, page_size, (page - 1)::bigint * page_size,
              webhook._tenants_of(webhook._caller());
END
$$;
COMMENT ON FUNCTION webhook.notifications(text, bigint, timestamptz, integer, integer, text, text) IS
    'the deliveries made since the given time (by default the last webhook.retention; all with since => NULL), one page at a time, oldest first';
