-- webhook install script, part 4: capture (watch, unwatch, emit, ping).

CREATE FUNCTION webhook.emit(event_type text, payload jsonb,
                             tenant text DEFAULT 'default',
                             resource text DEFAULT NULL,
                             resource_id text DEFAULT NULL)
    RETURNS uuid
    LANGUAGE c VOLATILE SECURITY DEFINER
    AS 'MODULE_PATHNAME', 'webhook_emit';
COMMENT ON FUNCTION webhook.emit(text, jsonb, text, text, text) IS
    'raise an event from SQL; delivered to the tenant''s subscribed hooks after commit';

-- The trigger reads the hook list and writes the queue whoever writes the
-- watched table, hence SECURITY DEFINER; it runs no user-supplied SQL.
ALTER FUNCTION webhook.capture() SECURITY DEFINER;

-- The name of a column of tbl, checked; NULL stays NULL.
CREATE FUNCTION webhook._check_column(tbl regclass, col text, what text)
    RETURNS text
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF col IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = tbl AND a.attname = col
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl
            USING ERRCODE = 'undefined_column',
                  HINT = format('Give as %s the name of one of the table''s columns, as it is spelled in the catalog (case matters).', what);
    END IF;
    RETURN col;
END
$$;
COMMENT ON FUNCTION webhook._check_column(regclass, text, text) IS
    'a column name of the table, checked (for webhook.watch)';

CREATE FUNCTION webhook.watch(tbl regclass,
                              resource text DEFAULT NULL,
                              tenant_column text DEFAULT NULL,
                              id_column text DEFAULT NULL,
                              state_column text DEFAULT NULL,
                              events text[] DEFAULT '{INSERT,UPDATE,DELETE}')
    RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    kind "char";
    key_columns text[];
    ev text;
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only ordinary and partitioned tables can be watched.';
    END IF;
    IF pg_catalog.pg_has_role(
           (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl), 'USAGE') IS NOT TRUE THEN
        RAISE EXCEPTION 'must be owner of table %', tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    resource := coalesce(resource,
                         (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = tbl));
    IF resource !~ '^[A-Za-z0-9_-]+$' THEN
        RAISE EXCEPTION 'invalid resource name "%"', resource
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Resource names are letters, digits, "_" and "-", such as "order".';
    END IF;

    IF events IS NULL OR pg_catalog.cardinality(events) = 0 THEN
        RAISE EXCEPTION 'events must name at least one of INSERT, UPDATE, DELETE'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH ev IN ARRAY events LOOP
        IF ev IS NULL OR pg_catalog.upper(ev) NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
            RAISE EXCEPTION 'invalid event "%"', ev
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Events are INSERT, UPDATE and DELETE.';
        END IF;
    END LOOP;
    events := ARRAY(SELECT DISTINCT pg_catalog.upper(e) FROM pg_catalog.unnest(events) e ORDER BY 1);

    tenant_column := webhook._check_column(tbl, tenant_column, 'tenant_column');
    state_column := webhook._check_column(tbl, state_column, 'state_column');
    IF id_column IS NULL THEN
        SELECT pg_catalog.array_agg(a.attname::text) INTO key_columns
          FROM pg_catalog.pg_index i
          JOIN pg_catalog.pg_attribute a
            ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = tbl AND i.indisprimary;
        IF key_columns IS NULL OR pg_catalog.cardinality(key_columns) <> 1 THEN
            RAISE EXCEPTION 'table % has no single-column primary key', tbl
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Add a primary key, or name the column that identifies a row with id_column.';
        END IF;
        id_column := key_columns[1];
    ELSE
        id_column := webhook._check_column(tbl, id_column, 'id_column');
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid = tbl AND g.tgname = 'webhook_capture') THEN
        EXECUTE pg_catalog.format('DROP TRIGGER webhook_capture ON %s', tbl);
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER webhook_capture AFTER %s ON %s FOR EACH ROW'
        ' EXECUTE FUNCTION webhook.capture(%L, %L, %L, %L)',
        pg_catalog.array_to_string(events, ' OR '), tbl,
        resource, coalesce(tenant_column, ''), id_column, coalesce(state_column, ''));

    INSERT INTO webhook.watch AS w (tbl, resource, tenant_column, id_column, state_column, events)
    VALUES (tbl, resource, tenant_column, id_column, state_column, events)
    ON CONFLICT ON CONSTRAINT watch_pkey DO UPDATE
       SET resource = excluded.resource, tenant_column = excluded.tenant_column,
           id_column = excluded.id_column, state_column = excluded.state_column,
           events = excluded.events;
END
$$;
COMMENT ON FUNCTION webhook.watch(regclass, text, text, text, text, text[]) IS
    'turn the table''s row changes into events (installs the capture trigger)';

CREATE FUNCTION webhook.unwatch(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook.watch w WHERE w.tbl = unwatch.tbl) THEN
        RAISE NOTICE 'table % is not watched, skipping', tbl;
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS webhook_capture ON %s', tbl);
    DELETE FROM webhook.watch w WHERE w.tbl = unwatch.tbl;
    RETURN true;
END
$$;
COMMENT ON FUNCTION webhook.unwatch(regclass) IS
    'stop turning the table''s changes into events';

CREATE FUNCTION webhook.ping(hook_id bigint) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    hook_tenant text;
    ev bigint;
    result bigint;
BEGIN
    PERFORM webhook._check_hook_active(hook_id);
    SELECT t.tenant INTO hook_tenant
      FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id
     WHERE h.id = ping.hook_id;
    INSERT INTO webhook.event (tenant, event_type, payload)
    VALUES (hook_tenant, 'WEBHOOK_PING',
            pg_catalog.jsonb_build_object('hookId', hook_id, 'zen', 'Deliveries are at least once.'))
    RETURNING id INTO ev;
    INSERT INTO webhook.delivery (event_id, hook_id) VALUES (ev, ping.hook_id)
    RETURNING id INTO result;
    PERFORM webhook.wake();
    RETURN result;
END
$$;
COMMENT ON FUNCTION webhook.ping(bigint) IS
    'send a WEBHOOK_PING test event to the hook now; returns the delivery id';
