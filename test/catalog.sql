-- The definition of the webhook extension's catalog, one line per object
-- or part of one, free of OIDs: test/e2e/test_upgrade.py compares it
-- between an updated and a fresh installation.  Columns in their order;
-- functions, views, triggers, policies, privileges, partitions and
-- comments as PostgreSQL prints them back.
WITH ext AS (
    SELECT e.oid, e.extconfig, e.extcondition FROM pg_extension e WHERE e.extname = 'webhook'
), member AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
    -- the tables, views, indexes and sequences, and the composite types' rows
    SELECT c.* FROM pg_class c
     WHERE c.oid IN (SELECT m.objid FROM member m WHERE m.classid = 'pg_class'::regclass
                     UNION
                     SELECT t.typrelid FROM pg_type t
                       JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
                      WHERE t.typrelid <> 0)
)
SELECT kind || ' ' || name || ': ' || coalesce(definition, '') FROM (
    SELECT 'relation' AS kind, r.relname::text AS name,
           r.relkind::text || ' acl=' || coalesce(r.relacl::text, '') ||
           ' rls=' || r.relrowsecurity || '/' || r.relforcerowsecurity ||
           ' options=' || coalesce(r.reloptions::text, '') ||
           ' comment=' || coalesce(obj_description(r.oid, 'pg_class'), '') AS definition
      FROM rel r
    UNION ALL
    SELECT 'column', r.relname || '.' || lpad(row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum)::text, 3, '0')
                     || ' ' || a.attname,
           format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END ||
           coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '') ||
           coalesce(' identity ' || nullif(a.attidentity::text, ''), '') ||
           ' acl=' || coalesce(a.attacl::text, '')
      FROM rel r
      JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint', r.relname || '.' || co.conname, pg_get_constraintdef(co.oid)
      FROM rel r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT 'index', i.relname, pg_get_indexdef(i.oid)
      FROM rel r JOIN pg_index x ON x.indrelid = r.oid JOIN pg_class i ON i.oid = x.indexrelid
    UNION ALL
    SELECT 'view', r.relname, pg_get_viewdef(r.oid) FROM rel r WHERE r.relkind = 'v'
    UNION ALL
    -- a partitioned table's key; a partition's table and bounds
    SELECT 'partition', r.relname,
           coalesce(pg_get_partkeydef(r.oid), '') ||
           coalesce(i.inhparent::regclass::text || ' ' || pg_get_expr(r.relpartbound, r.oid), '')
      FROM rel r LEFT JOIN pg_inherits i ON i.inhrelid = r.oid
     WHERE r.relkind = 'p' OR r.relispartition
    UNION ALL
    SELECT 'trigger', r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
      FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy', p.tablename || '.' || p.policyname,
           p.permissive || ' ' || p.roles::text || ' ' || p.cmd || ' ' ||
           coalesce(p.qual, '') || ' / ' || coalesce(p.with_check, '')
      FROM pg_policies p WHERE p.schemaname = 'webhook'
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text,
           pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '') ||
           ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
      FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'type', t.typname, t.typtype::text || ' ' || coalesce(obj_description(t.oid, 'pg_type'), '')
      FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'event trigger', e.evtname, e.evtevent || ' ' || e.evtfoid::regproc::text || ' ' ||
           coalesce(e.evttags::text, '') || ' ' || e.evtenabled::text
      FROM pg_event_trigger e JOIN member m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    SELECT 'config', c::regclass::text, coalesce(ext.extcondition[i], '')
      FROM ext, unnest(ext.extconfig) WITH ORDINALITY AS u(c, i)
    UNION ALL
    SELECT 'schema acl', 'webhook', n.nspacl::text FROM pg_namespace n WHERE n.nspname = 'webhook'
) x
ORDER BY 1;
