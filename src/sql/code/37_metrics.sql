-- webhook install script, part 3.7: metrics for Prometheus.
--
-- webhook.metrics() renders the rows of webhook.metrics_rows() in
-- Prometheus' text exposition format (0.0.4); exporters that run queries
-- (contrib/sql_exporter/webhook.collector.yml) read metrics_rows() itself.
-- Both are cheap on a catalog of millions of rows: the counters are
-- webhook.hook_metrics, one row per hook, which the worker updates once
-- per recorded batch (src/queue.c); the queue's gauges read
-- delivery_due_idx, which holds the unfinished deliveries only; the
-- workers' gauges come from shared memory.  Nothing reads webhook.attempt
-- or the finished deliveries.  The conventions of 29_validators.sql hold: the
-- functions act for their caller (webhook_internal.caller()), who sees the series
-- of the tenants it manages; the workers' are everyone's.

-- The histogram's bounds, in seconds; the worker counts with the same ones
-- (DURATION_BOUNDS_MS in src/queue.c).
CREATE OR REPLACE FUNCTION webhook_internal.duration_bounds() RETURNS double precision[]
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10}'::double precision[]
$$;
COMMENT ON FUNCTION webhook_internal.duration_bounds() IS
    'upper bounds (seconds) of the attempt duration histogram''s buckets, +Inf left out';

CREATE OR REPLACE FUNCTION webhook_internal.workers()
    RETURNS TABLE (worker integer, up boolean, pid integer, in_flight integer, held integer,
                   config_generation bigint)
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_workers_sql';
COMMENT ON FUNCTION webhook_internal.workers() IS
    'the database''s webhook.workers delivery workers: whether each runs, its requests in flight, the deliveries it holds and the configuration reloads it has taken (shared memory)';
REVOKE EXECUTE ON FUNCTION webhook_internal.workers() FROM PUBLIC;

