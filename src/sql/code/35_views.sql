-- webhook install script, part 3.5: the views for psql.  security_invoker,
-- so that row-level security on the catalog applies to whoever reads them.

-- Every delivery, one row each: the rows of webhook.delivery, and those
-- read from the log and answered 2xx at their first attempt, which have no
-- row (src/queue.c): their attempt, which names their event and hook, is
-- all there is of them.  Like a row, one goes with its hook; it stays as
-- long as its attempt does (webhook.attempt's slots), its event pruned or
-- not: looking each event up here would cost a read of the log for every
-- delivery listed, where most readers join the events anyway.
CREATE OR REPLACE VIEW webhook.deliveries WITH (security_invoker = true) AS
SELECT d.id, d.event_id, d.hook_id, d.state, d.attempts, d.next_attempt_at,
       d.last_status, d.last_error, d.created_at, d.finished_at
  FROM webhook.delivery d
UNION ALL
SELECT a.delivery_id, a.event_id, a.hook_id, 'succeeded', 1, a.started_at,
       a.status_code, NULL, a.started_at,
       a.started_at + a.duration_ms * interval '1 millisecond'
  FROM webhook.attempt a
 WHERE a.attempt_no = 1 AND a.status_code BETWEEN 200 AND 299
   AND NOT EXISTS (SELECT FROM webhook.delivery d WHERE d.id = a.delivery_id)
   AND EXISTS (SELECT FROM webhook.hook h WHERE h.id = a.hook_id);
COMMENT ON VIEW webhook.deliveries IS
    'one row per delivery: those of webhook.delivery, and those that succeeded at their first attempt, which have no row there';

-- Each attempt with its delivery: the delivery's row, or, for one with no
-- row (a success at the first attempt, as webhook.deliveries shows it),
-- the attempt's own event and hook.  Not read through webhook.deliveries:
-- that would read the attempts twice.
CREATE OR REPLACE VIEW webhook.delivery_log WITH (security_invoker = true) AS
SELECT a.started_at AS attempted_at,
       e.tenant,
       coalesce(d.hook_id, a.hook_id) AS hook_id,
       a.delivery_id,
       e.event_type,
       e.resource_id,
       -- a transport's query_key must not show
       pg_catalog.regexp_replace(a.url, '([?&]key=)[^&#]*', '\1********') AS url,
       a.attempt_no,
       a.status_code,
       a.duration_ms,
       a.error,
       coalesce(d.state, 'succeeded') AS state
  FROM webhook.attempt a
  LEFT JOIN webhook.delivery d ON d.id = a.delivery_id
  JOIN webhook.event e ON e.id = coalesce(d.event_id, a.event_id)
 WHERE d.id IS NOT NULL
    OR (a.attempt_no = 1 AND a.status_code BETWEEN 200 AND 299
        AND EXISTS (SELECT FROM webhook.hook h WHERE h.id = a.hook_id));
COMMENT ON VIEW webhook.delivery_log IS
    'one row per HTTP attempt, with its event and the delivery''s current state';

CREATE OR REPLACE VIEW webhook.hook_stats WITH (security_invoker = true) AS
SELECT h.id AS hook_id,
       t.tenant,
       coalesce(c.pending, 0) AS pending,
       coalesce(c.succeeded, 0) AS succeeded,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.dead, 0) AS dead,
       pg_catalog.round(c.succeeded::numeric
                        / nullif(c.succeeded + c.failed + c.dead, 0), 4) AS success_rate,
       pg_catalog.round(p.p50::numeric, 1) AS p50_ms,
       pg_catalog.round(p.p95::numeric, 1) AS p95_ms
  FROM webhook.hook h
  JOIN webhook.transport t ON t.id = h.transport_id
  LEFT JOIN (SELECT d.hook_id,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'pending') AS pending,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'succeeded') AS succeeded,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'failed') AS failed,
                    pg_catalog.count(*) FILTER (WHERE d.state = 'dead') AS dead
               FROM webhook.deliveries d
              WHERE d.created_at >= pg_catalog.now() - webhook_internal.retention()
              GROUP BY d.hook_id) c ON c.hook_id = h.id
  LEFT JOIN (SELECT coalesce(d.hook_id, a.hook_id) AS hook_id,
                    pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50,
                    pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95
               FROM webhook.attempt a
               LEFT JOIN webhook.delivery d ON d.id = a.delivery_id
              WHERE a.started_at >= pg_catalog.now() - webhook_internal.retention()
                AND a.duration_ms IS NOT NULL
              GROUP BY 1) p ON p.hook_id = h.id;
COMMENT ON VIEW webhook.hook_stats IS
    'per hook, over the deliveries created within webhook.retention: counts by state, success_rate = succeeded / (succeeded + failed + dead); and the median and 95th percentile duration in ms of the attempts made within it';
