-- Deliveries: redeliver, replay, notifications, prune, and the views
-- delivery_log and hook_stats.  The worker sends nothing in these tests
-- (webhook.enabled = off), so the queue is filled by hand: events, deliveries
-- in every state, and attempts, at known ages.

-- This file runs alone too (test/check REGRESS=deliveries).
\i sql/include/alone.sql

SELECT webhook.create_transport('shop', 'https://shop.test', query_key => 'qk-SECRET-1') AS shop \gset
SELECT webhook.create_transport('erp', 'https://erp.test', tenant => 'acme') AS erp \gset
SELECT webhook.create_hook(:shop, path => '/a') AS ha \gset
SELECT webhook.create_hook(:erp, path => '/b') AS hb \gset
SELECT webhook.create_hook(:shop, path => '/c', active => false) AS hc \gset

-- events: e* of tenant default, f* of tenant acme; e5 was never delivered;
-- e6 is of a tenant without hooks
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_CREATED', 'orders', '1', '{}', now() - interval '40 days') RETURNING id AS e1 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_SETTLED', 'orders', '1', '{}', now() - interval '10 days') RETURNING id AS e2 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_DELIVERED', 'orders', '1', '{}', now() - interval '2 days') RETURNING id AS e3 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_CANCELLED', 'orders', '2', '{}', now() - interval '1 hour') RETURNING id AS e4 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_CREATED', 'orders', '3', '{}', now() - interval '40 days') RETURNING id AS e5 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('initech', 'ORDER_CREATED', 'orders', '4', '{}', now() - interval '40 days') RETURNING id AS e6 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('acme', 'INVOICE_PAID', 'invoices', '7', '{}', now() - interval '40 days') RETURNING id AS f1 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('acme', 'INVOICE_PAID', 'invoices', '8', '{}', now() - interval '10 days') RETURNING id AS f2 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('acme', 'INVOICE_SENT', 'invoices', '9', '{}', now() - interval '2 days') RETURNING id AS f3 \gset
INSERT INTO webhook.event (tenant, event_type, resource, resource_id, payload, created_at)
VALUES ('default', 'ORDER_ACCEPTED', 'orders', '5', '{}', now() - interval '3 hours') RETURNING id AS e7 \gset

-- deliveries in every state
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_status, created_at, finished_at, next_attempt_at)
VALUES (:e1, :ha, 'succeeded', 1, 200, now() - interval '40 days', now() - interval '40 days', now() - interval '40 days')
RETURNING id AS d1 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_status, created_at, finished_at, next_attempt_at)
VALUES (:e2, :ha, 'dead', 3, 500, now() - interval '10 days', now() - interval '9 days', now() - interval '9 days')
RETURNING id AS d2 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_status, created_at, finished_at, next_attempt_at)
VALUES (:e3, :ha, 'succeeded', 2, 200, now() - interval '2 days', now() - interval '2 days', now() - interval '2 days')
RETURNING id AS d3 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, created_at, next_attempt_at)
VALUES (:e4, :ha, 'pending', now() - interval '1 hour', now() + interval '1 day')
RETURNING id AS d4 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_error, created_at, next_attempt_at)
VALUES (:f3, :hb, 'failed', 1, 'Connection refused', now() - interval '2 days', now() + interval '1 day')
RETURNING id AS d5 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, created_at, finished_at, next_attempt_at)
VALUES (:f2, :hb, 'cancelled', now() - interval '10 days', now() - interval '10 days', now() - interval '10 days')
RETURNING id AS d6 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, created_at, next_attempt_at)
VALUES (:f1, :hb, 'pending', now() - interval '40 days', now() + interval '1 day')
RETURNING id AS d7 \gset
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, last_status, created_at, finished_at, next_attempt_at)
VALUES (:e4, :hc, 'succeeded', 1, 204, now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour')
RETURNING id AS d8 \gset

-- attempts, with the query key in their URL
INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, duration_ms, url, status_code, error)
VALUES (:d1, 1, now() - interval '40 days', 5, 'https://shop.test/a?key=qk-SECRET-1', 200, NULL),
       (:d2, 1, now() - interval '10 days', 50, 'https://shop.test/a?key=qk-SECRET-1', 500, NULL),
       (:d2, 2, now() - interval '9 days 23 hours', 60, 'https://shop.test/a?key=qk-SECRET-1', 500, NULL),
       (:d2, 3, now() - interval '9 days', 70, 'https://shop.test/a?key=qk-SECRET-1', 500, NULL),
       (:d3, 1, now() - interval '2 days', 100, 'https://shop.test/a?key=qk-SECRET-1', 503, NULL),
       (:d3, 2, now() - interval '47 hours', 300, 'https://shop.test/a?key=qk-SECRET-1', 200, NULL),
       (:d5, 1, now() - interval '2 days', 1000, 'https://erp.test/b', NULL, 'Connection refused'),
       (:d8, 1, now() - interval '1 hour', 20, 'https://shop.test/c?x=1&key=qk-SECRET-1', 204, NULL);
