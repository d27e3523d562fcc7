"""kill -9 in the middle of a stream of remote writes, many times over, with the default
--wal-fsync=always: after every restart each acknowledged sample must be there with its exact
value, nothing that was never sent may appear, and each sample of a request that was in flight
at the kill is either there with its exact value or absent (and stays so). Two of the rounds
also append garbage to the newest WAL segment while the server is down: it must start anyway,
log the truncation, and keep every acknowledged sample.

STRATA_CRASH_SEED=<n> replays a run (the seed is printed)."""

import math
import os
import random
import struct
import sys
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import STALE_NAN, Strata  # noqa: E402

THREADS = 4
SERIES = 20                  # per thread, distinct by the thread label
STEPS_PER_REQUEST = (3, 10)  # 60 to 200 samples per request
BASE_MS = 1_700_000_000_000
STEP_MS = 1000
DELAYS = [0.05, 0.25, 0.5, 0.8, 1.2, 1.7, 2.5]  # seconds from (re)start to kill -9, shuffled
GARBAGE_RANDOM_ROUND = 2     # pure random bytes appended to the newest segment
GARBAGE_RECORD_ROUND = 5     # a plausible record header followed by a short payload


def value(thread, series, step):
    """Every sample's value is distinct, uses all mantissa bits, and some are special."""
    if series == 0 and step % 10 == 3:
        return STALE_NAN  # stored, never shown by a range selector
    if series == 1 and step % 7 == 2:
        return -0.0
    sign = -1.0 if (series + step) % 5 == 0 else 1.0
    return sign * (thread * 1e6 + series * 1000 + step * 1.0001 + 1 / 3)


def bits(v):
    if isinstance(v, int):
        return v
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def parsed_bits(s):
    v = float(s.replace("Inf", "inf"))
    return "nan" if math.isnan(v) else bits(v)


def want_bits(v):
    return "nan" if isinstance(v, int) or math.isnan(v) else bits(v)


class Writer(threading.Thread):
    """Streams requests for one thread's series, one at a time, and records their fate."""

    def __init__(self, strata, thread_id, first_step, rnd):
        super().__init__(daemon=True)
        self.strata = strata
        self.tid = thread_id
        self.next_step = first_step
        self.rnd = rnd
        self.acked = []          # (first, last) of requests answered 204
        self.inflight = None     # (first, last) of the request without an answer
        self.errors = []
        self.stop_flag = False

    def run(self):
        session = requests.Session()
        try:
            while not self.stop_flag:
                first = self.next_step
                last = first + self.rnd.randint(*STEPS_PER_REQUEST) - 1
                series = []
                for s in range(SERIES):
                    labels = {"__name__": "crash_test", "thread": str(self.tid), "series": "%02d" % s}
                    series.append((labels, [(BASE_MS + st * STEP_MS, value(self.tid, s, st))
                                            for st in range(first, last + 1)]))
                self.inflight = (first, last)
                self.next_step = last + 1  # the stream goes on past this request whatever its fate
                try:
                    r = self.strata.write(series, session=session, timeout=60)
                except requests.RequestException:
                    return  # the server died: this request's fate is unknown
                if r.status_code != 204:
                    self.errors.append("HTTP %d: %s" % (r.status_code, r.text[:500]))
                    return
                self.acked.append((first, last))
                self.inflight = None
        finally:
            session.close()


