-- webhook install script, part 4: capture (watch, unwatch, emit, ping).

CREATE OR REPLACE FUNCTION webhook.capture() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'webhook_capture';
COMMENT ON FUNCTION webhook.capture() IS
    'row trigger installed by webhook.watch(): changes become events';
-- Only managers may attach it to a table (see part 6).
REVOKE EXECUTE ON FUNCTION webhook.capture() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.capture() TO webhook_admin;

-- Changes to hooks, and to the tenant of their transports, must reach every
-- session's cached list of hooks; and changes to what a request is made of
-- (the hook's path, secret, signature, format, transform, and the
-- transport's settings), the rows that the worker keeps of them
-- (src/queue.c, listed_hooks()), and a previous secret set (not one
-- dropped: the rows kept have none while it signs).  Not the columns the
-- worker's chores write often (endpoint health, expired secrets); it writes
-- disabled_reason and active, once a hook, when it stops or disables one.
-- Row triggers: a statement that changes no row (the worker's, mostly)
-- must not invalidate anything.
CREATE OR REPLACE FUNCTION webhook_internal.hooks_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'webhook_hooks_changed';
CREATE OR REPLACE TRIGGER hooks_changed
    AFTER INSERT OR DELETE OR UPDATE OF id, transport_id, event_types, active, filter, ordered,
                                        path, secret, signature, signature_header,
                                        payload_format, uid, transform, transform_role,
                                        disabled_reason
    ON webhook.hook FOR EACH ROW EXECUTE FUNCTION webhook_internal.hooks_changed();
CREATE OR REPLACE TRIGGER hooks_previous_secret_set
    AFTER UPDATE OF previous_secret, previous_secret_until ON webhook.hook
    FOR EACH ROW WHEN (NEW.previous_secret_until IS NOT NULL)
    EXECUTE FUNCTION webhook_internal.hooks_changed();
CREATE OR REPLACE TRIGGER hooks_truncated AFTER TRUNCATE
    ON webhook.hook FOR EACH STATEMENT EXECUTE FUNCTION webhook_internal.hooks_changed();
CREATE OR REPLACE TRIGGER transports_changed
    AFTER DELETE OR UPDATE OF tenant, base_url, query_key, headers, auth, connect_timeout,
                              timeout, tls_verify, ca_file, client_cert_file,
                              client_key_file, client_key_password, max_in_flight,
                              max_per_second
    ON webhook.transport FOR EACH ROW EXECUTE FUNCTION webhook_internal.hooks_changed();
CREATE OR REPLACE TRIGGER transports_truncated AFTER TRUNCATE
    ON webhook.transport FOR EACH STATEMENT EXECUTE FUNCTION webhook_internal.hooks_changed();
-- They fire whatever session_replication_role says (a subscription's apply,
-- an admin's replica role): a change must reach the sessions and the
-- worker however it is made.  (The worker asks for the rows it keeps again
-- at every full look, at least once a second, as well.)
ALTER TABLE webhook.hook ENABLE ALWAYS TRIGGER hooks_changed;
ALTER TABLE webhook.hook ENABLE ALWAYS TRIGGER hooks_previous_secret_set;
ALTER TABLE webhook.hook ENABLE ALWAYS TRIGGER hooks_truncated;
ALTER TABLE webhook.transport ENABLE ALWAYS TRIGGER transports_changed;
ALTER TABLE webhook.transport ENABLE ALWAYS TRIGGER transports_truncated;
COMMENT ON FUNCTION webhook_internal.hooks_changed() IS
    'trigger: makes every session reload its cached list of hooks';
-- A rotation that makes another slot of the logs current tells every
-- writer to look again for the event log's table to write
-- (src/enqueue.c): the same invalidation, of webhook_internal.log_slot.  A
-- row trigger: a rotation that changes no slot invalidates nothing.
CREATE OR REPLACE FUNCTION webhook_internal.log_slot_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'webhook_hooks_changed';
CREATE OR REPLACE TRIGGER log_slot_changed AFTER UPDATE
    ON webhook_internal.log_slot FOR EACH ROW
    EXECUTE FUNCTION webhook_internal.log_slot_changed();
COMMENT ON FUNCTION webhook_internal.log_slot_changed() IS
    'trigger: makes every writer look again for the event log''s current slot';

CREATE OR REPLACE FUNCTION webhook.emit(event_type text, payload jsonb,
                             tenant text DEFAULT 'default',
                             resource text DEFAULT NULL,
                             resource_id text DEFAULT NULL)
    RETURNS uuid
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'webhook_emit';
COMMENT ON FUNCTION webhook.emit(text, jsonb, text, text, text) IS
    'raise an event from SQL; delivered to the tenant''s subscribed hooks after commit';

-- capture() and emit() run as their caller: whatever a row's types run
-- (output functions, casts to json) runs with the writer's rights.  They
-- switch to the extension's owner only around their own catalog reads and
-- writes, as PostgreSQL's foreign-key triggers do; so writers of a watched
-- table need no rights on the webhook schema.

-- The name of a column of tbl, checked; NULL stays NULL.
CREATE OR REPLACE FUNCTION webhook_internal.check_column(tbl regclass, col text, what text)
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
COMMENT ON FUNCTION webhook_internal.check_column(regclass, text, text) IS
    'a column name of the table, checked (for webhook.watch)';

-- (Re)create the capture trigger of a watched table from its watch row:
-- the trigger's arguments are the watch's settings.
CREATE OR REPLACE FUNCTION webhook_internal.install_capture(w webhook.watch) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger g
                WHERE g.tgrelid = w.tbl AND g.tgname = 'webhook_capture') THEN
        EXECUTE format('DROP TRIGGER webhook_capture ON %s', w.tbl);
    END IF;
    EXECUTE format(
        'CREATE TRIGGER webhook_capture AFTER %s ON %s FOR EACH ROW'
        ' EXECUTE FUNCTION webhook.capture(%L, %L, %L, %L)',
        array_to_string(w.events, ' OR '), w.tbl,
        w.resource, coalesce(w.tenant_column, ''), w.id_column,
        coalesce(w.state_column, ''));
END
$$;
COMMENT ON FUNCTION webhook_internal.install_capture(webhook.watch) IS
    'create the capture trigger of a watched table from its settings';

CREATE OR REPLACE FUNCTION webhook.watch(tbl regclass,
                              resource text DEFAULT NULL,
                              tenant_column text DEFAULT NULL,
                              id_column text DEFAULT NULL,
                              state_column text DEFAULT NULL,
                              events text[] DEFAULT '{INSERT,UPDATE,DELETE}')
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind "char";
    key_columns text[];
    ev text;
    wt webhook.watch;
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

    tenant_column := webhook_internal.check_column(tbl, tenant_column, 'tenant_column');
    state_column := webhook_internal.check_column(tbl, state_column, 'state_column');
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
        id_column := webhook_internal.check_column(tbl, id_column, 'id_column');
    END IF;

    INSERT INTO webhook.watch AS w (tbl, resource, tenant_column, id_column, state_column, events)
    VALUES (tbl, resource, tenant_column, id_column, state_column, events)
    ON CONFLICT ON CONSTRAINT watch_pkey DO UPDATE
       SET resource = excluded.resource, tenant_column = excluded.tenant_column,
           id_column = excluded.id_column, state_column = excluded.state_column,
           events = excluded.events
    RETURNING w.* INTO wt;
    PERFORM webhook_internal.install_capture(wt);
END
$$;
COMMENT ON FUNCTION webhook.watch(regclass, text, text, text, text, text[]) IS
    'turn the table''s row changes into events (installs the capture trigger)';
REVOKE EXECUTE ON FUNCTION webhook.watch(regclass, text, text, text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.watch(regclass, text, text, text, text, text[]) TO webhook_admin;

CREATE OR REPLACE FUNCTION webhook.unwatch(tbl regclass) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook.watch w WHERE w.tbl = unwatch.tbl) THEN
        RAISE NOTICE 'table % is not watched, skipping', tbl;
        RETURN false;
    END IF;
    -- a table dropped meanwhile has no trigger left to drop
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tbl) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS webhook_capture ON %s', tbl);
    END IF;
    DELETE FROM webhook.watch w WHERE w.tbl = unwatch.tbl;
    RETURN true;
END
$$;
COMMENT ON FUNCTION webhook.unwatch(regclass) IS
    'stop turning the table''s changes into events';
REVOKE EXECUTE ON FUNCTION webhook.unwatch(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook.unwatch(regclass) TO webhook_admin;

CREATE OR REPLACE FUNCTION webhook.ping(hook_id bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    hook_tenant text;
    ev bigint;
    result bigint;
BEGIN
    PERFORM webhook_internal.check_hook_active(hook_id);
    SELECT t.tenant INTO hook_tenant
      FROM webhook.hook h JOIN webhook.transport t ON t.id = h.transport_id
     WHERE h.id = ping.hook_id;
    INSERT INTO webhook.event (tenant, event_type, payload)
    VALUES (hook_tenant, 'WEBHOOK_PING',
            pg_catalog.jsonb_build_object('hookId', hook_id, 'zen', 'Deliveries are at least once.'))
    RETURNING id INTO ev;
    -- due when inserted, after the event gave the transaction its id: never
    -- below a floor of the worker's claim (src/queue.c)
    INSERT INTO webhook.delivery (event_id, hook_id, next_attempt_at)
    VALUES (ev, ping.hook_id, pg_catalog.clock_timestamp())
    RETURNING id INTO result;
    PERFORM webhook_internal.wake_for(ping.hook_id);
    RETURN result;
END
$$;
COMMENT ON FUNCTION webhook.ping(bigint) IS
    'send a WEBHOOK_PING test event to the hook now; returns the delivery id';

------------------------------------------------------------------------------
-- Following the watched tables' DDL, so that renames and drops never make
-- the application's writes fail.  SECURITY DEFINER: the table's owner, who
-- runs the DDL, has no rights on the webhook schema.  They run nothing the
-- owner controls: the names they write come from the system catalogs.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION webhook_internal.renamed_column(command pg_ddl_command,
                                        OUT old_name text, OUT new_name text)
    LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'webhook_renamed_column';
COMMENT ON FUNCTION webhook_internal.renamed_column(pg_ddl_command) IS
    'the old and new name of the column an ALTER TABLE ... RENAME COLUMN renamed; nulls for other commands';

-- After ALTER TABLE: a renamed watched column is followed (the watch and the
-- trigger's arguments take the new name), a dropped one is reported.  The
-- capture trigger copes with a dropped column by itself: without the state
-- column updates become <RESOURCE>_UPDATE, without the id column events
-- have no resource_id, and without the tenant column nothing is captured
-- (the rows can no longer be routed to a tenant).
CREATE OR REPLACE FUNCTION webhook_internal.follow_alter_table() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cmd record;
    w webhook.watch;
    gone text[];
BEGIN
    FOR cmd IN SELECT c.objid, r.old_name, r.new_name
                 FROM pg_event_trigger_ddl_commands() c
                 CROSS JOIN LATERAL webhook_internal.renamed_column(c.command) r
                WHERE c.classid = 'pg_class'::regclass AND c.command_tag = 'ALTER TABLE'
    LOOP
        -- a rename recurses to inheritance children and partitions
        FOR w IN WITH RECURSIVE tree(oid) AS (
                         SELECT cmd.objid
                          UNION
                         SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
                 SELECT x.* FROM webhook.watch x JOIN tree ON x.tbl = tree.oid
                    FOR UPDATE OF x
        LOOP
            IF cmd.new_name IS NOT NULL
               AND cmd.old_name IN (w.tenant_column, w.id_column, w.state_column) THEN
                UPDATE webhook.watch x
                   SET tenant_column = CASE WHEN x.tenant_column = cmd.old_name
                                            THEN cmd.new_name ELSE x.tenant_column END,
                       id_column = CASE WHEN x.id_column = cmd.old_name
                                        THEN cmd.new_name ELSE x.id_column END,
                       state_column = CASE WHEN x.state_column = cmd.old_name
                                           THEN cmd.new_name ELSE x.state_column END
                 WHERE x.tbl = w.tbl
                RETURNING x.* INTO w;
                PERFORM webhook_internal.install_capture(w);
            END IF;
            SELECT array_agg(quote_ident(col)) INTO gone
              FROM unnest(ARRAY[w.tenant_column, w.id_column, w.state_column]) col
             WHERE col IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                WHERE a.attrelid = w.tbl AND a.attname = col
                                  AND a.attnum > 0 AND NOT a.attisdropped);
            IF gone IS NOT NULL THEN
                RAISE WARNING 'table % lacks columns that webhook.watch() names: %',
                              w.tbl, array_to_string(gone, ', ')
                    USING HINT = CASE WHEN quote_ident(w.tenant_column) = ANY (gone)
                                      THEN 'Its changes are not captured until webhook.watch() is called again with its columns.'
                                      ELSE 'Its changes are captured without that column; call webhook.watch() again with its columns.' END;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION webhook_internal.follow_alter_table() IS
    'event trigger: watched columns follow renames; dropped ones are reported';

-- After DROP TABLE (or DROP SCHEMA ... CASCADE): the table's watch goes too.
CREATE OR REPLACE FUNCTION webhook_internal.follow_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM webhook.watch w
     WHERE w.tbl IN (SELECT o.objid FROM pg_event_trigger_dropped_objects() o
                      WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0);
END
$$;
COMMENT ON FUNCTION webhook_internal.follow_drop() IS
    'event trigger: a dropped table is no longer watched';

DROP EVENT TRIGGER IF EXISTS webhook_follow_alter_table;
CREATE EVENT TRIGGER webhook_follow_alter_table ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION webhook_internal.follow_alter_table();
DROP EVENT TRIGGER IF EXISTS webhook_follow_drop;
CREATE EVENT TRIGGER webhook_follow_drop ON sql_drop
    EXECUTE FUNCTION webhook_internal.follow_drop();
