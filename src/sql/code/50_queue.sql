-- webhook install script, part 5: what the delivery worker reads and writes.
--
-- The worker's own statements (claim, record, recover) are in src/queue.c,
-- kept as prepared plans; these are the helpers they call.

-- STABLE as its body is (to_char): an IMMUTABLE label would keep it from
-- being inlined, and it would be parsed for every batch of the worker.
CREATE OR REPLACE FUNCTION webhook_internal.iso8601(ts timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The body of a request: the event rendered in the hook's payload format.
CREATE OR REPLACE FUNCTION webhook.render(format text, e webhook.event, hook_uid text)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE format
        WHEN 'standard' THEN
            (pg_catalog.jsonb_build_object(
                'type', e.event_type,
                'timestamp', webhook_internal.iso8601(e.created_at),
                'data', e.payload)
             || CASE WHEN e.previous IS NULL THEN '{}'::jsonb
                     ELSE pg_catalog.jsonb_build_object('previous', e.previous) END)::text
        WHEN 'thin' THEN
            pg_catalog.jsonb_build_object('resourceId', e.resource_id,
                                          'eventType', e.event_type)::text
        WHEN 'envelope' THEN
            pg_catalog.jsonb_build_object(
                'id', e.uid,
                'eventType', e.event_type,
                'hookId', hook_uid,
                'tenant', e.tenant,
                'createdAt', webhook_internal.iso8601(e.created_at),
                'resource', '/' || e.resource,
                'resourceId', e.resource_id,
                'links', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'href', '/' || e.resource || '/' || e.resource_id,
                    'method', 'GET',
                    'rel', 'resource')))::text
        ELSE e.payload::text
    END
$$;
COMMENT ON FUNCTION webhook.render(text, webhook.event, text) IS
    'the request body of an event in a payload format (standard, thin, envelope, row)';

-- When a failed attempt is tried again: the schedule's step with +-20 %
-- jitter, or a Retry-After of retry_after seconds, kept within one to two
-- steps.
CREATE OR REPLACE FUNCTION webhook_internal.next_attempt(step interval, retry_after double precision)
    RETURNS timestamptz
    LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.now() + CASE
        WHEN retry_after IS NULL THEN step * (0.8 + pg_catalog.random() * 0.4)
        ELSE LEAST(GREATEST(pg_catalog.make_interval(
                                secs => LEAST(retry_after, 2 * pg_catalog.date_part('epoch', step))),
                            step),
                   step * 2)
    END
$$;
COMMENT ON FUNCTION webhook_internal.iso8601(timestamptz) IS
    'a timestamp as ISO-8601 in UTC with milliseconds, as payloads carry it';
COMMENT ON FUNCTION webhook_internal.next_attempt(interval, double precision) IS
    'when a failed attempt is tried again: the step with jitter, or Retry-After within bounds';

-- An event's weight in the claim, before its body is built (src/queue.c).
CREATE OR REPLACE FUNCTION webhook_internal.stored_bytes(value jsonb) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_stored_bytes';
COMMENT ON FUNCTION webhook_internal.stored_bytes(jsonb) IS
    'the size of a value uncompressed, read from its header without reading it whole';
CREATE OR REPLACE FUNCTION webhook_internal.rendered_bytes(value jsonb, cap bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'webhook_rendered_bytes';
COMMENT ON FUNCTION webhook_internal.rendered_bytes(jsonb, bigint) IS
    'about how many bytes a value takes as JSON text, counted without building it, up to past cap';
