-- webhook install script, code (src/sql/code), part 1: what deleting a row takes with it.
--
-- The queue's tables have no foreign keys.  Their checks ran for every
-- row: every delivery a writer's change makes, every attempt the worker
-- records; and the one to webhook.hook made a watched table's INSERT wait
-- for (and then fail on) an uncommitted delete_hook().  Only this
-- extension's code writes these tables.  What ON DELETE CASCADE did, these
-- statement triggers do: a deleted hook or event takes its deliveries
-- (not an event the rotation moves from slot 0 to another: a DELETE too).
-- prune() removes the deliveries that a write racing with a delete_hook()
-- may still add.  A deleted delivery leaves its attempts: webhook.attempt
-- is emptied by whole slots, never row by row (src/sql/catalog/20_tables.sql),
-- and its views show only the attempts of deliveries that exist: a row, or
-- a first attempt's success of a hook that exists (webhook.deliveries,
-- src/sql/code/35_views.sql).
CREATE OR REPLACE FUNCTION webhook_internal.cascade_delete() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'hook' THEN
        DELETE FROM webhook.delivery d WHERE d.hook_id IN (SELECT o.id FROM deleted o);
        DELETE FROM webhook.hook_metrics m WHERE m.hook_id IN (SELECT o.id FROM deleted o);
        DELETE FROM webhook_internal.cursor c WHERE c.hook_id IN (SELECT o.id FROM deleted o);
    ELSE
        -- an event moved to another slot of the log (empty_event_slot()) stays
        DELETE FROM webhook.delivery d WHERE d.event_id IN (SELECT o.id FROM deleted o)
           AND NOT EXISTS (SELECT FROM webhook.event e WHERE e.id = d.event_id);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_internal.cascade_delete() IS
    'trigger: deleted hooks take their deliveries, counters and cursors, deleted events their deliveries';
CREATE OR REPLACE TRIGGER hooks_deleted AFTER DELETE ON webhook.hook REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_internal.cascade_delete();
CREATE OR REPLACE TRIGGER events_deleted AFTER DELETE ON webhook.event REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_internal.cascade_delete();
