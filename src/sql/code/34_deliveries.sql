-- webhook install script, part 3.4: deliveries: sending again
-- (redeliver, replay), looking at them (preview, notifications), and
-- prune, with the attempt log's rotation.  The conventions of
-- 29_validators.sql hold.

-- The log read back: what a hook is owed from it (capture.c, with the
-- capture trigger's own matching of types and filters): a hook replayed,
-- or created to start in the past.  Run by the API only: revoked from
-- PUBLIC.
CREATE OR REPLACE FUNCTION webhook_internal.hook_wants(hook_id bigint, event_types text[],
                                                       filter jsonpath, event_type text,
                                                       payload jsonb)
    RETURNS boolean
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_hook_wants';
COMMENT ON FUNCTION webhook_internal.hook_wants(bigint, text[], jsonpath, text, jsonb) IS
    'whether the capture trigger sends an event of this type and payload to a hook of these patterns and filter (a filter that fails: a WARNING, and yes)';
REVOKE EXECUTE ON FUNCTION webhook_internal.hook_wants(bigint, text[], jsonpath, text, jsonb)
    FROM PUBLIC;

CREATE OR REPLACE FUNCTION webhook_internal.queue_from_log(hook_id bigint, tenant text,
                                                           event_types text[], filter jsonpath,
                                                           since timestamptz, queued_only boolean)
    RETURNS integer
    LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'webhook_queue_from_log';
COMMENT ON FUNCTION webhook_internal.queue_from_log(bigint, text, text[], jsonpath,
                                                   timestamptz, boolean) IS
    'queue for the hook, oldest first, the tenant''s logged events of those types that pass the filter since the time since, but those with a delivery to it (queued_only: a pending or failed one); returns how many';
REVOKE EXECUTE ON FUNCTION webhook_internal.queue_from_log(bigint, text, text[], jsonpath,
                                                          timestamptz, boolean) FROM PUBLIC;

-- Raise an error unless the hook exists and is active.
CREATE OR REPLACE FUNCTION webhook_internal.check_hook_active(hook_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    is_active boolean;
BEGIN
    SELECT x.active INTO is_active
      FROM webhook.hook x JOIN webhook.transport t ON t.id = x.transport_id
     WHERE x.id = hook_id AND webhook_internal.manages(t.tenant);
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('hook', hook_id);
    END IF;
    IF NOT is_active THEN
        RAISE EXCEPTION 'hook % is not active', hook_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Reactivate it with webhook.update_hook(%s, active => true).', hook_id);
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.check_hook_active(bigint) IS
    'raise an error unless the hook exists and is active';

CREATE OR REPLACE FUNCTION webhook.redeliver(delivery_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d record;
    new_id bigint;
BEGIN
    PERFORM webhook_internal.not_null(delivery_id, 'delivery_id');
    SELECT x.event_id, x.hook_id INTO d
      FROM webhook.deliveries x
      JOIN webhook.hook h ON h.id = x.hook_id
      JOIN webhook.transport t ON t.id = h.transport_id
     WHERE x.id = delivery_id AND webhook_internal.manages(t.tenant);
    IF NOT FOUND THEN
        PERFORM webhook_internal.does_not_exist('delivery', delivery_id);
    END IF;
    PERFORM webhook_internal.check_hook_active(d.hook_id);
    -- due when inserted, by a transaction that has its id (the worker's
    -- claim relies on it: src/queue.c, floors)
    PERFORM pg_current_xact_id();
    INSERT INTO webhook.delivery AS x (event_id, hook_id, state, next_attempt_at, resource_key)
    VALUES (d.event_id, d.hook_id, 'pending', clock_timestamp(),
            (SELECT CASE WHEN h.ordered = 'resource'
                         THEN webhook_internal.resource_key(e.resource_id) END
               FROM webhook.event e, webhook.hook h
              WHERE e.id = d.event_id AND h.id = d.hook_id))
    RETURNING x.id INTO new_id;
    PERFORM webhook_internal.wake_for(d.hook_id);
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION webhook.redeliver(bigint) IS
    'send a delivery''s event to its hook again, now; returns the new delivery''s id';

CREATE OR REPLACE FUNCTION webhook.replay(hook_id bigint, since timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h webhook.hook;
    n integer;
BEGIN
    PERFORM webhook_internal.not_null(hook_id, 'hook_id');
    PERFORM webhook_internal.not_null(since, 'since');
    PERFORM webhook_internal.check_hook_active(hook_id);
    SELECT x.* INTO h FROM webhook.hook x WHERE x.id = replay.hook_id;
    -- from the log, whether or not the hook was ever sent them; events
    -- still on their way to it are not queued twice
    n := webhook_internal.queue_from_log(
        h.id, (SELECT t.tenant FROM webhook.transport t WHERE t.id = h.transport_id),
        h.event_types, h.filter, since, true);
    IF n > 0 THEN
        PERFORM webhook_internal.wake_for(replay.hook_id);
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION webhook.replay(bigint, timestamptz) IS
    'send again, now, oldest first, every event of the hook''s tenant and types (its filter applied) logged since the given time, whether or not it was sent to the hook before; events still queued for it are skipped; returns how many were queued';

CREATE OR REPLACE FUNCTION webhook_internal.preview(hook_id bigint, event_id bigint,
                                 OUT url text, OUT headers text[], OUT body text)
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'webhook_preview';
COMMENT ON FUNCTION webhook_internal.preview(bigint, bigint) IS
    'the request the worker would send the hook for the event (webhook.preview checks the caller first)';
-- shows any hook's request for any event: only preview() (SECURITY
-- DEFINER, checking its caller) calls it
REVOKE EXECUTE ON FUNCTION webhook_internal.preview(bigint, bigint) FROM PUBLIC;

-- Volatile: a transform runs for real, as the role that set it.
CREATE OR REPLACE FUNCTION webhook.preview(hook_id bigint, event_id bigint,
                                OUT url text, OUT headers text[], OUT body text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM webhook_internal.managed_hook(hook_id);
    PERFORM webhook_internal.not_null(event_id, 'event_id');
    -- an event of the hook's own tenant only: its transform sees no other
    IF NOT EXISTS (SELECT 1 FROM webhook.event e
                     JOIN webhook.hook h ON h.id = preview.hook_id
                     JOIN webhook.transport t ON t.id = h.transport_id
                    WHERE e.id = preview.event_id AND e.tenant = t.tenant) THEN
        PERFORM webhook_internal.does_not_exist('event', event_id);
    END IF;
    SELECT p.url, p.headers, p.body INTO url, headers, body
      FROM webhook_internal.preview(hook_id, event_id) p;
END
$$;
COMMENT ON FUNCTION webhook.preview(bigint, bigint) IS
    'the request the hook would be sent for the event now: URL, header lines (signed; credentials masked) and body, made by its transform if it has one';

-- One page of the deliveries made since a time (by default the last
-- webhook.retention), paged and sorted like hooks() and transports().
CREATE OR REPLACE FUNCTION webhook.notifications(
        tenant text DEFAULT NULL,
        hook_id bigint DEFAULT NULL,
        since timestamptz DEFAULT now() - webhook_internal.retention(),
        page integer DEFAULT 1,
        page_size integer DEFAULT 50,
        sort_by text DEFAULT 'created_at',
        sort_dir text DEFAULT 'ASC')
    RETURNS SETOF webhook.notification
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dir text;
BEGIN
    dir := webhook_internal.check_paging(page, page_size, sort_by, sort_dir,
                                 '{delivery_id,event_type,tenant,hook_id,state,attempts,last_status,created_at,finished_at}', tenant);
    RETURN QUERY EXECUTE format(
        'SELECT n.*
           FROM (SELECT d.id AS delivery_id, e.uid AS event_uid, e.event_type, e.tenant,
                        d.hook_id, d.state, d.attempts, d.last_status, d.created_at,
                        d.finished_at
                   FROM webhook.deliveries d
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
              webhook_internal.tenants_of(webhook_internal.caller());
END
$$;
COMMENT ON FUNCTION webhook.notifications(text, bigint, timestamptz, integer, integer, text, text) IS
    'the deliveries made since the given time (by default the last webhook.retention; all with since => NULL), one page at a time, oldest first';

-- Empty slot src of the event log (src/sql/catalog/20_tables.sql) into
-- slot dst, the current one: copy there every event that must stay, and
-- TRUNCATE src.  An event stays while a delivery row names it, while an
-- active hook's cursor has yet to read it, and, in a slot of unknown
-- contents (known false), while younger than bound (a slot that stopped
-- being current before bound holds none: its writers began before).  So
-- the search reads what the slot keeps, not the slot: the delivery rows
-- of the slot's ids (its first and last, by its key), and, of each of its
-- tenants (a descent of its event_log_idx), the events of transactions
-- that the tenant's slowest cursor may not have read (all of them while an
-- active hook of the tenant has no cursor); only a slot of unknown
-- contents is read whole.  The copy is made under a SHARE lock, which
-- lets the log be read (the worker's claims, the views) and keeps writers
-- out of src (a writer writes the current slot; only one whose
-- transaction began before src stopped being current, or a statement into
-- slot 0, may come; it makes the lock wait its lock_timeout, and the slot
-- is left for the next call).  Then, under the TRUNCATE's lock, the events
-- of the deliveries made meanwhile (by replay(), redeliver(), a failure
-- recorded) are copied too; cursors only move on, and no event comes in.
-- Each statement reads with a snapshot taken after its lock: the caller
-- is in READ COMMITTED (rotate_logs() sees to it).  An id already in dst
-- (an admin's INSERT with an id of its own) is not copied again: the rows
-- are the log's, and the rotation must not stop at one.  Slot 0 is
-- webhook.event's own rows: ONLY.  Caller holds the slots locked (one
-- rotation at a time).
-- What must stay is as large as one hook is behind (a tenant's hook with a
-- slow or rate-limited receiver, a backlog older than the retention), and
-- the caller may be the worker, which delivers for every tenant: given
-- max_moved, while more than that many must stay (counted as found: an
-- event named by two delivery rows counts twice), a call moves that many
-- of them (each deleted from src as it is written to dst, in the caller's
-- transaction, so that a reader sees it in one of them) and leaves the
-- slot (emptied false) for the next call; then it empties the slot as
-- above.  So a slot is emptied without a DELETE, unless a hook is that far
-- behind.  Returns whether it emptied the slot, and the events copied or
-- moved.
CREATE OR REPLACE FUNCTION webhook_internal.empty_event_slot(src smallint, dst smallint,
                                                             bound timestamptz, known boolean,
                                                             max_moved bigint DEFAULT NULL,
                                                             OUT emptied boolean, OUT copied bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    -- its statements are planned at each call: compiling them cost more
    -- than running them
    SET jit = off AS $$
DECLARE
    from_table text := CASE WHEN src = 0 THEN 'ONLY webhook.event'
                            ELSE format('webhook_internal.event_%s', src) END;
    to_table text := CASE WHEN dst = 0 THEN 'webhook.event'
                          ELSE format('webhook_internal.event_%s', dst) END;
    -- the ids of the events of src that must stay ($1 bound, $2 and $3 the
    -- slot's first and last id, $4 known), those of the delivery rows
    -- first; with duplicates
    staying text := format($q$
        SELECT k.id FROM webhook.delivery d JOIN %1$s k ON k.id = d.event_id
         WHERE d.event_id BETWEEN $2 AND $3
        UNION ALL
        SELECT u.id FROM (
            WITH RECURSIVE tenants AS (
                (SELECT k.tenant FROM %1$s k WHERE k.txid IS NOT NULL
                  ORDER BY k.tenant LIMIT 1)
                UNION ALL
                SELECT (SELECT k.tenant FROM %1$s k
                         WHERE k.txid IS NOT NULL AND k.tenant > t.tenant
                         ORDER BY k.tenant LIMIT 1)
                  FROM tenants t WHERE t.tenant IS NOT NULL
            )
            SELECT k.id FROM tenants t
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN bool_or(c.hook_id IS NULL) THEN '0'::xid8
                             ELSE min(pg_snapshot_xmin(c.lo)) END AS unread_from
                   FROM webhook.transport x
                   JOIN webhook.hook h ON h.transport_id = x.id
                   LEFT JOIN webhook_internal.cursor c ON c.hook_id = h.id
                  WHERE x.tenant = t.tenant AND h.active) f
             JOIN %1$s k ON k.tenant = t.tenant AND k.txid IS NOT NULL
                        AND k.txid >= f.unread_from
             WHERE EXISTS (SELECT FROM unnest(k.hook_ids) AS h(hook_id)
                            WHERE EXISTS (SELECT FROM webhook.hook x
                                           WHERE x.id = h.hook_id AND x.active)
                              AND NOT EXISTS (
                                  SELECT FROM webhook_internal.cursor c
                                   WHERE c.hook_id = h.hook_id
                                     AND (pg_visible_in_snapshot(k.txid, c.lo)
                                          OR (pg_visible_in_snapshot(k.txid, c.hi)
                                              AND (k.txid, k.id)
                                                  <= (c.last_txid, c.last_id)))))) u
        UNION ALL
        SELECT k.id FROM %1$s k WHERE NOT $4 AND k.created_at >= $1
        $q$, from_table);
    first_id bigint;
    last_id bigint;
    ids bigint[];
    late bigint;
BEGIN
    emptied := false;
    copied := 0;
    IF max_moved IS NOT NULL THEN
        EXECUTE format('SELECT min(e.id), max(e.id) FROM %s e', from_table)
           INTO first_id, last_id;
        -- the first max_moved found, and whether there are more (the
        -- search stops there; an id may come twice, and counts so)
        EXECUTE format('SELECT ARRAY(SELECT s.id FROM (%s) s LIMIT $5 + 1)', staying)
           INTO ids USING bound, first_id, last_id, known, max_moved;
        IF cardinality(ids) > max_moved THEN
            -- each looked up by key: no plan reads src whole
            EXECUTE format($q$
                WITH moved AS (
                    DELETE FROM %2$s e WHERE e.id = ANY ($1) RETURNING e.*
                )
                INSERT INTO %1$s SELECT * FROM moved ON CONFLICT (id) DO NOTHING
                $q$, to_table, from_table) USING ids[1:max_moved];
            GET DIAGNOSTICS copied = ROW_COUNT;
            RETURN;
        END IF;
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', from_table);
    EXECUTE format('SELECT min(e.id), max(e.id) FROM %s e', from_table) INTO first_id, last_id;
    IF first_id IS NULL THEN
        emptied := true;
        RETURN;
    END IF;
    EXECUTE format($q$
        INSERT INTO %1$s SELECT e.* FROM %2$s e WHERE e.id IN (%3$s)
        ON CONFLICT (id) DO NOTHING
        $q$, to_table, from_table, staying) USING bound, first_id, last_id, known;
    GET DIAGNOSTICS late = ROW_COUNT;
    copied := copied + late;
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', from_table);
    EXECUTE format($q$
        INSERT INTO %1$s SELECT e.* FROM %2$s e
         WHERE e.id IN (SELECT d.event_id FROM webhook.delivery d
                         WHERE d.event_id BETWEEN $1 AND $2)
        ON CONFLICT (id) DO NOTHING
        $q$, to_table, from_table) USING first_id, last_id;
    GET DIAGNOSTICS late = ROW_COUNT;
    copied := copied + late;
    EXECUTE format('TRUNCATE %s', from_table);
    emptied := true;
END
$$;
COMMENT ON FUNCTION webhook_internal.empty_event_slot(smallint, smallint, timestamptz, boolean, bigint) IS
    'empty a slot of webhook.event into the current one: copy what must stay there, truncate the rest; with max_moved, move at most that many events that must stay, and leave the slot while some are left; returns whether it emptied the slot, and the events copied or moved';
REVOKE EXECUTE ON FUNCTION webhook_internal.empty_event_slot(smallint, smallint, timestamptz, boolean, bigint)
    FROM PUBLIC;

-- The rotation of the logs (src/sql/catalog/20_tables.sql): empty every
-- slot but the current one whose attempts all started, and whose events'
-- transactions all began, before now() - older_than: the attempt log's by
-- a TRUNCATE of its partition, the event log's by empty_event_slot(); and
-- make the next empty slot current once the current one has been so for
-- older_than / (slots - 1).
-- A slot that stops being current may still be written by the record
-- statements (and the writers) that began before the rotation commits:
-- its end is taken by the next rotation (its current_until is infinity
-- until then), which comes after that commit, so that every attempt in it
-- started before its end.  A slot of unknown contents (never current, or
-- emptied since: rows restored by pg_restore, or written by hand, may be
-- there) has its attempts looked at (its events stay if young anyway).
-- So no attempt or event younger than older_than goes.  It never makes
-- anyone wait long: a TRUNCATE waits for the sessions reading that slot,
-- and those that come after it wait for it, so it gives up after
-- lock_timeout and leaves the slot for the next call; the worker's record
-- statement writes the current slot only, which is never emptied, and so
-- do the writers (log_slot_changed tells them).  One rotation at a time.
-- Given max_moved (the worker), a slot's events that must stay are moved
-- at most that many a call (empty_event_slot()): one hook far behind makes
-- the calls more, not longer, and the slot is emptied by the call that
-- finds no more than that left (until then, it is not made current).
-- Given only_slot, the call looks at that slot alone: the worker's next
-- steps of a slot left moving, which must not wait again for the locks of
-- the others (each wait holds up every reader of the slot waited for).
-- Returns what it did, a row per slot: emptied (and the size it had),
-- moving (size: the events moved; left for the next call), current
-- (attempts and events are written there from now on), or locked (left
-- for the next call; slot NULL: another rotation runs).
CREATE OR REPLACE FUNCTION webhook_internal.rotate_logs(older_than interval,
                                                        max_moved bigint DEFAULT NULL,
                                                        only_slot smallint DEFAULT NULL)
    RETURNS TABLE (slot smallint, outcome text, size text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET lock_timeout = '50ms' AS $$
DECLARE
    bound timestamptz := now() - older_than;
    slots integer;
    cur webhook_internal.log_slot;
    s webhook_internal.log_slot;
    part text;
    occupied boolean;
    all_old boolean;
    events text;
    has_events boolean;
    events_emptied boolean;
    moved bigint;
    target smallint;
BEGIN
    PERFORM webhook_internal.not_null(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_moved < 1 THEN
        RAISE EXCEPTION 'max_moved must be at least 1, not %', max_moved
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give NULL to copy every event that must stay at once.';
    END IF;
    -- each of empty_event_slot()'s statements must read what its lock let
    -- in: a snapshot taken before (the transaction's) misses events
    -- committed meanwhile, which the TRUNCATE would take with it
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'the logs are rotated in READ COMMITTED only: this transaction is %',
                        upper(current_setting('transaction_isolation'))
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'Call webhook.prune() in a transaction of its own, or after SET TRANSACTION ISOLATION LEVEL READ COMMITTED.';
    END IF;
    BEGIN
        PERFORM FROM webhook_internal.log_slot x ORDER BY x.slot FOR UPDATE;
    EXCEPTION WHEN lock_not_available THEN
        RETURN QUERY SELECT NULL::smallint, 'locked'::text, NULL::text;
        RETURN;
    END;
    -- every rotation before this one has committed: so has every attempt
    -- written to the slots they made not current
    UPDATE webhook_internal.log_slot x SET current_until = clock_timestamp()
     WHERE x.current_until = 'infinity';
    SELECT count(*) INTO slots FROM webhook_internal.log_slot;
    SELECT x.* INTO cur FROM webhook_internal.log_slot x
     WHERE x.current_from IS NOT NULL AND x.current_until IS NULL;
    -- the other slots, from the one after the current one
    FOR s IN SELECT x.* FROM webhook_internal.log_slot x
              WHERE x.slot IS DISTINCT FROM cur.slot
              ORDER BY (x.slot - coalesce(cur.slot, -1) + slots) % slots LOOP
        -- attempts of the last older_than: kept, unlooked at
        CONTINUE WHEN s.current_until >= bound OR s.slot <> only_slot;
        part := format('webhook_internal.attempt_%s', s.slot);
        BEGIN
            EXECUTE format('SELECT EXISTS (SELECT FROM %s)', part) INTO occupied;
            all_old := s.current_until IS NOT NULL;
            IF occupied AND NOT all_old THEN
                EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s a WHERE a.started_at >= $1)', part)
                   INTO all_old USING bound;
            END IF;
            events := CASE WHEN s.slot = 0 THEN 'webhook.event'
                           ELSE format('webhook_internal.event_%s', s.slot) END;
            EXECUTE format('SELECT EXISTS (SELECT FROM ONLY %s)', events) INTO has_events;
            has_events := has_events AND cur.slot IS NOT NULL;
            IF (occupied AND all_old) OR has_events THEN
                rotate_logs.size := pg_size_pretty(
                    CASE WHEN occupied AND all_old THEN pg_total_relation_size(part::regclass) ELSE 0 END
                    + CASE WHEN has_events THEN pg_total_relation_size(events::regclass) ELSE 0 END);
                IF occupied AND all_old THEN
                    EXECUTE format('TRUNCATE %s', part);
                    occupied := false;
                END IF;
                events_emptied := true;
                IF has_events THEN
                    -- slot 0 takes the statements' rows whenever they come
                    SELECT x.emptied, x.copied INTO events_emptied, moved
                      FROM webhook_internal.empty_event_slot(s.slot, cur.slot, bound,
                                                             s.current_until IS NOT NULL
                                                             AND s.slot <> 0, max_moved) x;
                END IF;
                rotate_logs.slot := s.slot;
                IF events_emptied THEN
                    outcome := 'emptied';
                ELSE
                    outcome := 'moving';
                    rotate_logs.size := moved::text;
                    occupied := true;
                END IF;
                RETURN NEXT;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RETURN QUERY SELECT s.slot, 'locked'::text, NULL::text;
            CONTINUE;
        END;
        IF NOT occupied THEN
            IF s.current_from IS NOT NULL THEN
                UPDATE webhook_internal.log_slot x
                   SET current_from = NULL, current_until = NULL
                 WHERE x.slot = s.slot;
            END IF;
            target := coalesce(target, s.slot);
        END IF;
    END LOOP;
    IF target IS NOT NULL
       AND (cur.slot IS NULL OR cur.current_from <= now() - older_than / (slots - 1)) THEN
        UPDATE webhook_internal.log_slot x SET current_until = 'infinity' WHERE x.slot = cur.slot;
        UPDATE webhook_internal.log_slot x SET current_from = now() WHERE x.slot = target;
        RETURN QUERY SELECT target, 'current'::text, NULL::text;
    END IF;
END
$$;
COMMENT ON FUNCTION webhook_internal.rotate_logs(interval, bigint, smallint) IS
    'empty the slots of webhook.attempt and webhook.event whose attempts and events are all older than the bound (keeping the events still needed, moved at most max_moved a call; only_slot alone if given), and make the next empty one current when the current one is due; returns what it did';
REVOKE EXECUTE ON FUNCTION webhook_internal.rotate_logs(interval, bigint, smallint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_internal.rotate_logs(interval, bigint, smallint) TO webhook_admin;

CREATE OR REPLACE FUNCTION webhook.prune(older_than interval DEFAULT webhook_internal.retention())
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bound timestamptz;
    n bigint;
    locked_slot smallint;
BEGIN
    PERFORM webhook_internal.not_null(older_than, 'older_than');
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    bound := now() - older_than;
    DELETE FROM webhook.delivery d
     WHERE d.state IN ('succeeded', 'dead', 'cancelled')
       AND coalesce(d.finished_at, d.created_at) < bound;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- what an inactive hook missed goes as the log does (src/housekeeping.c)
    DELETE FROM webhook.delivery d
     WHERE d.created_at < bound AND d.state = 'pending' AND d.attempts = 0
       AND EXISTS (SELECT 1 FROM webhook.hook h WHERE h.id = d.hook_id AND NOT h.active);
    -- deliveries a write added for a hook deleted meanwhile: nobody sends them
    DELETE FROM webhook.delivery d
     WHERE NOT EXISTS (SELECT 1 FROM webhook.hook h WHERE h.id = d.hook_id);
    -- attempts and events go by whole slots, those older than the bound,
    -- keeping the events that the deliveries left or a cursor need
    FOR locked_slot IN SELECT x.slot FROM webhook_internal.rotate_logs(older_than) x
                        WHERE x.outcome = 'locked' LOOP
        RAISE NOTICE 'log slot % is left as it is: %', locked_slot,
            CASE WHEN locked_slot IS NULL THEN 'another session rotates the slots'
                 ELSE 'another session holds a lock on it' END
            USING HINT = 'Call webhook.prune() again once that session''s transaction has ended.';
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION webhook.prune(interval) IS
    'delete finished deliveries older than the bound, those of deleted hooks and those of inactive hooks never tried and older than the bound, then empty the slots of webhook.attempt and webhook.event whose rows are all older than the bound (keeping the events a delivery left or an active hook''s cursor needs); returns the number of finished deliveries deleted';
REVOKE EXECUTE ON FUNCTION webhook.prune(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.prune(interval) TO webhook_admin;
