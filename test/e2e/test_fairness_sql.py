"""The fair-share tests again, with every claim made by the claim's SQL
statements (webhook.debug_sql_claims): between full looks the worker claims
its listed hooks' events with the claim of listed logs, whose policy is kept
in C (src/claim_policy.c), and every other claim with statements that keep
the same rules in SQL (HOOKS_READ and TAKE in src/queue.c).  Each way is
held to the same tests."""

import time
import unittest

import harness
import test_fairness


def setUpModule():
    test_fairness.setUpModule()
    test_fairness.cluster.set_setting('webhook.debug_sql_claims', 'on')


def tearDownModule():
    test_fairness.tearDownModule()


class FairShareBySqlTest(test_fairness.FairShareTest):
    """test_fairness.FairShareTest, every claim by statement."""

    def test_claims_are_made_by_statement(self):
        """The setting is in force: a claim by statement reads the hook's
        due deliveries (an index scan each), where the claim of listed logs
        reads none between full looks (at most four a second; 28 scans for
        these 400 events without the setting).  At most 4 in flight and 8
        held, the 400 events take 50 claims at least, each one scan or
        more."""
        cluster = test_fairness.cluster
        rx = test_fairness.rx
        tr = cluster.create_transport(base_url=rx.url(), tenant='sql_claims', max_in_flight=4)
        self.addCleanup(test_fairness.delete_tenant, 'sql_claims')
        et = harness.uniq('SQLCLAIM')
        cluster.create_hook(tr, [et], path='/sql_claims')
        scans = ("SELECT idx_scan FROM pg_stat_user_indexes"
                 " WHERE indexrelid = 'webhook.delivery_due_idx'::regclass")
        cluster.workers_went_round()
        before = int(cluster.one(scans))
        t0 = time.monotonic()
        cluster.psql("SELECT webhook.emit(%s, jsonb_build_object('n', g), tenant => 'sql_claims')"
                     "  FROM generate_series(1, 400) g" % harness.lit(et))
        rx.wait_requests(400, path='/sql_claims')
        took = time.monotonic() - t0
        # the worker's statistics reach the view once it has flushed them
        cluster.workers_went_round()
        harness.wait_until(lambda: int(cluster.one(scans)) - before >= 100, 10,
                           'due index scans of the claims',
                           detail=lambda: '%d scans over %.1f s' % (int(cluster.one(scans)) - before, took))
        harness.note('claims by statement: %d scans of the due index for 400 events over %.1f s'
                     % (int(cluster.one(scans)) - before, took))


if __name__ == '__main__':
    unittest.main()