-- a success at the first attempt, as the worker records one: its attempt,
-- which names its event and hook, and no delivery row
SELECT nextval('webhook.delivery_id_seq') AS d9 \gset
INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, duration_ms, url, status_code,
                             event_id, hook_id)
VALUES (:d9, 1, now() - interval '3 hours', 10, 'https://shop.test/a?key=qk-SECRET-1', 204, :e7, :ha);

CREATE TEMP VIEW hook_names AS
SELECT :ha::bigint AS id, 'A' AS hook UNION ALL
SELECT :hb, 'B' UNION ALL
SELECT :hc, 'C';

--
-- views
--
-- every delivery: the rows, and the success that has none
SELECT n.hook, e.event_type, d.state, d.attempts, d.last_status, d.id = :d9 AS is_d9,
       d.finished_at > d.created_at AS took_time
  FROM webhook.deliveries d JOIN hook_names n ON n.id = d.hook_id
  JOIN webhook.event e ON e.id = d.event_id
 ORDER BY d.id;
SELECT n.hook, l.tenant, l.event_type, l.resource_id, l.url, l.attempt_no, l.status_code,
       l.duration_ms, l.error, l.state, l.attempted_at IS NOT NULL AS ok
  FROM webhook.delivery_log l JOIN hook_names n ON n.id = l.hook_id
 ORDER BY l.attempted_at;
-- over the deliveries of the last 30 days (webhook.retention)
SELECT n.hook, s.tenant, s.pending, s.succeeded, s.failed, s.dead, s.success_rate,
       s.p50_ms, s.p95_ms
  FROM webhook.hook_stats s JOIN hook_names n ON n.id = s.hook_id
 ORDER BY n.hook;
SET webhook.retention = '1 day';
SELECT n.hook, s.pending, s.succeeded, s.failed, s.dead, s.success_rate, s.p50_ms, s.p95_ms
  FROM webhook.hook_stats s JOIN hook_names n ON n.id = s.hook_id
 ORDER BY n.hook;
RESET webhook.retention;

--
-- notifications: the last webhook.retention (30 days) by default, oldest
-- first, one page of 50
--
SELECT n.hook, x.event_type, x.tenant, x.state, x.attempts, x.last_status,
       x.event_uid IS NOT NULL AS has_uid, x.finished_at IS NOT NULL AS finished
  FROM webhook.notifications() x JOIN hook_names n ON n.id = x.hook_id;
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications(tenant => 'acme', since => NULL) x JOIN hook_names n ON n.id = x.hook_id;
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications(hook_id => :ha, since => now() - interval '3 days') x
  JOIN hook_names n ON n.id = x.hook_id;
SELECT x.delivery_id = :d4 AS is_d4
  FROM webhook.notifications(since => now() - interval '1 day', tenant => 'default', hook_id => :ha) x;
