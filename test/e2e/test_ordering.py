"""Ordered delivery: hook.ordered ('hook', 'resource') and on_dead ('continue', 'stop')."""

import random
import time
import unittest

import harness
from harness import R, lit

cluster = rx = None
setUpModule, tearDownModule = harness.cluster_and_receiver(globals())

SEED = 20261123
# a hook's delivery rows: an ordered hook's events that wait, and failures
ROWS = "SELECT count(*) FROM webhook.delivery WHERE hook_id = %d"


def counters(reqs):
    """(data.n, accepted) of each request, in arrival order."""
    return [(r.json()['data']['n'], 200 <= r.response.status < 300) for r in reqs]


class OrderingTest(unittest.TestCase):
    maxDiff = None

    def respond(self, fn):
        """Answer requests with fn (see Receiver.respond) for this test only."""
        rx.respond(fn)
        self.addCleanup(rx.respond, None)

    def assert_in_order(self, seq, what):
        """seq: (n, accepted) in arrival order, for one hook or resource whose
        events are n = 1, 2, ...: each request carries the event after the
        last accepted one (a retry of it, or the next once it was accepted)."""
        last = 0
        for i, (n, ok) in enumerate(seq):
            self.assertEqual(n, last + 1, '%s: request %d carries event %d after event %d '
                             'was accepted: %r' % (what, i, n, last, seq))
            if ok:
                last = n
        return last

    def test_resource_order_with_random_failures(self):
        """The issue's test: 1,000 updates of 50 orders, in separate
        transactions, a receiver failing 10 % at random: each order's events
        arrive in commit order, none lost, orders in parallel."""
        path = '/ord-resource'
        n_orders, n_updates = 50, 1000
        cluster.psql('CREATE TABLE ord_orders (id int PRIMARY KEY, state text, n int)')
        cluster.psql('INSERT INTO ord_orders SELECT g, \'new\', 0 FROM generate_series(1, %d) g'
                     % n_orders)
        cluster.psql("SELECT webhook.watch('ord_orders', resource => 'ord_order', "
                     "events => '{UPDATE}')")
        hook = cluster.hook_on(rx.url(), path, event_type='ORD_ORDER_*', ordered='resource',
                               retry_schedule='{0.2s,0.2s,0.2s,0.2s,0.2s,0.2s,0.2s,0.2s}')
        rng = random.Random(SEED)
        ids = [rng.randint(1, n_orders) for _ in range(n_updates)]
        answers = random.Random(SEED + 1)
        # a short delay, so that orders are seen in flight together
        self.respond(lambda req: (R(500) if answers.random() < 0.1 else R(200, delay=0.01))
                     if req.path == path else None)

        started = time.monotonic()
        # one transaction per update: event ids follow the commits
        cluster.psql('DO $$ DECLARE i int; BEGIN FOREACH i IN ARRAY %s::int[] LOOP '
                     'UPDATE ord_orders SET n = n + 1 WHERE id = i; COMMIT; END LOOP; END $$'
                     % lit('{%s}' % ','.join(map(str, ids))))
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state = 'succeeded'" % hook.hook_id, str(n_updates), timeout=60)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 60)

        per_order = {}
        for r in rx.requests(path=path):
            per_order.setdefault(r.json()['data']['id'], []).append(r)
        expected = {i: ids.count(i) for i in set(ids)}
        self.assertEqual(set(per_order), set(expected))
        failures = 0
        for order_id, reqs in per_order.items():
            seq = counters(reqs)
            failures += sum(1 for _, ok in seq if not ok)
            self.assertEqual(self.assert_in_order(seq, 'order %d' % order_id),
                             expected[order_id], 'order %d: events lost' % order_id)
        self.assertGreater(failures, 0, 'the receiver failed no request')
        self.assertGreater(rx.max_in_flight[path], 1, 'orders were never sent in parallel')
        self.assertEqual(cluster.one("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                                     "AND state <> 'succeeded'" % hook.hook_id), '0')
        harness.note('ordered => resource: %d updates of %d orders, %d failed requests, '
                     'at most %d in flight, all delivered in %.1f s'
                     % (n_updates, n_orders, failures, rx.max_in_flight[path], elapsed))

    def test_hook_order_one_in_flight(self):
        """ordered => 'hook': one request at a time, and the second event waits
        while the first is retried; the deliveries that succeed at once
        leave no row."""
        path = '/ord-hook'
        rx.script(path, R(500, times=2), R(200, delay=0.05))
        hook = cluster.hook_on(rx.url(), path, ordered='hook',
                               retry_schedule='{0.3s,0.3s,0.3s}')
        n = 10
        # one event per transaction, committed in order
        cluster.psql('DO $$ BEGIN FOR i IN 1..%d LOOP '
                     "PERFORM webhook.emit(%s, jsonb_build_object('n', i)); "
                     'COMMIT; END LOOP; END $$' % (n, lit(hook.event_type)))
        reqs = rx.wait_requests(n + 2, path=path, timeout=30)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state = 'succeeded'" % hook.hook_id, str(n))
        seq = counters(reqs)
        self.assertEqual(seq[:3], [(1, False), (1, False), (1, True)])
        self.assertEqual(self.assert_in_order(seq, 'hook'), n)
        self.assertEqual(len(seq), n + 2)
        self.assertEqual(rx.max_in_flight[path], 1)
        # a delivery that succeeded at its first attempt leaves its attempt
        # alone, as one read from the log does: the retried one keeps its row
        self.assertEqual(cluster.psql(
            "SELECT state, attempts FROM webhook.delivery WHERE hook_id = %d" % hook.hook_id),
            [['succeeded', '3']])
        self.assertEqual(cluster.one(
            "SELECT count(*) FROM webhook.delivery_log WHERE hook_id = %d" % hook.hook_id),
            str(n + 2))

    def test_null_resource_ids_are_one_group(self):
        """ordered => 'resource': events without a resource id are ordered
        among themselves, one at a time."""
        path = '/ord-null-resource'
        rx.script(path, R(500), R(200, delay=0.05))
        hook = cluster.hook_on(rx.url(), path, ordered='resource',
                               retry_schedule='{0.3s,0.3s}')
        n = 6
        cluster.psql('DO $$ BEGIN FOR i IN 1..%d LOOP '
                     "PERFORM webhook.emit(%s, jsonb_build_object('n', i)); "
                     'COMMIT; END LOOP; END $$' % (n, lit(hook.event_type)))
        reqs = rx.wait_requests(n + 1, path=path, timeout=30)
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state = 'succeeded'" % hook.hook_id, str(n))
        seq = counters(reqs)
        self.assertEqual(self.assert_in_order(seq, 'null resource'), n)
        self.assertEqual(rx.max_in_flight[path], 1)

    def test_earlier_event_waits_for_the_one_in_flight(self):
        """An earlier event that turns up while a later one is in flight (a
        redeliver) is its group's earliest, but waits: one in flight.  The
        group: the hook; one resource; the events with no resource."""
        for ordered, resource_id in (('hook', None), ('resource', '7'), ('resource', None)):
            with self.subTest(ordered=ordered, resource_id=resource_id):
                path = '/ord-late-earlier-%s-%s' % (ordered, resource_id)
                self.respond(lambda req, path=path: R(200, delay=1.5) if req.path == path
                             and req.json()['data']['n'] == 2 else None)
                hook = cluster.hook_on(rx.url(), path, ordered=ordered)
                uids = [r[0] for r in cluster.psql(
                    "SELECT webhook.emit(%s, jsonb_build_object('n', g), resource => 'order',"
                    " resource_id => %s) FROM generate_series(1, 2) g"
                    % (lit(hook.event_type), lit(resource_id)))]
                cluster.wait_state(uids[0], 'succeeded')
                rx.wait_requests(2, path=path)
                cluster.call('redeliver', delivery_id=cluster.delivery(uids[0])['id'])
                reqs = rx.wait_requests(3, path=path)
                self.assertEqual([n for n, _ in counters(reqs)], [1, 2, 1])
                self.assertEqual(rx.max_in_flight[path], 1)
                self.assertGreaterEqual(reqs[2].arrived - reqs[1].arrived, 1.4)

    def dead_first(self, path, on_dead):
        """A hook ordered by hook with one retry, whose receiver fails event 1
        always; events 1..4 queued in one transaction."""
        self.respond(lambda req: R(500) if req.path == path
                     and req.json()['data']['n'] == 1 else None)
        hook = cluster.hook_on(rx.url(), path, ordered='hook', on_dead=on_dead,
                               retry_schedule='{0.2s}')
        uids = [r[0] for r in cluster.psql(
            "SELECT webhook.emit(%s, jsonb_build_object('n', g)) "
            "FROM generate_series(1, 4) g" % lit(hook.event_type))]
        return hook, uids

    def test_on_dead_continue(self):
        path = '/ord-dead-continue'
        hook, uids = self.dead_first(path, 'continue')
        reqs = rx.wait_requests(5, path=path)
        for u in uids[1:]:
            cluster.wait_state(u, 'succeeded')
        self.assertEqual(cluster.delivery(uids[0])['state'], 'dead')
        self.assertEqual(counters(reqs)[:5],
                         [(1, False), (1, False), (2, True), (3, True), (4, True)])
        self.assertEqual(cluster.one('SELECT active FROM webhook.hook WHERE id = %d'
                                     % hook.hook_id), 't')

    def test_on_dead_stop_then_resume(self):
        path = '/ord-dead-stop'
        hook, uids = self.dead_first(path, 'stop')
        cluster.wait_state(uids[0], 'dead')
        dead = cluster.delivery(uids[0])
        # paused: still active, so a new event still goes to it, and waits,
        # unread by its cursor
        active, reason = cluster.psql('SELECT active, disabled_reason FROM webhook.hook '
                                      'WHERE id = %d' % hook.hook_id)[0]
        self.assertEqual(active, 't')
        self.assertIn('delivery %d died (HTTP 500)' % dead['id'], reason)
        self.assertIn('stop', reason)
        harness.note('on_dead stop: disabled_reason %r' % reason)
        uids.append(cluster.emit(hook.event_type, {'n': 5}))
        # a marker event emitted after it goes out, and the workers hold
        # nothing: the stopped hook's would have been claimed by then
        cluster.worker_passed(rx)
        self.assertEqual(counters(rx.requests(path=path)), [(1, False), (1, False)])
        # events 2 to 4 were read behind the failing one, and wait as rows
        self.assertEqual([cluster.delivery(u)['state'] for u in uids[1:4]], ['pending'] * 3)
        self.assertIsNone(cluster.delivery(uids[4]))

        # the receiver is fixed: resume, and send the dead event again first
        rx.respond(None)
        cluster.psql('BEGIN; SELECT webhook.update_hook(%d, active => true); '
                     'SELECT webhook.redeliver(%d); COMMIT' % (hook.hook_id, dead['id']))
        reqs = rx.wait_requests(7, path=path)
        for u in uids[1:]:
            cluster.wait_state(u, 'succeeded')
        self.assertEqual(counters(reqs), [(1, False), (1, False), (1, True), (2, True),
                                          (3, True), (4, True), (5, True)])
        self.assertEqual(cluster.psql('SELECT active, disabled_reason FROM webhook.hook '
                                      'WHERE id = %d' % hook.hook_id), [['t', None]])

    def test_a_hook_made_ordered_by_resource_groups_what_waits(self):
        """A hook's retries made while it was unordered (read from the log,
        failed) carry no resource; made ordered by resource, they get their
        event's, and go in order with what comes next."""
        path = '/ord-made-resource'
        rx.script(path, R(500), R(500))
        hook = cluster.hook_on(rx.url(), path, retry_schedule='{1h}')
        uids = [cluster.one("SELECT webhook.emit(%s, '{\"n\": %d}', resource => 'order',"
                            " resource_id => %s)" % (lit(hook.event_type), n, lit(str(n))))
                for n in (1, 2)]
        for uid in uids:
            cluster.wait_state(uid, 'failed')
        waiting = "SELECT resource_key FROM webhook.delivery WHERE hook_id = %d ORDER BY event_id"
        self.assertEqual(cluster.psql(waiting % hook.hook_id), [[None], [None]])
        cluster.call('update_hook', id=hook.hook_id, ordered='resource')
        self.assertEqual(cluster.psql(waiting % hook.hook_id), [['1'], ['2']])
        # the next event of order 1 waits behind its retry
        later = cluster.one("SELECT webhook.emit(%s, '{\"n\": 3}', resource => 'order',"
                            " resource_id => '1')" % lit(hook.event_type))
        # (a row made at the claim that reads it: the worker may pace its
        # ordered hooks' claims, while the marker's go on)
        cluster.wait_state(later, 'pending')
        cluster.worker_passed(rx)
        self.assertEqual(cluster.delivery(later)['state'], 'pending')
        self.assertEqual(rx.count(path), 2)

    def test_a_hook_ordered_whole_is_one_group(self):
        """A hook ordered whole keeps its deliveries in one group, of no
        resource: the writer gives them no resource_key, and a hook made so
        from ordered by resource loses those its waiting ones had; then
        every event, whatever its resource, waits behind the retry of the
        earliest."""
        path = '/ord-whole'
        rx.script(path, R(500), R(200))
        hook = cluster.hook_on(rx.url(), path, ordered='resource', retry_schedule='{1h}')
        emit = ("SELECT webhook.emit(%s, '{\"n\": %d}', resource => 'order', resource_id => %s)")
        first = cluster.one(emit % (lit(hook.event_type), 1, lit('1')))
        cluster.wait_state(first, 'failed')
        keys = "SELECT resource_key FROM webhook.delivery WHERE hook_id = %d ORDER BY event_id"
        self.assertEqual(cluster.psql(keys % hook.hook_id), [['1']])
        cluster.call('update_hook', id=hook.hook_id, ordered='hook')
        self.assertEqual(cluster.psql(keys % hook.hook_id), [[None]])
        later = [cluster.one(emit % (lit(hook.event_type), 2, lit('2'))),
                 cluster.one(emit % (lit(hook.event_type), 3, 'NULL'))]
        # read from the log behind the retry, they wait as rows of its group
        # (made at the claim that reads them: the worker may pace its ordered
        # hooks' claims, while the marker's go on)
        cluster.wait_for(ROWS % hook.hook_id, '3')
        cluster.worker_passed(rx)
        self.assertEqual(cluster.psql(keys % hook.hook_id), [[None], [None], [None]])
        self.assertEqual([cluster.delivery(u)['state'] for u in later], ['pending', 'pending'])
        self.assertEqual(rx.count(path), 1)

    def test_a_long_resource_id_never_fails_the_write(self):
        """A resource id longer than an index entry may be (9,600
        characters of hex, which hardly compress): emit() goes through, the
        first event's failure and the two that wait behind it are rows
        keyed by its first 200 characters, and the events go in order, one
        at a time."""
        path = '/ord-long-id'
        rx.script(path, R(500), R(200))
        hook = cluster.hook_on(rx.url(), path, ordered='resource', retry_schedule='{3s}')
        long_id = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i)"
        uids = [r[0] for r in cluster.psql(
            "SELECT webhook.emit(%s, jsonb_build_object('n', g), resource => 'order',"
            " resource_id => %s) FROM generate_series(1, 3) g"
            % (lit(hook.event_type), long_id))]
        cluster.wait_state(uids[0], 'failed')
        # the two behind it wait as rows until its retry (3 s) succeeds
        cluster.wait_for("SELECT string_agg(length(e.resource_id) || ' ' || length(d.resource_key),"
                         " ', ' ORDER BY d.event_id) FROM webhook.delivery d"
                         " JOIN webhook.event e ON e.id = d.event_id WHERE d.hook_id = %d"
                         % hook.hook_id, '9600 200, 9600 200, 9600 200')
        reqs = rx.wait_requests(4, path=path)
        self.assertEqual(counters(reqs), [(1, False), (1, True), (2, True), (3, True)])
        self.assertEqual(rx.max_in_flight[path], 1)

    def test_an_earlier_event_of_a_later_transaction_goes_first(self):
        """Event order is id order, for one row commit order; the log is
        read in order of transaction ids.  A transaction x that took its id
        first, then wrote a resource's event after another, y, had written
        the same resource's and committed, is read first: y's event, the
        earlier, still goes first (both committed while the hook was not
        reading: it was inactive).  With other resources' events between
        them, from transactions between x's and y's, y's is read by a later
        claim than x's (a transport of one request in flight: two read a
        claim), and x's still waits for it.  The same when x is REPEATABLE
        READ, its snapshot older than y, and writes through the INSERT
        statement (a trigger an admin put on the log's current table):
        the next transaction id it stores is the server's when it writes,
        not its snapshot's."""
        for fillers, statement in ((0, False), (3, False), (0, True)):
            with self.subTest(fillers=fillers, statement=statement):
                path = '/ord-late-txid-%d-%s' % (fillers, statement)
                hook = cluster.hook_on(rx.url(), path, transport={'max_in_flight': 1},
                                       ordered='resource', active=False)
                emit = ("SELECT webhook.emit(%s, '{\"n\": %%d}', resource => 'order',"
                        " resource_id => '%%s')" % lit(hook.event_type))
                isolation = 'READ COMMITTED'
                if statement:
                    isolation = 'REPEATABLE READ'
                    self.statement_path()
                x = harness.Session(cluster)
                self.addCleanup(x.close)
                name = 'ord_late_txid_%d_%s' % (fillers, statement)
                x.send("SET application_name = '%s'; BEGIN ISOLATION LEVEL %s;"
                       " SELECT pg_current_xact_id();" % (name, isolation))
                cluster.wait_for("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                                 " '%s' AND backend_xid IS NOT NULL" % name, '1')
                for n in range(fillers):
                    cluster.psql(emit % (100 + n, 'other'))
                cluster.psql(emit % (1, '7'))
                x.send(emit % (2, '7') + '; COMMIT;')
                events = ("SELECT count(*) FROM webhook.event WHERE event_type = %s"
                          % lit(hook.event_type))
                cluster.wait_for(events, str(2 + fillers))
                # the later event's transaction id is the lower
                self.assertEqual(cluster.one(
                    "SELECT (array_agg(txid ORDER BY id))[1] > (array_agg(txid ORDER BY id))[2]"
                    "  FROM webhook.event WHERE event_type = %s AND resource_id = '7'"
                    % lit(hook.event_type)), 't')
                cluster.call('update_hook', id=hook.hook_id, active=True)
                reqs = rx.wait_requests(2 + fillers, path=path)
                self.assertEqual([r for r in counters(reqs) if r[0] < 100],
                                 [(1, True), (2, True)])

    def statement_path(self):
        """Until the test ends, the writers append events with their INSERT
        statement: a statement trigger on the log's current table, which
        the short way does not honour (enqueue.c)."""
        table = cluster.one("SELECT CASE s WHEN 0 THEN 'webhook.event'"
                            " ELSE 'webhook_internal.event_' || s END"
                            " FROM webhook_internal.current_log_slot() s")
        cluster.psql("CREATE FUNCTION public.ord_statement_path() RETURNS trigger"
                     " LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';"
                     " CREATE TRIGGER ord_statement_path AFTER INSERT ON %s"
                     " FOR EACH STATEMENT EXECUTE FUNCTION public.ord_statement_path()" % table)
        self.addCleanup(cluster.psql, "DROP FUNCTION public.ord_statement_path() CASCADE")

    def test_a_hook_made_ordered_keeps_the_order_of_what_it_had_not_read(self):
        """A hook made ordered reads what it had not read yet in order too:
        its backlog, written while it was unordered (and inactive), goes one
        at a time, the first answered slowly."""
        path = '/ord-made-backlog'
        self.respond(lambda req: R(200, delay=0.5) if req.path == path
                     and req.json()['data']['n'] == 1 else None)
        hook = cluster.hook_on(rx.url(), path, active=False)
        cluster.psql("SELECT webhook.emit(%s, jsonb_build_object('n', g), resource => 'order',"
                     " resource_id => '7') FROM generate_series(1, 3) g" % lit(hook.event_type))
        cluster.call('update_hook', id=hook.hook_id, ordered='resource', active=True)
        reqs = rx.wait_requests(3, path=path)
        self.assertEqual(counters(reqs), [(1, True), (2, True), (3, True)])
        self.assertEqual(rx.max_in_flight[path], 1)

    def test_a_slow_answer_holds_up_its_resource_only(self):
        """A request of a hook ordered by resource that is answered slowly
        holds up its resource's next event, not the hook's other
        resources: once it has been in flight a while, that next event
        waits as a row behind it, and the hook's read goes on."""
        path = '/ord-slow-one'
        self.respond(lambda req: R(200, delay=6) if req.path == path
                     and req.json()['data']['n'] == 1 else None)
        hook = cluster.hook_on(rx.url(), path, ordered='resource')
        # one transaction: order 1's two events first in the log, then order 2's
        cluster.psql("SELECT webhook.emit(%s, jsonb_build_object('n', v.n), resource => 'order',"
                     " resource_id => v.r)"
                     "  FROM (VALUES (1, '1'), (2, '1'), (3, '2'), (4, '2')) v(n, r) ORDER BY v.n"
                     % lit(hook.event_type))
        reqs = rx.wait_requests(4, path=path, timeout=30)
        self.assertEqual([n for n, _ in counters(reqs)], [1, 3, 4, 2])
        arrived = {r.json()['data']['n']: r.arrived for r in reqs}
        # order 2's while order 1's first is answered (6 s), its second after
        self.assertLess(arrived[4] - arrived[1], 5)
        self.assertGreaterEqual(arrived[2] - arrived[1], 5.5)

    def test_unordered_hook_not_held_up(self):
        """An unordered hook on the transport of an ordered one being retried
        goes on at once."""
        tid = cluster.create_transport(base_url=rx.url())
        ordered_type, unordered_type = harness.uniq('EV'), harness.uniq('EV')
        rx.script('/ord-blocked', R(500))
        ordered = cluster.create_hook(tid, [ordered_type], path='/ord-blocked',
                                      ordered='hook', retry_schedule='{1s,1s,1s,1s}')
        cluster.create_hook(tid, [unordered_type], path='/ord-free')
        cluster.emit_many(ordered_type, 3)
        rx.wait_requests(1, path='/ord-blocked')
        cluster.wait_for("SELECT count(*) FROM webhook.deliveries WHERE hook_id = %d "
                         "AND state = 'failed'" % ordered, '1')
        started = time.monotonic()
        cluster.emit_many(unordered_type, 20)
        rx.wait_requests(20, path='/ord-free', timeout=15)
        harness.note('unordered hook beside a retried ordered one: 20 delivered in %.2f s'
                     % (time.monotonic() - started))
        # the ordered hook is still on its first event
        self.assertEqual({r.json()['data']['n'] for r in rx.requests(path='/ord-blocked')}, {1})


if __name__ == '__main__':
    unittest.main()
