-- webhook upgrade script: 0.1 to 0.2.
--
-- Every change made to the catalog since 0.1 (src/sql/*.sql), for a
-- database that has 0.1: test/e2e/test_upgrade.py checks that 0.1 updated
-- with this script is the very catalog a fresh 0.2 installs
-- (test/catalog.sql describes it).  New columns go at the end of their
-- tables, in src/sql as here, so that both have them in the same place.

\echo Use "ALTER EXTENSION webhook UPDATE TO '0.2'" to load this file. \quit

-- Defaults defined once: the retry schedule (webhook._default_retry_schedule).
CREATE FUNCTION webhook._default_retry_schedule() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT '{5s,5min,30min,2h,5h,10h,10h}' $$;
COMMENT ON FUNCTION webhook._default_retry_schedule() IS
    'the retry schedule of a hook unless told otherwise, as text';

ALTER TABLE webhook.hook
    ALTER COLUMN retry_schedule SET DEFAULT webhook._default_retry_schedule()::interval[];

CREATE OR REPLACE FUNCTION webhook._check_retry_schedule(retry_schedule interval[]) RETURNS interval[]
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    step interval;
BEGIN
    PERFORM webhook._not_null(retry_schedule, 'retry_schedule');
    -- '{}': one attempt, no retry (for receivers that poll for what they missed)
    IF cardinality(retry_schedule) = 0 THEN
        RETURN '{}';
    END IF;
    -- the worker reads step n as retry_schedule[n]
    IF array_ndims(retry_schedule) <> 1 OR array_lower(retry_schedule, 1) <> 1 THEN
        RAISE EXCEPTION 'retry_schedule must be a one-dimensional array starting at 1'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Give the wait before each retry, such as ''%s''.',
                                webhook._default_retry_schedule());
    END IF;
    FOREACH step IN ARRAY retry_schedule LOOP
        IF step IS NULL OR step <= interval '0' OR step > interval '30 days' THEN
            RAISE EXCEPTION 'every step of retry_schedule must be positive and at most 30 days'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Give the wait before each retry, such as ''%s''.',
                                    webhook._default_retry_schedule());
        END IF;
    END LOOP;
    RETURN retry_schedule;
END
$$;

CREATE OR REPLACE FUNCTION webhook.create_hook(
        transport_id bigint,
        event_types text[] DEFAULT '{*}',
        path text DEFAULT '',
        secret text DEFAULT NULL,
        signature text DEFAULT 'standard',
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT 'standard',
        retry_schedule interval[] DEFAULT webhook._default_retry_schedule()::interval[],
        active boolean DEFAULT true,
        ordered text DEFAULT 'none',
        on_dead text DEFAULT 'continue',
        filter jsonpath DEFAULT NULL,
        transform regprocedure DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
    new_id bigint;
BEGIN
    h.transport_id := transport_id;
    h.event_types := event_types;
    h.path := path;
    h.secret := secret;
    h.signature := signature;
    h.signature_header := signature_header;
    h.payload_format := payload_format;
    h.retry_schedule := retry_schedule;
    h.active := active;
    h.ordered := ordered;
    h.on_dead := on_dead;
    h.filter := filter;
    h.transform := transform;
    h := webhook._check_hook(h, false);

    BEGIN
        INSERT INTO webhook.hook AS x
               (transport_id, path, event_types, secret, signature,
                signature_header, payload_format, retry_schedule, active,
                ordered, on_dead, filter, transform, transform_role)
        VALUES (h.transport_id, h.path, h.event_types, h.secret, h.signature,
                h.signature_header, h.payload_format, h.retry_schedule, h.active,
                h.ordered, h.on_dead, h.filter, h.transform, h.transform_role)
        RETURNING x.id INTO new_id;
    EXCEPTION
        WHEN foreign_key_violation THEN
            -- the transport was deleted meanwhile
            RAISE EXCEPTION 'transport % does not exist', h.transport_id
                USING ERRCODE = 'no_data_found';
        WHEN integrity_constraint_violation THEN
            -- never let the failing row (and its secret) into a message
            RAISE EXCEPTION 'invalid hook'
                USING ERRCODE = 'invalid_parameter_value';
    END;
    RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION webhook.register(
        url text,
        event_types text[] DEFAULT '{*}',
        secret text DEFAULT NULL,
        tenant text DEFAULT 'default',
        check_reachable boolean DEFAULT true)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
    origin text;
    status integer;
    tid bigint;
    t webhook.transport;
    h webhook.hook;
    hid bigint;
BEGIN
    -- check everything before the network is touched
    u := webhook._parse_url(url, 'url');
    origin := u.scheme || '://' || lower(u.authority);
    PERFORM webhook._check_tenant(tenant);
    PERFORM webhook._check_manages(tenant);
    PERFORM webhook._not_null(check_reachable, 'check_reachable');
    h.path := u.rest;
    h.event_types := webhook._check_event_types(event_types);
    h.secret := secret;
    h.signature := 'standard';
    h.payload_format := 'standard';
    h.retry_schedule := webhook._default_retry_schedule()::interval[];
    h.active := true;
    IF secret IS NOT NULL THEN
        IF secret = '' OR NOT webhook._secret_is_valid(secret) THEN
            RAISE EXCEPTION 'invalid secret for signature scheme "standard"'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Standard Webhooks secrets are "whsec_" followed by the base64 of 24 to 64 bytes; pass no secret to have one generated.';
        END IF;
    END IF;

    IF check_reachable THEN
        -- with the TLS settings (CA, client certificate) of the transport
        -- that would be reused, if there is one
        SELECT x.* INTO t FROM webhook.transport x
         WHERE x.tenant = register.tenant AND x.base_url = origin
         ORDER BY x.name = origin DESC, x.id
         LIMIT 1;
        status := webhook._http_head(url, 5000, coalesce(t.tls_verify, true), t.ca_file,
                                     t.client_cert_file, t.client_key_file,
                                     t.client_key_password);
        -- any answer but an error counts; 405 is a receiver that only takes POST
        IF status IS NULL OR (status >= 400 AND status <> 405) THEN
            RETURN jsonb_build_object('status', 404,
                                      'message', 'Client not responding at ' || url);
        END IF;
    END IF;

    -- one registration of an origin at a time
    PERFORM pg_advisory_xact_lock(hashtextextended('webhook.register ' || tenant || ' ' || origin, 0));

    SELECT x.id INTO tid FROM webhook.transport x
     WHERE x.tenant = register.tenant AND x.base_url = origin
     ORDER BY x.name = origin DESC, x.id
     LIMIT 1;
    IF tid IS NULL THEN
        tid := webhook.create_transport(name => origin, base_url => origin, tenant => tenant);
    END IF;

    SELECT x.id INTO hid FROM webhook.hook x
     WHERE x.transport_id = tid AND x.path = h.path
       AND x.event_types @> h.event_types AND x.event_types <@ h.event_types
     ORDER BY x.id
     LIMIT 1;
    IF hid IS NULL THEN
        hid := webhook.create_hook(transport_id => tid, event_types => h.event_types,
                                   path => h.path, secret => secret);
    ELSE
        PERFORM webhook.update_hook(hid, active => true, secret => secret);
    END IF;

    RETURN jsonb_build_object('status', 200,
                              'message', 'Registered client at: ' || url,
                              'hook_id', hid);
END
$$;

-- metrics()
--
-- webhook.metrics() and metrics_rows(), the counters the worker keeps per
-- hook (webhook.hook_metrics), and the workers' gauges (_workers()): as in
-- src/sql/37_metrics.sql.  The counters start from zero at the update.

CREATE TABLE webhook.hook_metrics (
    hook_id           bigint PRIMARY KEY,
    successes         bigint NOT NULL DEFAULT 0,   -- attempts answered 2xx
    failures          bigint NOT NULL DEFAULT 0,   -- answered with another status
    timeouts          bigint NOT NULL DEFAULT 0,   -- not answered in time
    errors            bigint NOT NULL DEFAULT 0,   -- not answered, or not sent
    deaths            bigint NOT NULL DEFAULT 0,   -- deliveries that died
    duration_sum      double precision NOT NULL DEFAULT 0,   -- seconds
    -- attempts that took at most each of webhook._duration_bounds(), then all
    duration_buckets  bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0,0,0,0,0,0,0}'
                      CHECK (cardinality(duration_buckets) = 12)
);
COMMENT ON TABLE webhook.hook_metrics IS
    'per hook: attempts by outcome, deaths and the attempt duration histogram, counted by the worker (webhook.metrics())';
ALTER TABLE webhook.hook_metrics ENABLE ROW LEVEL SECURITY;

-- The histogram's bounds, in seconds; the worker counts with the same ones
-- (DURATION_BOUNDS_MS in src/queue.c).
CREATE FUNCTION webhook._duration_bounds() RETURNS double precision[]
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10}'::double precision[]
$$;
COMMENT ON FUNCTION webhook._duration_bounds() IS
    'upper bounds (seconds) of the attempt duration histogram''s buckets, +Inf left out';

CREATE FUNCTION webhook._workers()
    RETURNS TABLE (worker integer, up boolean, pid integer, in_flight integer, held integer)
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_workers_sql';
COMMENT ON FUNCTION webhook._workers() IS
    'the database''s webhook.workers delivery workers: whether each runs, its requests in flight and the deliveries it holds (shared memory)';
REVOKE EXECUTE ON FUNCTION webhook._workers() FROM PUBLIC;

-- A label value in the text format: backslash, double quote and newline
-- escaped.
CREATE FUNCTION webhook._prometheus_label(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(replace(replace(value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
$$;
COMMENT ON FUNCTION webhook._prometheus_label(text) IS
    'a label value escaped for Prometheus'' text format';

-- One row per sample.  Labels that a metric does not have are NULL.
--   webhook_attempts_total{tenant, hook_id, outcome}       counter
--   webhook_deliveries_dead_total{tenant, hook_id}         counter
--   webhook_attempt_duration_seconds_bucket{tenant, le}    histogram, with
--     _sum{tenant} and _count{tenant}
--   webhook_deliveries{tenant, hook_id, state}             gauge: pending, failed
--   webhook_oldest_due_seconds{tenant, hook_id}            gauge
--   webhook_worker_up / _in_flight / _held{worker}         gauges
CREATE FUNCTION webhook.metrics_rows()
    RETURNS TABLE (metric text, tenant text, hook_id bigint, outcome text, state text,
                   le text, worker integer, value double precision)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH caller AS MATERIALIZED (
        -- once, not per transport; pg_monitor reads every tenant's series,
        -- as an admin does
        SELECT CASE WHEN pg_has_role(webhook._caller(), 'pg_monitor', 'USAGE') THEN NULL
                    ELSE webhook._tenants_of(webhook._caller()) END AS tenants
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
           coalesce((webhook._duration_bounds())[x.i]::text, '+Inf'), NULL, x.n
      FROM histogram x
    UNION ALL
    SELECT 'webhook_attempt_duration_seconds_sum', c.tenant, NULL, NULL, NULL, NULL, NULL,
           sum(c.duration_sum)
      FROM counters c GROUP BY c.tenant
    UNION ALL
    SELECT 'webhook_attempt_duration_seconds_count', x.tenant, NULL, NULL, NULL, NULL, NULL, x.n
      FROM histogram x WHERE x.i = cardinality(webhook._duration_bounds()) + 1
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
      FROM webhook._workers() w
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
CREATE FUNCTION webhook.metrics() RETURNS text
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
                   'tenant="' || webhook._prometheus_label(r.tenant) || '"',
                   'hook="' || r.hook_id || '"',
                   'outcome="' || webhook._prometheus_label(r.outcome) || '"',
                   'state="' || webhook._prometheus_label(r.state) || '"',
                   'worker="' || r.worker || '"',
                   'le="' || webhook._prometheus_label(r.le) || '"'), '') || '}', '')
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
-- pg_monitor may call them (and nothing else: it is granted no table)
GRANT USAGE ON SCHEMA webhook TO pg_monitor;

-- Review fixes: TLS files are set by admins only (and transforms, in
-- _hook_written below); update_transport locks only rows of the caller's
-- tenants; preview() takes events of the hook's tenant.
CREATE OR REPLACE FUNCTION webhook._transport_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW := webhook._check_transport(NEW);
    -- files on the database server: only for those who manage every tenant
    -- (a tenant could otherwise read, or present, another one's key)
    IF (NEW.ca_file, NEW.client_cert_file, NEW.client_key_file) IS DISTINCT FROM
       (CASE WHEN TG_OP = 'UPDATE' THEN (OLD.ca_file, OLD.client_cert_file, OLD.client_key_file)
             ELSE (NULL::text, NULL::text, NULL::text) END)
       AND webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
        RAISE EXCEPTION 'only members of webhook_admin set ca_file, client_cert_file and client_key_file'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'They name files on the database server: ask an administrator to set them.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION webhook.update_transport(
        id bigint,
        name text DEFAULT NULL,
        base_url text DEFAULT NULL,
        tenant text DEFAULT NULL,
        headers jsonb DEFAULT NULL,
        auth jsonb DEFAULT NULL,
        query_key text DEFAULT NULL,
        connect_timeout interval DEFAULT NULL,
        timeout interval DEFAULT NULL,
        tls_verify boolean DEFAULT NULL,
        ca_file text DEFAULT NULL,
        client_cert_file text DEFAULT NULL,
        client_key_file text DEFAULT NULL,
        client_key_password text DEFAULT NULL,
        max_in_flight integer DEFAULT NULL,
        max_per_second double precision DEFAULT NULL)
    RETURNS webhook.transport_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.transport;
    t webhook.transport;
BEGIN
    PERFORM webhook._not_null(id, 'id');
    -- another tenant's row is neither locked nor waited for
    SELECT * INTO old FROM webhook.transport x
     WHERE x.id = update_transport.id AND webhook._manages(x.tenant)
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transport % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;

    -- NULL keeps a value; '' unsets an optional text, {"type":"none"} the auth
    t := old;
    t.name := coalesce(name, old.name);
    t.base_url := coalesce(base_url, old.base_url);
    t.tenant := coalesce(tenant, old.tenant);
    t.headers := coalesce(headers, old.headers);
    t.auth := CASE WHEN auth IS NULL THEN old.auth ELSE auth END;
    t.query_key := coalesce(query_key, old.query_key);
    t.connect_timeout := coalesce(connect_timeout, old.connect_timeout);
    t.timeout := coalesce(timeout, old.timeout);
    t.tls_verify := coalesce(tls_verify, old.tls_verify);
    t.ca_file := coalesce(ca_file, old.ca_file);
    t.client_cert_file := coalesce(client_cert_file, old.client_cert_file);
    t.client_key_file := coalesce(client_key_file, old.client_key_file);
    t.client_key_password := coalesce(client_key_password, old.client_key_password);
    t.max_in_flight := coalesce(max_in_flight, old.max_in_flight);
    t.max_per_second := CASE WHEN max_per_second = 0 THEN NULL
                             ELSE coalesce(max_per_second, old.max_per_second) END;
    t := webhook._check_transport(t);
    PERFORM webhook._check_manages(t.tenant);

    IF (t.tenant, t.name) IS DISTINCT FROM (old.tenant, old.name)
       AND EXISTS (SELECT 1 FROM webhook.transport x
                    WHERE x.tenant = t.tenant AND x.name = t.name) THEN
        RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name.';
    END IF;

    BEGIN
        UPDATE webhook.transport x
           SET tenant = t.tenant, name = t.name, base_url = t.base_url,
               headers = t.headers, auth = t.auth, query_key = t.query_key,
               connect_timeout = t.connect_timeout, timeout = t.timeout,
               tls_verify = t.tls_verify, ca_file = t.ca_file,
               client_cert_file = t.client_cert_file,
               client_key_file = t.client_key_file,
               client_key_password = t.client_key_password,
               max_in_flight = t.max_in_flight, max_per_second = t.max_per_second,
               updated_at = now()
         WHERE x.id = update_transport.id
        RETURNING x.* INTO t;
    EXCEPTION
        WHEN unique_violation THEN
            RAISE EXCEPTION 'transport "%" already exists in tenant "%"', t.name, t.tenant
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Choose another name.';
        WHEN integrity_constraint_violation THEN
            RAISE EXCEPTION 'invalid transport'
                USING ERRCODE = 'invalid_parameter_value';
    END;

    IF NOT t.tls_verify AND old.tls_verify THEN
        RAISE WARNING 'TLS verification is disabled for transport "%"', t.name
            USING HINT = 'Any server can impersonate the receiver; give the receiver''s CA with ca_file instead.';
    END IF;

    RETURN webhook._transport_info(t);
END
$$;

CREATE OR REPLACE FUNCTION webhook.preview(hook_id bigint, event_id bigint,
                                OUT url text, OUT headers text[], OUT body text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook._managed_hook(hook_id);
    PERFORM webhook._not_null(event_id, 'event_id');
    -- an event of the hook's own tenant only: its transform sees no other
    IF NOT EXISTS (SELECT 1 FROM webhook.event e
                     JOIN webhook.hook h ON h.id = preview.hook_id
                     JOIN webhook.transport t ON t.id = h.transport_id
                    WHERE e.id = preview.event_id AND e.tenant = t.tenant) THEN
        RAISE EXCEPTION 'event % does not exist', event_id
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT p.url, p.headers, p.body INTO url, headers, body
      FROM webhook._preview(hook_id, event_id) p;
END
$$;

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

-- The write trigger of hooks: only admins set transforms, a restore keeps
-- transform_role, the function's owner must have that role's rights; a
-- hook re-enabled by a direct UPDATE forgets why it was disabled too.
CREATE OR REPLACE FUNCTION webhook._hook_written() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW := webhook._check_hook(NEW, TG_OP = 'UPDATE');
    -- re-enabled, however: why it was disabled (or paused) no longer holds,
    -- nor does its run of failures (webhook.disable_after)
    IF TG_OP = 'UPDATE' AND NEW.active AND NOT OLD.active THEN
        NEW.disabled_reason := NULL;
        NEW.failing_since := NULL;
        NEW.failing_deaths := 0;
        NEW.last_death_at := NULL;
    END IF;
    -- the worker runs the transform as the role that set it, never another:
    -- the writer, unless it copies a row (a restore) of a role it belongs to
    IF NEW.transform IS NULL THEN
        NEW.transform_role := NULL;
    ELSIF TG_OP = 'UPDATE' AND NEW.transform IS NOT DISTINCT FROM OLD.transform THEN
        NEW.transform_role := OLD.transform_role;
    ELSE
        -- code run inside the delivery worker: for those who manage every tenant
        IF webhook._tenants_of(webhook._caller()) IS NOT NULL THEN
            RAISE EXCEPTION 'only members of webhook_admin set transforms'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A transform runs inside the delivery worker: ask an administrator to set it.';
        END IF;
        IF TG_OP = 'UPDATE' OR NEW.transform_role IS NULL
           OR NOT pg_has_role(webhook._caller(), NEW.transform_role, 'MEMBER') THEN
            NEW.transform_role := webhook._caller();
        END IF;
        -- its owner could otherwise change what runs with these rights
        IF NOT EXISTS (SELECT 1 FROM pg_proc p
                        WHERE p.oid = NEW.transform
                          AND pg_has_role(p.proowner, NEW.transform_role, 'USAGE')) THEN
            RAISE EXCEPTION 'transform % is owned by a role without the rights of %',
                            NEW.transform, NEW.transform_role
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'The worker runs a transform as the role that sets it: use a function owned by that role, or by one with its rights.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER hook_checked ON webhook.hook;
CREATE TRIGGER hook_checked
    BEFORE INSERT OR UPDATE OF transport_id, path, event_types, secret, signature,
                               signature_header, payload_format, retry_schedule,
                               ordered, on_dead, filter, transform, transform_role,
                               active
    ON webhook.hook FOR EACH ROW EXECUTE FUNCTION webhook._hook_written();

-- ---------------------------------------------------------------------------
-- Endpoint health (webhook.disable_after): each hook's run of failures,
-- written by the worker; update_hook(active => true) clears it.
-- ---------------------------------------------------------------------------
ALTER TABLE webhook.hook ADD COLUMN failing_since timestamptz;
ALTER TABLE webhook.hook ADD COLUMN failing_deaths integer NOT NULL DEFAULT 0;
ALTER TABLE webhook.hook ADD COLUMN last_death_at timestamptz;
GRANT SELECT (failing_since, failing_deaths, last_death_at)
   ON webhook.hook TO webhook_admin, webhook_tenant;

CREATE OR REPLACE FUNCTION webhook.update_hook(
        id bigint,
        transport_id bigint DEFAULT NULL,
        event_types text[] DEFAULT NULL,
        path text DEFAULT NULL,
        secret text DEFAULT NULL,
        signature text DEFAULT NULL,
        signature_header text DEFAULT NULL,
        payload_format text DEFAULT NULL,
        retry_schedule interval[] DEFAULT NULL,
        active boolean DEFAULT NULL,
        ordered text DEFAULT NULL,
        on_dead text DEFAULT NULL,
        filter jsonpath DEFAULT NULL,
        transform regprocedure DEFAULT NULL)
    RETURNS webhook.hook_info
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old webhook.hook;
    h webhook.hook;
    t webhook.transport;
BEGIN
    PERFORM webhook._not_null(id, 'id');
    SELECT x.* INTO old FROM webhook.hook x
     WHERE x.id = update_hook.id
       AND webhook._manages((SELECT tr.tenant FROM webhook.transport tr
                              WHERE tr.id = x.transport_id))
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hook % does not exist', id
            USING ERRCODE = 'no_data_found';
    END IF;

    h := old;
    h.transport_id := coalesce(transport_id, old.transport_id);
    h.event_types := coalesce(event_types, old.event_types);
    h.path := coalesce(path, old.path);
    h.signature := coalesce(signature, old.signature);
    h.payload_format := coalesce(payload_format, old.payload_format);
    h.retry_schedule := coalesce(retry_schedule, old.retry_schedule);
    h.active := coalesce(active, old.active);
    h.ordered := coalesce(ordered, old.ordered);
    h.on_dead := coalesce(on_dead, old.on_dead);
    -- '$' (every event) removes the filter, '-' (no function) the transform
    h.filter := CASE WHEN filter::text = '$' THEN NULL ELSE coalesce(filter, old.filter) END;
    h.transform := CASE WHEN transform = 0 THEN NULL ELSE coalesce(transform, old.transform) END;
    -- NULL keeps the secret, '' asks for a new generated one
    h.secret := CASE WHEN secret = '' THEN NULL ELSE coalesce(secret, old.secret) END;
    -- the header follows the scheme unless one is given
    h.signature_header := CASE
        WHEN signature_header IS NOT NULL THEN signature_header
        WHEN h.signature IN ('hmac-sha256', 'hmac-sha1') THEN old.signature_header
        ELSE NULL END;
    h := webhook._check_hook(h, true);
    -- active => true re-enables a hook a 410 or webhook.disable_after
    -- disabled, and resumes one that on_dead => 'stop' paused (active, with a
    -- disabled_reason); its failures start again from none
    IF update_hook.active THEN
        h.disabled_reason := NULL;
        h.failing_since := NULL;
        h.failing_deaths := 0;
        h.last_death_at := NULL;
    END IF;

    BEGIN
        UPDATE webhook.hook x
           SET transport_id = h.transport_id, path = h.path,
               event_types = h.event_types, secret = h.secret,
               signature = h.signature, signature_header = h.signature_header,
               payload_format = h.payload_format,
               retry_schedule = h.retry_schedule, active = h.active,
               ordered = h.ordered, on_dead = h.on_dead, filter = h.filter,
               transform = h.transform, transform_role = h.transform_role,
               disabled_reason = h.disabled_reason, updated_at = now(),
               failing_since = h.failing_since, failing_deaths = h.failing_deaths,
               last_death_at = h.last_death_at,
               -- a new secret or scheme replaces the secret outright: a rotation's
               -- previous secret (see rotate_secret) signs no more
               previous_secret = CASE WHEN h.secret = x.secret AND h.signature = x.signature
                                      THEN x.previous_secret END,
               previous_secret_until = CASE WHEN h.secret = x.secret AND h.signature = x.signature
                                            THEN x.previous_secret_until END
         WHERE x.id = update_hook.id
        RETURNING x.* INTO h;
    EXCEPTION
        WHEN foreign_key_violation THEN
            RAISE EXCEPTION 'transport % does not exist', h.transport_id
                USING ERRCODE = 'no_data_found';
        WHEN integrity_constraint_violation THEN
            RAISE EXCEPTION 'invalid hook'
                USING ERRCODE = 'invalid_parameter_value';
    END;
    SELECT * INTO t FROM webhook.transport x WHERE x.id = h.transport_id;
    RETURN webhook._hook_info(h, t);
END
$$;
COMMENT ON FUNCTION webhook.update_hook(bigint, bigint, text[], text, text, text, text, text,
                                       interval[], boolean, text, text, jsonpath, regprocedure) IS
    'change a hook: NULL arguments keep their value, secret => '''' generates a new secret, filter => ''$'' removes the filter, transform => ''-'' the transform, active => true clears disabled_reason and the failures counted towards webhook.disable_after; returns the hook as webhook.hooks() shows it';

-- A deleted hook takes its counters (webhook.hook_metrics) too.
CREATE OR REPLACE FUNCTION webhook._cascade_delete() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'hook' THEN
        DELETE FROM webhook.delivery d WHERE d.hook_id IN (SELECT o.id FROM deleted o);
        DELETE FROM webhook.hook_metrics m WHERE m.hook_id IN (SELECT o.id FROM deleted o);
    ELSIF TG_TABLE_NAME = 'event' THEN
        DELETE FROM webhook.delivery d WHERE d.event_id IN (SELECT o.id FROM deleted o);
    ELSE
        DELETE FROM webhook.attempt a WHERE a.delivery_id IN (SELECT o.id FROM deleted o);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook._cascade_delete() IS
    'trigger: deleted hooks take their deliveries and counters, deleted events their deliveries, deleted deliveries their attempts';

-- max_in_flight at most 10000 (2 x a huge one overflowed the worker's claim).
CREATE OR REPLACE FUNCTION webhook._check_transport(t webhook.transport) RETURNS webhook.transport
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u record;
BEGIN
    t.tenant := webhook._check_tenant(t.tenant);
    PERFORM webhook._not_null(t.name, 'name');
    IF t.name = '' OR t.name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid transport name'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Transport names are non-empty and have no control characters.';
    END IF;

    u := webhook._parse_url(t.base_url, 'base_url');
    IF strpos(u.rest, '?') > 0 THEN
        RAISE EXCEPTION 'base_url must not contain a query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Put a query in the hook''s path, or an API key in query_key.';
    END IF;

    t.headers := webhook._check_headers(t.headers);
    t.auth := webhook._check_auth(t.auth);

    IF t.query_key = '' THEN
        t.query_key := NULL;
    END IF;
    IF t.query_key ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'query_key must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM webhook._not_null(t.connect_timeout, 'connect_timeout');
    PERFORM webhook._not_null(t.timeout, 'timeout');
    IF t.connect_timeout <= interval '0' THEN
        RAISE EXCEPTION 'connect_timeout must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an interval such as ''10 s''.';
    END IF;
    IF t.timeout <= interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give an interval such as ''30 s''.';
    END IF;

    PERFORM webhook._not_null(t.tls_verify, 'tls_verify');
    t.ca_file := webhook._check_file(t.ca_file, 'ca_file');
    t.client_cert_file := webhook._check_file(t.client_cert_file, 'client_cert_file');
    t.client_key_file := webhook._check_file(t.client_key_file, 'client_key_file');
    IF t.client_key_password = '' THEN
        t.client_key_password := NULL;
    END IF;
    IF t.client_key_file IS NOT NULL AND t.client_cert_file IS NULL THEN
        RAISE EXCEPTION 'client_key_file needs client_cert_file'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the client certificate with client_cert_file.';
    END IF;
    IF t.client_key_password IS NOT NULL AND t.client_key_file IS NULL THEN
        RAISE EXCEPTION 'client_key_password needs client_key_file'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the encrypted private key with client_key_file.';
    END IF;

    PERFORM webhook._not_null(t.max_in_flight, 'max_in_flight');
    IF t.max_in_flight < 1 THEN
        RAISE EXCEPTION 'max_in_flight must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the worker holds up to twice as many: more would be a tenant's way to
    -- take the whole worker (and webhook.max_in_flight bounds all anyway)
    IF t.max_in_flight > 10000 THEN
        RAISE EXCEPTION 'max_in_flight must be at most 10000'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'webhook.max_in_flight bounds the requests in flight of all transports together.';
    END IF;
    IF t.max_per_second IS NOT NULL
       AND NOT (t.max_per_second > 0 AND t.max_per_second <= 1000000) THEN
        RAISE EXCEPTION 'max_per_second must be more than 0 and at most 1000000'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give requests per second, such as 50 or 0.5; NULL (or 0 in update_transport) means no limit.';
    END IF;
    RETURN t;
END
$$;

-- redeliver() and replay(): a new delivery is due when it is inserted, by a
-- transaction that has its id (the worker's claim floors rely on it)
CREATE OR REPLACE FUNCTION webhook.redeliver(delivery_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d webhook.delivery;
    new_id bigint;
BEGIN
    PERFORM webhook._not_null(delivery_id, 'delivery_id');
    SELECT x.* INTO d
      FROM webhook.delivery x
      JOIN webhook.hook h ON h.id = x.hook_id
      JOIN webhook.transport t ON t.id = h.transport_id
     WHERE x.id = delivery_id AND webhook._manages(t.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery % does not exist', delivery_id
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM webhook._check_hook_active(d.hook_id);
    -- due when inserted, by a transaction that has its id (the worker's
    -- claim relies on it: src/queue.c, floors)
    PERFORM pg_current_xact_id();
    INSERT INTO webhook.delivery AS x (event_id, hook_id, state, next_attempt_at)
    VALUES (d.event_id, d.hook_id, 'pending', clock_timestamp())
    RETURNING x.id INTO new_id;
    PERFORM webhook.wake();
    RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION webhook.replay(hook_id bigint, since timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM webhook._not_null(hook_id, 'hook_id');
    PERFORM webhook._not_null(since, 'since');
    PERFORM webhook._check_hook_active(hook_id);
    -- due when inserted, as in redeliver()
    PERFORM pg_current_xact_id();
    -- events already on their way to the hook are not queued twice
    INSERT INTO webhook.delivery (event_id, hook_id, state, next_attempt_at)
    SELECT e.id, replay.hook_id, 'pending', clock_timestamp()
      FROM webhook.event e
     WHERE e.created_at >= since
       AND EXISTS (SELECT 1 FROM webhook.delivery d
                    WHERE d.event_id = e.id AND d.hook_id = replay.hook_id)
       AND NOT EXISTS (SELECT 1 FROM webhook.delivery d
                        WHERE d.event_id = e.id AND d.hook_id = replay.hook_id
                          AND d.state IN ('pending', 'delivering', 'failed'))
     ORDER BY e.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM webhook.wake();
    END IF;
    RETURN n;
END
$$;