SELECT count(*) FROM webhook.notifications(tenant => 'nobody');
SELECT * FROM webhook.notifications(tenant => 'bad tenant!');
-- the default window is webhook.retention
SET webhook.retention = '3 days';
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications() x JOIN hook_names n ON n.id = x.hook_id;
RESET webhook.retention;
-- pages and sorting, as hooks() and transports()
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications(since => NULL, page_size => 3) x JOIN hook_names n ON n.id = x.hook_id;
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications(since => NULL, page => 2, page_size => 3) x
  JOIN hook_names n ON n.id = x.hook_id;
SELECT count(*) FROM webhook.notifications(since => NULL, page => 4, page_size => 3);
SELECT n.hook, x.event_type, x.state, x.attempts
  FROM webhook.notifications(since => NULL, sort_by => 'attempts', sort_dir => 'desc') x
  JOIN hook_names n ON n.id = x.hook_id;
SELECT n.hook, x.event_type, x.state
  FROM webhook.notifications(tenant => 'default', sort_by => 'state', page_size => 2) x
  JOIN hook_names n ON n.id = x.hook_id;
-- ties are broken by delivery_id, in the same direction
SELECT array_agg(x.delivery_id ORDER BY o) = array_agg(x.delivery_id ORDER BY x.tenant DESC, x.delivery_id DESC)
       AS tie_broken
  FROM webhook.notifications(since => NULL, sort_by => 'tenant', sort_dir => 'DESC')
       WITH ORDINALITY AS x(delivery_id, event_uid, event_type, tenant, hook_id, state,
                            attempts, last_status, created_at, finished_at, o);
-- refused
SELECT * FROM webhook.notifications(page => 0);
SELECT * FROM webhook.notifications(page_size => 0);
SELECT * FROM webhook.notifications(page_size => 1001);
SELECT * FROM webhook.notifications(page => NULL);
SELECT * FROM webhook.notifications(sort_by => 'event_uid');
SELECT * FROM webhook.notifications(sort_by => 'created_at; DROP TABLE webhook.hook');
SELECT * FROM webhook.notifications(sort_dir => 'sideways');

--
-- redeliver: a new pending delivery of the same event to the same hook
--
SELECT webhook.redeliver(:d3) AS r3 \gset
SELECT event_id = :e3 AS same_event, hook_id = :ha AS same_hook, state, attempts,
       last_status, finished_at IS NULL AS unfinished, next_attempt_at <= now() AS due
  FROM webhook.delivery WHERE id = :r3;
SELECT state FROM webhook.delivery WHERE id = :d3;
-- one that has no row: its attempt names its event and hook
SELECT webhook.redeliver(:d9) AS r9 \gset
SELECT event_id = :e7 AS same_event, hook_id = :ha AS same_hook, state
  FROM webhook.delivery WHERE id = :r9;
-- refused
CREATE TEMP TABLE delivery_before AS SELECT * FROM webhook.delivery;
CREATE TEMP VIEW delivery_unchanged AS
SELECT (SELECT count(*) FROM webhook.delivery) = (SELECT count(*) FROM delivery_before)
       AND NOT EXISTS (SELECT * FROM webhook.delivery EXCEPT SELECT * FROM delivery_before)
       AS unchanged;
SELECT webhook.redeliver(999999);
SELECT webhook.redeliver(NULL);
SELECT webhook.redeliver(:d8);
SELECT * FROM delivery_unchanged;

--
-- replay: every event of the hook's tenant and types since the bound, from
-- the log, whether or not it was sent to the hook; events still queued for
-- the hook (pending, delivering, failed) are skipped
--
-- since 30 days for A: e2 (dead) is queued; e3 and e7 (redelivered above) and e4 (pending) are not
SELECT webhook.replay(:ha, now() - interval '30 days');
SELECT e.event_type, d.state, d.attempts
  FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id
 WHERE d.hook_id = :ha AND d.state = 'pending' ORDER BY d.id;