class CrashRecoveryTest(unittest.TestCase):
    def setUp(self):
        seed = int(os.environ.get("STRATA_CRASH_SEED", random.randrange(1 << 30)))
        print("STRATA_CRASH_SEED=%d" % seed, flush=True)
        self.rnd = random.Random(seed)
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="crash")
        self.addCleanup(self.strata.cleanup)
        # The model: for each (thread, series), step -> value of every sample that must be there;
        # steps sent but known absent must stay absent.
        self.present = {(t, s): {} for t in range(THREADS) for s in range(SERIES)}
        self.next_steps = {t: 0 for t in range(THREADS)}
        self.max_step = 0
        self.stats = {"rounds": 0, "acked_requests": 0, "inflight_at_kill": 0, "inflight_stored": 0,
                      "inflight_lost": 0, "inflight_partial": 0, "inflight_partial_series": 0,
                      "samples_checked": 0}

    # ---- reading back ------------------------------------------------------------------------

    def stored(self, thread):
        """{series: {step: value string}} for one thread, through a range selector at the end of
        everything sent, so that raw samples come back."""
        end = BASE_MS + (self.max_step + 1) * STEP_MS
        range_s = (self.max_step + 30) * STEP_MS // 1000
        res = self.strata.raw_samples('crash_test{thread="%d"}' % thread, end, range_s)
        out = {}
        for key, samples in res.items():
            labels = dict(key)
            self.assertEqual(set(labels), {"__name__", "thread", "series"}, "unexpected labels %s" % labels)
            s = int(labels["series"])
            self.assertTrue(0 <= s < SERIES, "a series that was never sent: %s" % labels)
            steps = {}
            for t, v in samples:
                self.assertEqual((t - BASE_MS) % STEP_MS, 0, "a timestamp that was never sent: %s %d" % (labels, t))
                steps[(t - BASE_MS) // STEP_MS] = v
            out[s] = steps
        return out

    def check(self, writers, what):
        """Compares the server with the model, every thread; resolves the fate of each request
        that was in flight at the kill."""
        by_tid = {w.tid: w for w in writers}
        for w in writers:
            for first, last in w.acked:
                for s in range(SERIES):
                    for st in range(first, last + 1):
                        self.present[(w.tid, s)][st] = value(w.tid, s, st)
            self.stats["acked_requests"] += len(w.acked)
        bad = []
        for tid in range(THREADS):
            w = by_tid.get(tid)
            got_all = self.stored(tid)
            inflight = set(range(w.inflight[0], w.inflight[1] + 1)) if w and w.inflight else set()
            stored_series = 0
            for s in range(SERIES):
                got = got_all.get(s, {})
                want = self.present[(tid, s)]
                for st, v in want.items():
                    self.stats["samples_checked"] += 1
                    if isinstance(v, int):
                        if st in got:
                            bad.append("thread %d series %d step %d: the staleness marker came back as %r"
                                       % (tid, s, st, got[st]))
                    elif st not in got:
                        bad.append("thread %d series %d step %d: acknowledged sample lost" % (tid, s, st))
                    elif parsed_bits(got[st]) != want_bits(v):
                        bad.append("thread %d series %d step %d: value %r, sent %r" % (tid, s, st, got[st], v))
                found = 0
                for st, g in sorted(got.items()):
                    if st in want:
                        continue
                    if st not in inflight:
                        bad.append("thread %d series %d step %d: sample %r was never acknowledged%s"
                                   % (tid, s, st, g, "" if st < self.next_steps[tid] else " nor sent"))
                        continue
                    v = value(tid, s, st)
                    if isinstance(v, int) or parsed_bits(g) != want_bits(v):
                        bad.append("thread %d series %d step %d (in flight): value %r, sent %r"
                                   % (tid, s, st, g, v))
                        continue
                    want[st] = v  # there now: it must stay
                    found += 1
                if inflight:
                    shown = sum(1 for st in inflight if not isinstance(value(tid, s, st), int))
                    stored_series += found > 0
                    if 0 < found < shown:
                        self.stats["inflight_partial_series"] += 1
                # Steps of the in-flight request that are absent now are lost for good: they are
                # not in the model, so a later appearance is reported.
            if inflight:
                self.stats["inflight_at_kill"] += 1
                key = ("inflight_stored" if stored_series == SERIES else
                       "inflight_lost" if stored_series == 0 else "inflight_partial")
                self.stats[key] += 1
        if bad:
            self.fail("%s: %d problems (first 30):\n%s\nstrata log tail:\n%s"
                      % (what, len(bad), "\n".join(bad[:30]), self.strata.log()[-3000:]))

    # ---- the rounds --------------------------------------------------------------------------

    def run_round(self, delay):
        writers = [Writer(self.strata, t, self.next_steps[t], random.Random(self.rnd.random()))
                   for t in range(THREADS)]
        try:
            for w in writers:
                w.start()
            time.sleep(delay)
            in_flight_at_kill = sum(1 for w in writers if w.inflight)
            self.strata.kill9()
        finally:
            for w in writers:
                w.stop_flag = True
            for w in writers:
                w.join(90)
                self.assertFalse(w.is_alive(), "a writer thread did not end")
        for w in writers:
            self.assertEqual(w.errors, [], "writes failed before the crash (thread %d)" % w.tid)
            self.next_steps[w.tid] = w.next_step
            self.max_step = max(self.max_step, w.next_step)
        self.stats["rounds"] += 1
        return writers, in_flight_at_kill

    def newest_segment(self):
        wal = os.path.join(self.strata.data_dir, "wal")
        segs = sorted((f for f in os.listdir(wal) if f.isdigit()), key=int)
        self.assertTrue(segs, "no WAL segment in %s" % wal)
        return os.path.join(wal, segs[-1])

    def append_garbage(self, kind):
        path = self.newest_segment()
        size = os.path.getsize(path)
        with open(path, "ab") as f:
            if kind == "random":
                f.write(os.urandom(self.rnd.randint(1, 4096)))
            else:
                # type=samples, a length past the end, a checksum, then a short payload: what a
                # write cut off by a power loss would leave.
                f.write(struct.pack("<BII", 2, 5000, self.rnd.getrandbits(32)) + os.urandom(200))
        return path, size

    def torn_tails_metric(self):
        text = requests.get(self.strata.url + "/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("strata_wal_torn_tails_total "):
                return float(line.split()[1])
        self.fail("strata_wal_torn_tails_total is not in /metrics")

    def test_kill9_during_remote_write(self):
        started = time.time()
        self.strata.start()
        delays = list(DELAYS)
        self.rnd.shuffle(delays)
        for round_no, delay in enumerate(delays):
            writers, inflight = self.run_round(delay)
            garbage = None
            if round_no == GARBAGE_RANDOM_ROUND:
                garbage = self.append_garbage("random")
            elif round_no == GARBAGE_RECORD_ROUND:
                garbage = self.append_garbage("record")
            log_from = self.strata.log_size()
            self.strata.start()
            if garbage:
                path, size = garbage
                new_log = self.strata.log()[log_from:]
                self.assertRegex(new_log, r"(?i)truncat", "the truncated WAL tail was not logged:\n" + new_log)
                self.assertIn(os.path.basename(path), new_log, "the log does not name the segment")
                self.assertLessEqual(os.path.getsize(path), size, "the garbage was not truncated away")
                self.assertGreaterEqual(self.torn_tails_metric(), 1)
            self.check(writers, "round %d (kill after %.2f s%s)" % (
                round_no, delay, ", garbage in the WAL" if garbage else ""))
            print("round %d: kill after %.2fs, %d writers in flight, %d requests acknowledged%s"
                  % (round_no, delay, inflight, sum(len(w.acked) for w in writers),
                     ", garbage appended" if garbage else ""), flush=True)
        # A clean stop and start keeps it all too, and the stream can go on.
        self.assertEqual(self.strata.stop(), 0, "strata did not exit cleanly on SIGTERM")
        self.strata.start()
        self.check([], "after a clean restart")
        r = self.strata.write([({"__name__": "crash_test", "thread": "0", "series": "00"},
                                [(BASE_MS + self.max_step * STEP_MS, 1.0)])])
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.strata.stop(), 0)
        self.assertGreater(self.stats["acked_requests"], len(DELAYS), "too few writes were acknowledged")
        self.assertGreater(self.stats["inflight_at_kill"], 0, "no request was ever in flight at a kill")
        print("stats: %s; %.1f s" % (self.stats, time.time() - started), flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