-- A label value in the text format: backslash, double quote and newline
-- escaped.
CREATE OR REPLACE FUNCTION webhook_internal.prometheus_label(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(replace(replace(value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
$$;
COMMENT ON FUNCTION webhook_internal.prometheus_label(text) IS
    'a label value escaped for Prometheus'' text format';

-- One row per sample.  Labels that a metric does not have are NULL.
--   webhook_attempts_total{tenant, hook_id, outcome}       counter
--   webhook_deliveries_dead_total{tenant, hook_id}         counter
--   webhook_attempt_duration_seconds_bucket{tenant, le}    histogram, with
--     _sum{tenant} and _count{tenant}
--   webhook_deliveries{tenant, hook_id, state}             gauge: pending, failed
--   webhook_oldest_due_seconds{tenant, hook_id}            gauge
--   webhook_worker_up / _in_flight / _held{worker}         gauges
CREATE OR REPLACE FUNCTION webhook.metrics_rows()
    RETURNS TABLE (metric text, tenant text, hook_id bigint, outcome text, state text,
                   le text, worker integer, value double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH caller AS MATERIALIZED (
        -- once, not per transport; pg_monitor reads every tenant's series,
        -- as an admin does
        SELECT CASE WHEN pg_has_role(webhook_internal.caller(), 'pg_monitor', 'USAGE') THEN NULL
                    ELSE webhook_internal.tenants_of(webhook_internal.caller()) END AS tenants
    ), hooks AS (
        SELECT h.id, t.tenant
          FROM webhook.hook h
          JOIN webhook.transport t ON t.id = h.transport_id
         CROSS JOIN caller c
         WHERE c.tenants IS NULL OR t.tenant = ANY (c.tenants)
    ), counters AS (
        SELECT k.id, k.tenant,
               coalesce(m.successes, 0) AS successes, coalesce(m.failures, 0) AS failures,
               coalesce(m.timeouts, 0) AS timeouts, coalesce(m.errors, 0) AS errors,
               coalesce(m.deaths, 0) AS deaths, coalesce(m.duration_sum, 0) AS duration_sum,
               coalesce(m.duration_buckets, '{0,0,0,0,0,0,0,0,0,0,0,0}') AS duration_buckets
          FROM hooks k
          LEFT JOIN webhook.hook_metrics m ON m.hook_id = k.id
    ), queue AS (
        -- the unfinished deliveries: delivery_due_idx, never the finished ones
        SELECT d.hook_id,
               count(*) FILTER (WHERE d.state = 'pending') AS pending,
               count(*) FILTER (WHERE d.state = 'failed') AS failed,
               min(d.next_attempt_at) FILTER (WHERE d.next_attempt_at <= now()) AS oldest_due
          FROM webhook.delivery d
         WHERE d.state IN ('pending', 'failed')
           AND d.hook_id IN (SELECT k.id FROM hooks k)
         GROUP BY d.hook_id
    ), histogram AS (
        SELECT c.tenant, b.i, sum(b.n) AS n
          FROM counters c
         CROSS JOIN LATERAL unnest(c.duration_buckets) WITH ORDINALITY AS b(n, i)
         GROUP BY c.tenant, b.i
    )
    SELECT 'webhook_attempts_total', c.tenant, c.id, o.outcome, NULL::text, NULL::text,
           NULL::integer, o.n::double precision
      FROM counters c
     CROSS JOIN LATERAL (VALUES ('success', c.successes), ('failure', c.failures),
                                ('timeout', c.timeouts), ('error', c.errors)) AS o(outcome, n)
    UNION ALL
    SELECT 'webhook_deliveries_dead_total', c.tenant, c.id, NULL, NULL, NULL, NULL, c.deaths
      FROM counters c
    UNION ALL
    SELECT 'webhook_attempt_duration_seconds_bucket', x.tenant, NULL, NULL, NULL,
           coalesce((webhook_internal.duration_bounds())[x.i]::text, '+Inf'), NULL, x.n
      FROM histogram x
    UNION ALL
    SELECT 'webhook_attempt_duration_seconds_sum', c.tenant, NULL, NULL, NULL, NULL, NULL,
           sum(c.duration_sum)
      FROM counters c GROUP BY c.tenant
    UNION ALL
    SELECT 'webhook_attempt_duration_seconds_count', x.tenant, NULL, NULL, NULL, NULL, NULL, x.n
      FROM histogram x WHERE x.i = cardinality(webhook_internal.duration_bounds()) + 1
    UNION ALL
    SELECT 'webhook_deliveries', k.tenant, k.id, NULL, s.state, NULL, NULL, s.n
      FROM hooks k
      LEFT JOIN queue q ON q.hook_id = k.id
     CROSS JOIN LATERAL (VALUES ('pending', coalesce(q.pending, 0)),
                                ('failed', coalesce(q.failed, 0))) AS s(state, n)
    UNION ALL
    SELECT 'webhook_oldest_due_seconds', k.tenant, k.id, NULL, NULL, NULL, NULL,
           coalesce(extract(epoch FROM now() - q.oldest_due), 0)
      FROM hooks k
      LEFT JOIN queue q ON q.hook_id = k.id
    UNION ALL
    SELECT g.metric, NULL, NULL, NULL, NULL, NULL, w.worker, g.n
      FROM webhook_internal.workers() w
     CROSS JOIN LATERAL (VALUES ('webhook_worker_up', CASE WHEN w.up THEN 1 ELSE 0 END),
                                ('webhook_worker_in_flight', w.in_flight),
                                ('webhook_worker_held', w.held)) AS g(metric, n)
$$;
COMMENT ON FUNCTION webhook.metrics_rows() IS
    'the samples of webhook.metrics(), one row each, labels in columns (NULL where a metric has none), for exporters that run queries';
REVOKE EXECUTE ON FUNCTION webhook.metrics_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.metrics_rows() TO webhook_admin, webhook_tenant, pg_monitor;

-- The text exposition format, 0.0.4: each family's HELP and TYPE lines,
-- then its samples, in a stable order (a histogram's buckets by le, then
-- its _sum and _count, per tenant).
CREATE OR REPLACE FUNCTION webhook.metrics() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH family (ord, name, type, help) AS (VALUES
        (1, 'webhook_attempts_total', 'counter',
         'HTTP attempts recorded, by tenant, hook and outcome (success: a 2xx answer; failure: another status; timeout: no answer in time; error: no answer, or not sent).'),
        (2, 'webhook_attempt_duration_seconds', 'histogram',
         'Duration of the recorded attempts, per tenant.'),
        (3, 'webhook_deliveries_dead_total', 'counter',
         'Deliveries that died (retry schedule exhausted, or 410 Gone), by tenant and hook.'),
        (4, 'webhook_deliveries', 'gauge',
         'Unfinished deliveries by tenant, hook and state (pending: due or not, including those the workers hold; failed: waiting for a retry).'),
        (5, 'webhook_oldest_due_seconds', 'gauge',
         'Age of the oldest due delivery not yet recorded (now - its next_attempt_at), by tenant and hook; 0 when none is due.'),
        (6, 'webhook_worker_up', 'gauge',
         '1 for each of the database''s webhook.workers delivery workers that runs, 0 for one that does not.'),
        (7, 'webhook_worker_in_flight', 'gauge',
         'HTTP requests a worker has on the wire.'),
        (8, 'webhook_worker_held', 'gauge',
         'Deliveries a worker holds: claimed and not yet recorded (in flight, or ready to start).')
    ), sample AS (
        SELECT f.ord, r.*,
               CASE r.metric WHEN f.name || '_sum' THEN 2
                             WHEN f.name || '_count' THEN 3 ELSE 1 END AS part,
               r.metric || coalesce('{' || nullif(concat_ws(',',
                   'tenant="' || webhook_internal.prometheus_label(r.tenant) || '"',
                   'hook="' || r.hook_id || '"',
                   'outcome="' || webhook_internal.prometheus_label(r.outcome) || '"',
                   'state="' || webhook_internal.prometheus_label(r.state) || '"',
                   'worker="' || r.worker || '"',
                   'le="' || webhook_internal.prometheus_label(r.le) || '"'), '') || '}', '')
               || ' ' ||
               CASE WHEN r.value = trunc(r.value) AND abs(r.value) < 1e15
                    THEN r.value::bigint::text ELSE r.value::text END AS line
          FROM webhook.metrics_rows() r
          JOIN family f ON r.metric IN (f.name, f.name || '_bucket', f.name || '_sum',
                                        f.name || '_count')
    )
    SELECT string_agg(b.block, '' ORDER BY b.ord)
      FROM (SELECT f.ord,
                   '# HELP ' || f.name || ' ' || f.help || E'\n' ||
                   '# TYPE ' || f.name || ' ' || f.type || E'\n' ||
                   coalesce(string_agg(s.line || E'\n', ''
                                       ORDER BY s.tenant, s.hook_id, s.part, s.outcome,
                                                s.state, s.worker,
                                                CASE WHEN s.le = '+Inf' THEN 'Infinity'
                                                     ELSE s.le END::double precision), '')
                   AS block
              FROM family f
              LEFT JOIN sample s ON s.ord = f.ord
             GROUP BY f.ord, f.name, f.type, f.help) b
$$;
COMMENT ON FUNCTION webhook.metrics() IS
    'the extension''s metrics in Prometheus'' text exposition format (0.0.4): attempts, deaths and durations per tenant and hook, the queue, the workers; a tenant role sees its tenants'' series';
REVOKE EXECUTE ON FUNCTION webhook.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.metrics() TO webhook_admin, webhook_tenant, pg_monitor;
-- pg_monitor may call them (and nothing else: it is granted no table; its
-- USAGE of the schemas is granted with the others', code/60_privileges.sql)