-- nothing left to queue since 30 days; since 60 days adds e1 and e5 (never
-- sent to it), not e6 (another tenant's)
SELECT webhook.replay(:ha, now() - interval '30 days');
SELECT webhook.replay(:ha, now() - interval '60 days');
-- B: f2 (cancelled) again; f3 (failed, will retry) and f1 (pending) are skipped
SELECT webhook.replay(:hb, now() - interval '60 days');
-- nothing since the future
SELECT webhook.replay(:hb, now() + interval '1 day');
-- refused
DELETE FROM delivery_before;
INSERT INTO delivery_before SELECT * FROM webhook.delivery;
SELECT webhook.replay(999999, now());
SELECT webhook.replay(NULL, now());
SELECT webhook.replay(:ha, NULL);
SELECT webhook.replay(:hc, now() - interval '60 days');
SELECT * FROM delivery_unchanged;

--
-- prune: finished deliveries older than the bound; never pending work.
-- Attempts and events go by whole slots, those whose rows are all older
-- than the bound, the events a delivery left needs kept (at the end)
--
SELECT webhook.prune(interval '-1 day');
SELECT webhook.prune(NULL);
-- the logs are rotated in READ COMMITTED only: a snapshot taken before a
-- slot's lock would miss the events committed meanwhile
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT webhook.prune('0');
ROLLBACK;
SELECT * FROM delivery_unchanged;
-- d1, d2, d3 and d6 are finished and older than a day; d8 is an hour old
SELECT webhook.prune(interval '1 day');
SELECT n.hook, e.event_type, d.state
  FROM webhook.delivery d JOIN webhook.event e ON e.id = d.event_id
  JOIN hook_names n ON n.id = d.hook_id
 ORDER BY d.id;
-- the attempts are all in the current slot, which is made the next only a
-- third of the bound after it became current: all kept, those of the
-- deliveries deleted too, but delivery_log shows those of deliveries left
SELECT count(*) AS attempts_left,
       bool_and(slot = webhook_internal.current_log_slot()) AS in_current_slot
  FROM webhook.attempt;
SELECT count(*) AS logged FROM webhook.delivery_log;
-- events go by whole slots too: e6, old and with no delivery at all, stays
-- while its slot is current
SELECT event_type, tenant FROM webhook.event ORDER BY id;
-- the default bound is webhook.retention (30 days): nothing more
SELECT webhook.prune();
SET webhook.retention = '30 minutes';
SELECT webhook.prune();
RESET webhook.retention;
SELECT count(*) AS finished_left FROM webhook.delivery
 WHERE state IN ('succeeded', 'dead', 'cancelled');
-- prune('0') makes the next slot current; the next call takes the end of
-- the attempts' slot (every attempt written to it is committed by then),
-- and the one after that empties it, those of the failed delivery waiting
-- for its retry too (it keeps its count and last error); one slot is
-- current
SELECT webhook.prune('0');
SELECT count(*) AS attempts_left,
       bool_and(slot <> webhook_internal.current_log_slot()) AS in_previous_slot
  FROM webhook.attempt;
SELECT webhook.prune('0');
SELECT count(*) AS attempts_left FROM webhook.attempt;
SELECT webhook.prune('0');
SELECT count(*) AS attempts_left FROM webhook.attempt;
-- its events went with it, e6 too, but those a delivery row names, which
-- were copied first (the same ids) to the slot current then, before this
-- call made the next one current
SELECT event_type, tenant, tableoid::regclass AS slot_table,
       id = ANY (SELECT d.event_id FROM webhook.delivery d) AS delivered
  FROM webhook.event ORDER BY id;
SELECT n.hook, d.state, d.attempts, d.last_error
  FROM webhook.delivery d JOIN hook_names n ON n.id = d.hook_id
 WHERE d.state = 'failed';
SELECT count(*) AS current_slots FROM webhook_internal.log_slot
 WHERE current_from IS NOT NULL AND current_until IS NULL;
-- A slot is emptied when its attempts all started before the bound: when
-- it stopped being current before it, or, of a slot of unknown contents,
-- when its rows say so.  The three slots after the current one, c: c+1
-- ended two days ago, c+2 twelve hours ago, c+3 unknown (rows written by
-- hand), each with an attempt of two and a half days ago; c+3 gets one of
-- an hour ago too, then the bound passes it
SELECT webhook_internal.current_log_slot() AS c \gset
UPDATE webhook_internal.log_slot
   SET current_from = now() - interval '3 days', current_until = now() - interval '2 days'
 WHERE slot = (:c + 1) % 4;
UPDATE webhook_internal.log_slot
   SET current_from = now() - interval '2 days', current_until = now() - interval '12 hours'
 WHERE slot = (:c + 2) % 4;
UPDATE webhook_internal.log_slot SET current_from = NULL, current_until = NULL
 WHERE slot = (:c + 3) % 4;
INSERT INTO webhook.attempt (delivery_id, attempt_no, started_at, url, slot)
SELECT 1, n, now() - interval '2 days 12 hours', 'https://shop.test/old', (:c + n) % 4
  FROM generate_series(1, 3) n
UNION ALL
SELECT 1, 4, now() - interval '1 hour', 'https://shop.test/new', (:c + 3) % 4;
CREATE TEMP VIEW slots_left AS
SELECT (a.slot - :c + 4) % 4 AS after_current, count(*) AS attempts
  FROM webhook.attempt a GROUP BY 1 ORDER BY 1;
SELECT webhook.prune('1 day');
SELECT * FROM slots_left;
SELECT webhook.prune('30 minutes');
SELECT * FROM slots_left;
TRUNCATE webhook.attempt;
-- The worker moves the events that must stay max_moved at a time
-- (rotate_logs(older_than, max_moved)), then empties the slot: five old
-- events in slot 0 (a statement's rows), each named by a failed delivery,
-- slot 0 ended two days ago; moved two at a time, the slot then emptied;
-- their deliveries stay (moving deletes from slot 0, whose trigger takes
-- a deleted event's deliveries)
SELECT webhook_internal.rotate_logs('1 day', 0);
UPDATE webhook_internal.log_slot
   SET current_from = now() - interval '3 days', current_until = now() - interval '2 days'
 WHERE slot = 0 AND slot <> webhook_internal.current_log_slot();
WITH e AS (
    INSERT INTO webhook.event (event_type, payload, created_at)
    SELECT 'MOVED', jsonb_build_object('n', g), now() - interval '2 days'
      FROM generate_series(1, 5) g RETURNING id
)
INSERT INTO webhook.delivery (event_id, hook_id, state, attempts, next_attempt_at)
SELECT e.id, :ha, 'failed', 1, now() + interval '1 hour' FROM e;
SELECT r.outcome, r.size FROM webhook_internal.rotate_logs('1 day', 2) r WHERE r.slot = 0;
SELECT r.outcome, r.size FROM webhook_internal.rotate_logs('1 day', 2) r WHERE r.slot = 0;
SELECT r.outcome FROM webhook_internal.rotate_logs('1 day', 2) r WHERE r.slot = 0;
SELECT count(*) AS moved, bool_and(e.tableoid <> 'webhook.event'::regclass) AS out_of_slot_0,
       count(d.id) AS with_their_delivery
  FROM webhook.event e LEFT JOIN webhook.delivery d ON d.event_id = e.id
 WHERE e.event_type = 'MOVED';
DELETE FROM webhook.delivery d USING webhook.event e
 WHERE e.id = d.event_id AND e.event_type = 'MOVED';

-- clean up
SELECT webhook.delete_transport(:shop), webhook.delete_transport(:erp);
DELETE FROM webhook.event;
SELECT count(*) FROM webhook.delivery;
