"""kill -9 in the middle of a stream of remote writes, many times: every acknowledged sample must
be there after a restart with its exact value, nothing that was never sent may appear, and a
request that was in flight is either wholly stored or wholly absent. Also: garbage appended to the
newest WAL segment while the server is down is truncated at start, not fatal."""

import os
import random
import struct
import sys
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata  # noqa: E402

THREADS = 3
SERIES = 20
STEPS_PER_REQUEST = 5
BASE_MS = 1_700_000_000_000
STEP_MS = 1000
STALE = 0x7FF0000000000002


def value(thread, series, step):
    # Every tenth step of series 0 is the staleness marker, to check its bits survive too; others
    # are floats with all their bits in use.
    if series == 0 and step % 10 == 3:
        return STALE
    return thread * 1e6 + series * 1000 + step * 1.0001 + 1 / 3


def fmt(v):
    if isinstance(v, int):
        return "NaN"
    return repr(v)  # shortest round-trip, as Prometheus formats (no exponent for these values)


class Writer(threading.Thread):
    def __init__(self, strata, thread_id, first_step):
        super().__init__(daemon=True)
        self.strata = strata
        self.tid = thread_id
        self.next_step = first_step
        self.acked_upto = first_step - 1  # last step of the last acknowledged request
        self.inflight = None              # (first, last) step of the request without an answer
        self.errors = []
        self.stop_flag = False

    def run(self):
        session = requests.Session()
        while not self.stop_flag:
            first, last = self.next_step, self.next_step + STEPS_PER_REQUEST - 1
            series = []
            for s in range(SERIES):
                labels = {"__name__": "crash_test", "thread": str(self.tid), "series": "%02d" % s}
                series.append((labels, [(BASE_MS + st * STEP_MS, value(self.tid, s, st))
                                        for st in range(first, last + 1)]))
            self.inflight = (first, last)
            try:
                r = self.strata.write(series, session=session, timeout=10)
            except requests.RequestException:
                return  # the server died: this request's fate is unknown
            if r.status_code != 204:
                self.errors.append("HTTP %d: %s" % (r.status_code, r.text))
                return
            self.acked_upto = last
            self.inflight = None
            self.next_step = last + 1


class CrashRecoveryTest(unittest.TestCase):
    def setUp(self):
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="crash")

    def tearDown(self):
        self.strata.cleanup()

    def stored(self, max_step):
        """{(thread, series): {step: value string}} read back through PromQL."""
        end = BASE_MS + (max_step + 10) * STEP_MS
        res = self.strata.raw_samples('crash_test', end, (max_step + 20) * STEP_MS // 1000)
        out = {}
        for key, samples in res.items():
            labels = dict(key)
            k = (int(labels["thread"]), int(labels["series"]))
            out[k] = {(t - BASE_MS) // STEP_MS: v for t, v in samples}
        return out

    def check(self, writers, max_step):
        stored = self.stored(max_step)
        next_steps = {}
        for w in writers:
            present_inflight = None
            for s in range(SERIES):
                got = stored.get((w.tid, s), {})
                # Every acknowledged sample, with its exact value (stale markers are not returned
                # by range selectors, as in Prometheus, so they must be absent, not wrong).
                for st in range(0, w.acked_upto + 1):
                    v = value(w.tid, s, st)
                    if isinstance(v, int):
                        self.assertFalse(st in got, "stale marker shown as a value")
                        continue
                    self.assertTrue(st in got, "acknowledged sample lost: thread %d series %d step %d"
                                    % (w.tid, s, st))
                    self.assertEqual(got[st], fmt(v), "value changed")
                extra = sorted(st for st in got if st > w.acked_upto)
                if w.inflight is None:
                    self.assertEqual(extra, [], "samples that were never acknowledged or sent")
                    continue
                first, last = w.inflight
                want = [st for st in range(first, last + 1)
                        if not isinstance(value(w.tid, s, st), int)]
                self.assertTrue(all(first <= st <= last for st in extra),
                                "samples outside the in-flight request: %s" % extra)
                if extra:
                    self.assertEqual(extra, want, "in-flight request partly stored")
                    for st in extra:
                        self.assertEqual(got[st], fmt(value(w.tid, s, st)))
                # All series of one request share its fate: one WAL record.
                this = bool(extra)
                if present_inflight is None:
                    present_inflight = this
                self.assertEqual(present_inflight, this, "in-flight request stored for some series only")
            nxt = w.acked_upto + 1
            if w.inflight is not None and present_inflight:
                nxt = w.inflight[1] + 1
            next_steps[w.tid] = nxt
        return next_steps

    def run_round(self, next_steps, delay):
        writers = [Writer(self.strata, t, next_steps.get(t, 0)) for t in range(THREADS)]
        for w in writers:
            w.start()
        time.sleep(delay)
        self.strata.kill9()
        for w in writers:
            w.stop_flag = True
            w.join(15)
        for w in writers:
            self.assertEqual(w.errors, [], "writes failed before the crash")
        return writers

    def test_kill9_during_remote_write(self):
        rnd = random.Random(1234)
        self.strata.start()
        next_steps = {}
        total_acked = 0
        for round_no in range(6):
            writers = self.run_round(next_steps, rnd.uniform(0.3, 1.5))
            if round_no == 4:
                self.append_garbage_to_wal()
            self.strata.start()
            max_step = max(max(w.acked_upto, (w.inflight or (0, 0))[1]) for w in writers)
            next_steps = self.check(writers, max_step)
            total_acked += sum(w.acked_upto + 1 for w in writers)
            self.assertTrue(all(w.acked_upto >= 0 for w in writers) or round_no > 0,
                            "nothing was acknowledged before the first crash")
        log = self.strata.log()
        self.assertIn("torn record", log, "the garbage in the WAL was not reported")
        self.strata.stop()
        print("crash rounds: 6, steps acknowledged: %d" % total_acked)

    def append_garbage_to_wal(self):
        wal = os.path.join(self.strata.data_dir, "wal")
        segs = sorted(f for f in os.listdir(wal) if f.isdigit())
        nonempty = [f for f in segs if os.path.getsize(os.path.join(wal, f)) > 0]
        with open(os.path.join(wal, nonempty[-1]), "ab") as f:
            f.write(struct.pack("<BI", 2, 5000) + os.urandom(200))


if __name__ == "__main__":
    unittest.main(verbosity=2)
