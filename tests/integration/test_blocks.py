"""Blocks: Prometheus-compatible in both directions, checked with Debian's promtool, and the
head -> block flush with its crash-safe protocol.

- promtool -> Strata: `promtool tsdb create-blocks-from openmetrics` writes blocks; Strata opens
  that directory and serves exactly those samples (query, series, labels).
- Strata -> promtool: samples written over remote write, flushed with
  POST /api/v1/admin/tsdb/flush; `promtool tsdb list` and `analyze` read the blocks and
  `promtool tsdb dump` gives back exactly the samples written.
- Head and blocks together: writes after a flush land in the head, queries merge both, a restart
  keeps everything once (the WAL replays only what is not in blocks).
- Crashes: the process is killed (SIGKILL, from inside, via STRATA_CRASH_POINT) at every step of
  the flush protocol; after a restart every acknowledged sample is there exactly once, and a
  second flush and restart keep it so.
"""

import glob
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, TMP_BASE  # noqa: E402

PROMTOOL = "/usr/bin/promtool"
HOUR = 3600 * 1000
BASE = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR)  # a block boundary
CRASH_POINTS = ["flush-snapshot", "block-files-written", "block-synced", "block-renamed",
                "flush-blocks-durable", "flush-head-truncated", "flush-wal-checkpointed"]


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def make_series(seed, n_series, start, hours, step_ms):
    rnd = random.Random(seed)
    out = []
    for i in range(n_series):
        labels = {"__name__": "blk_metric_%d" % (i % 3), "instance": "host-%02d" % i, "job": "blocks"}
        samples = []
        t = start
        while t < start + hours * HOUR:
            samples.append((t, rnd.choice([rnd.uniform(-1e6, 1e6), float(rnd.randint(0, 1000)),
                                           rnd.random() / 3])))
            t += step_ms
        out.append((labels, samples))
    return out


def key_of(labels):
    return tuple(sorted(labels.items()))


def fetch_all(srv, series, end_ms, range_ms):
    """Every sample of the test's series from Strata, through a range selector."""
    got = {}
    for name in sorted({s[0]["__name__"] for s in series}):
        raw = srv.raw_samples('%s{job="blocks"}' % name, end_ms, range_ms // 1000)
        for k, v in raw.items():
            got[k] = [(t, bits(float(x))) for t, x in v]
    return got


def expected_map(series, end_ms, range_ms):
    want = {}
    for labels, samples in series:
        s = [(t, bits(v)) for t, v in samples if end_ms - range_ms < t <= end_ms]
        if s:
            want.setdefault(key_of(labels), []).extend(s)
    for k in want:
        want[k].sort()
    return want


def write_all(srv, series, chunk=100):
    """Writes in time order across series, as scrapes arrive (so automatic flushes cut every
    series at the same point)."""
    longest = max(len(s[1]) for s in series)
    for i in range(0, longest, chunk):
        batch = [(labels, samples[i:i + chunk]) for labels, samples in series if samples[i:i + chunk]]
        r = srv.write(batch)
        assert r.status_code == 204, (r.status_code, r.text)


def write_all_lenient(srv, series, chunk=100):
    """As write_all, for re-sending after a crash: samples already stored come back as
    duplicates (accepted, not stored twice), older ones as out of order (400): both are fine."""
    longest = max(len(s[1]) for s in series)
    for i in range(0, longest, chunk):
        batch = [(labels, samples[i:i + chunk]) for labels, samples in series if samples[i:i + chunk]]
        r = srv.write(batch)
        assert r.status_code in (204, 400), (r.status_code, r.text)


def block_dirs(data_dir):
    return sorted(d for d in glob.glob(os.path.join(data_dir, "*"))
                  if os.path.isdir(d) and len(os.path.basename(d)) == 26)


class BlocksTest(unittest.TestCase):
    def setUp(self):
        os.makedirs(TMP_BASE, exist_ok=True)
        self.servers = []
        self.dirs = []

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def server(self, data_dir=None, args=()):
        s = Strata(data_dir=data_dir, extra_args=["--self-scrape-interval", "0"] + list(args))
        self.servers.append(s)
        return s

    def tmpdir(self, name):
        d = tempfile.mkdtemp(prefix=name + "-", dir=TMP_BASE)
        self.dirs.append(d)
        return d

    def assert_same(self, got, want):
        self.assertEqual(sorted(got.keys()), sorted(want.keys()))
        for k in want:
            self.assertEqual(len(got[k]), len(want[k]), k)
            self.assertEqual(got[k], want[k], k)

    # ---- promtool -> Strata ------------------------------------------------------------------

    def test_reads_promtool_blocks(self):
        series = make_series(1, 6, BASE, 5, 60_000)
        om = self.tmpdir("om")
        path = os.path.join(om, "in.om")
        with open(path, "w") as f:
            for name in sorted({s[0]["__name__"] for s in series}):
                f.write("# TYPE %s gauge\n" % name)
                for labels, samples in series:
                    if labels["__name__"] != name:
                        continue
                    ls = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()) if k != "__name__")
                    for t, v in samples:
                        f.write("%s{%s} %r %d.%03d\n" % (name, ls, v, t // 1000, t % 1000))
            f.write("# EOF\n")
        data = self.tmpdir("promtool-data")
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", path, data],
                       check=True, capture_output=True)
        self.assertGreaterEqual(len(block_dirs(data)), 3)  # 5 hours in 2-hour blocks
        srv = self.server(data_dir=data).start()
        end = BASE + 6 * HOUR
        self.assert_same(fetch_all(srv, series, end, 7 * HOUR), expected_map(series, end, 7 * HOUR))
        # A window inside one block, and one across a block boundary.
        for lo, hi in [(BASE + 30 * 60_000, BASE + 90 * 60_000), (BASE + HOUR, BASE + 3 * HOUR)]:
            self.assert_same(fetch_all(srv, series, hi, hi - lo), expected_map(series, hi, hi - lo))
        r = srv.get("/api/v1/series", **{"match[]": "blk_metric_1", "start": str(BASE / 1000),
                                          "end": str(end / 1000)}).json()
        self.assertEqual(r["status"], "success")
        self.assertEqual(sorted(x["instance"] for x in r["data"]),
                         sorted(s[0]["instance"] for s in series if s[0]["__name__"] == "blk_metric_1"))
        r = srv.get("/api/v1/label/instance/values", start=str(BASE / 1000), end=str(end / 1000)).json()
        self.assertEqual(r["data"], sorted(s[0]["instance"] for s in series))
        r = srv.get("/api/v1/labels").json()
        self.assertEqual(r["data"], ["__name__", "instance", "job"])
        # A range with no block and no head data selects nothing.
        self.assertEqual(fetch_all(srv, series, BASE - HOUR, HOUR), {})
        srv.stop()
        # A live Prometheus directory (its own head and WAL) is refused, its files untouched.
        prom = self.tmpdir("prometheus-dir")
        for b in block_dirs(data):
            shutil.copytree(b, os.path.join(prom, os.path.basename(b)))
        os.makedirs(os.path.join(prom, "chunks_head"))
        os.makedirs(os.path.join(prom, "wal"))
        with open(os.path.join(prom, "wal", "00000000"), "wb") as f:
            f.write(b"\x01\x00\x05abcdefghi")
        r = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "inspect", "--data-dir", prom],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Prometheus head", r.stderr)
        self.assertEqual(os.path.getsize(os.path.join(prom, "wal", "00000000")), 12)

    # ---- Strata -> promtool ------------------------------------------------------------------

    def test_promtool_reads_strata_blocks(self):
        series = make_series(2, 5, BASE, 5, 30_000)
        srv = self.server().start()
        write_all(srv, series)
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=60)
        self.assertEqual(r.status_code, 200, r.text)
        blocks = block_dirs(srv.data_dir)
        self.assertGreaterEqual(len(blocks), 3)
        # Everything is now served from blocks.
        end = BASE + 6 * HOUR
        self.assert_same(fetch_all(srv, series, end, 7 * HOUR), expected_map(series, end, 7 * HOUR))
        srv.stop()
        # promtool reads a copy of the blocks (Strata's WAL is not Prometheus' WAL format).
        copy = self.tmpdir("promtool-read")
        for b in blocks:
            shutil.copytree(b, os.path.join(copy, os.path.basename(b)))
        os.makedirs(os.path.join(copy, "wal"))
        out = subprocess.run([PROMTOOL, "tsdb", "list", copy], check=True, capture_output=True, text=True).stdout
        total = sum(len(s[1]) for s in series)
        listed = 0
        for b in blocks:
            self.assertIn(os.path.basename(b), out)
            with open(os.path.join(b, "meta.json")) as f:
                listed += json.load(f)["stats"]["numSamples"]
        self.assertEqual(listed, total)
        out = subprocess.run([PROMTOOL, "tsdb", "analyze", copy, os.path.basename(blocks[0])],
                             check=True, capture_output=True, text=True).stdout
        self.assertIn("Series: 5", out)
        dump = subprocess.run([PROMTOOL, "tsdb", "dump", copy], check=True, capture_output=True,
                              text=True).stdout
        got = {}
        for line in dump.splitlines():
            lbl, v, t = line.rsplit(" ", 2)
            got.setdefault(lbl, []).append((int(t), bits(float(v))))
        want = {}
        for labels, samples in series:
            k = "{" + ", ".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
            want[k] = [(t, bits(v)) for t, v in samples]
        for k in got:
            got[k].sort()
        self.assertEqual(got, want)

    # ---- head and blocks together, restarts --------------------------------------------------

    def test_head_and_blocks_merge_and_restart(self):
        first = make_series(3, 4, BASE, 3, 60_000)
        srv = self.server().start()
        write_all(srv, first)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        second = make_series(4, 4, BASE + 3 * HOUR, 1, 60_000)
        write_all(srv, second)
        both = [(a[0], a[1] + b[1]) for a, b in zip(first, second)]
        end = BASE + 5 * HOUR
        want = expected_map(both, end, 6 * HOUR)
        self.assert_same(fetch_all(srv, both, end, 6 * HOUR), want)
        # Instant queries see the newest (head) sample; rate over the block/head boundary works.
        r = srv.query("count(blk_metric_0)", t=(BASE + 3 * HOUR + 60_000) / 1000).json()
        self.assertEqual(r["data"]["result"][0]["value"][1], str(sum(1 for s in both if s[0]["__name__"] == "blk_metric_0")))
        for restart in range(2):
            srv.stop()
            srv.start()
            self.assert_same(fetch_all(srv, both, end, 6 * HOUR), want)
        # The head is empty after a flush and replays nothing of it: flush again, restart again.
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        srv.stop()
        wal = os.listdir(os.path.join(srv.data_dir, "wal"))
        self.assertTrue(any(n.startswith("checkpoint.") for n in wal), wal)
        srv.start()
        self.assert_same(fetch_all(srv, both, end, 6 * HOUR), want)

    def test_automatic_flush_by_block_range(self):
        # A 10-minute block range: 40 minutes of data spans more than 1.5 ranges.
        srv = self.server(args=["--block-range", "10m"]).start()
        series = make_series(5, 3, BASE, 40 / 60, 15_000)
        write_all(srv, series)
        deadline = time.time() + 30
        while not block_dirs(srv.data_dir) and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(block_dirs(srv.data_dir), "no block was cut automatically")
        end = BASE + HOUR
        self.assert_same(fetch_all(srv, series, end, 2 * HOUR), expected_map(series, end, 2 * HOUR))
        newest = max(t for s in series for t, _ in s[1])
        for b in block_dirs(srv.data_dir):
            with open(os.path.join(b, "meta.json")) as f:
                meta = json.load(f)
            self.assertLessEqual(meta["maxTime"] - meta["minTime"], 10 * 60_000)
            # Only closed windows are cut: the newest half range at least stays in the head.
            self.assertLessEqual(meta["maxTime"], newest - 5 * 60_000 + 1)
        head = srv.get("/api/v1/status/tsdb").json()["data"]["headStats"]
        self.assertEqual(head["numSeries"], 3)
        self.assertLessEqual(head["minTime"], newest - 5 * 60_000)
        # A restart replays the WAL checkpoint's samples (the head's, from before the flush).
        srv.stop()
        srv.start()
        self.assert_same(fetch_all(srv, series, end, 2 * HOUR), expected_map(series, end, 2 * HOUR))

    # ---- retention, status, inspect -------------------------------------------------------------

    def test_retention_status_and_inspect(self):
        srv = self.server(args=["--block-range", "1h", "--retention", "3h"]).start()
        series = make_series(6, 3, BASE, 8, 60_000)
        write_all(srv, series)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        newest = max(t for s in series for t, _ in s[1])
        blocks = block_dirs(srv.data_dir)
        self.assertTrue(blocks)
        self.assertIn("retention: deleting block", srv.log())
        for b in blocks:
            with open(os.path.join(b, "meta.json")) as f:
                self.assertGreater(json.load(f)["maxTime"], newest - 3 * HOUR, b)
        # The last 2 hours are all there; the first hour is gone.
        self.assert_same(fetch_all(srv, series, newest, 2 * HOUR), expected_map(series, newest, 2 * HOUR))
        self.assertEqual(fetch_all(srv, series, BASE + HOUR, HOUR), {})
        # /api/v1/status/tsdb lists exactly the blocks on disk.
        st = srv.get("/api/v1/status/tsdb").json()["data"]
        self.assertEqual(sorted(b["ulid"] for b in st["blocks"]), sorted(os.path.basename(b) for b in blocks))
        srv.stop()
        out = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "inspect", "--data-dir",
                              srv.data_dir, "--verify"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        for b in blocks:
            self.assertIn(os.path.basename(b), out.stdout)
        self.assertIn("verified", out.stdout)
        # A damaged chunk is reported by inspect --verify (and named), not silently read.
        seg = os.path.join(blocks[-1], "chunks", "000001")
        with open(seg, "r+b") as f:
            f.seek(40)
            c = f.read(1)
            f.seek(40)
            f.write(bytes([c[0] ^ 0xFF]))
        out = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "inspect", "--data-dir",
                              srv.data_dir, "--verify"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("checksum mismatch", out.stderr)

    def test_retention_size(self):
        srv = self.server(args=["--block-range", "1h", "--retention-size", "1KB"]).start()
        series = make_series(7, 3, BASE, 4, 60_000)
        write_all(srv, series)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        total = sum(os.path.getsize(os.path.join(r, f)) for b in block_dirs(srv.data_dir)
                    for r, _, fs in os.walk(b) for f in fs if f != "meta.json")
        self.assertLessEqual(total, 1024)

    # ---- compaction --------------------------------------------------------------------------

    def stored_samples(self, srv):
        total = 0
        levels = []
        for b in block_dirs(srv.data_dir):
            with open(os.path.join(b, "meta.json")) as f:
                m = json.load(f)
            total += m["stats"]["numSamples"]
            levels.append(m["compaction"]["level"])
        return total, levels

    def promtool_dump(self, srv):
        copy = self.tmpdir("promtool-dump")
        for b in block_dirs(srv.data_dir):
            shutil.copytree(b, os.path.join(copy, os.path.basename(b)))
        os.makedirs(os.path.join(copy, "wal"))
        out = subprocess.run([PROMTOOL, "tsdb", "dump", copy], check=True, capture_output=True, text=True).stdout
        got = {}
        for line in out.splitlines():
            lbl, v, t = line.rsplit(" ", 2)
            got.setdefault(lbl, []).append((int(t), bits(float(v))))
        return {k: sorted(v) for k, v in got.items()}

    def test_compaction_levels(self):
        srv = self.server(args=["--block-range", "1h"]).start()
        series = make_series(8, 4, BASE, 9, 60_000)
        write_all(srv, series)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        total, levels = self.stored_samples(srv)
        self.assertEqual(total, sum(len(s[1]) for s in series))
        self.assertGreaterEqual(max(levels), 2, levels)  # 3-hour windows merged
        self.assertIn("compacted", srv.log())
        metrics = {l.split(" ")[0]: float(l.split(" ")[1]) for l in srv.get("/metrics").text.splitlines()
                   if l and not l.startswith("#")}
        self.assertEqual(metrics["strata_blocks"], len(block_dirs(srv.data_dir)))
        self.assertEqual(metrics["strata_block_samples"], total)
        self.assertGreater(metrics["strata_compactions_total"], 0)
        self.assertGreater(metrics["strata_head_flushes_total"], 0)
        self.assertEqual(metrics["strata_head_flush_failures_total"], 0)
        end = BASE + 10 * HOUR
        want = expected_map(series, end, 11 * HOUR)
        self.assert_same(fetch_all(srv, series, end, 11 * HOUR), want)
        srv.stop()
        srv.start()
        self.assert_same(fetch_all(srv, series, end, 11 * HOUR), want)
        srv.stop()
        want_dump = {"{" + ", ".join('%s="%s"' % kv for kv in sorted(l.items())) + "}":
                     [(t, bits(v)) for t, v in smp] for l, smp in series}
        self.assertEqual(self.promtool_dump(srv), want_dump)

    def test_overlapping_blocks_merged(self):
        # promtool's blocks, then samples of the same series in the same hours (interleaved, and
        # some identical) written to Strata and flushed: overlapping blocks, merged into one.
        series = make_series(9, 3, BASE, 3, 60_000)
        om = self.tmpdir("om2")
        path = os.path.join(om, "in.om")
        with open(path, "w") as f:
            f.write("# TYPE blk_metric_0 gauge\n# TYPE blk_metric_1 gauge\n# TYPE blk_metric_2 gauge\n")
            for labels, samples in sorted(series, key=lambda x: x[0]["__name__"]):
                ls = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()) if k != "__name__")
                for t, v in samples:
                    f.write("%s{%s} %r %d.%03d\n" % (labels["__name__"], ls, v, t // 1000, t % 1000))
            f.write("# EOF\n")
        data = self.tmpdir("overlap-data")
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", path, data],
                       check=True, capture_output=True)
        srv = self.server(data_dir=data).start()
        late = [(l, [(t + 30_000, v + 1) for t, v in smp] + smp[::7]) for l, smp in series]
        for l, smp in late:
            smp.sort()
        write_all(srv, late)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        union = []
        for (l, a), (_, b) in zip(series, late):
            d = dict(a)
            d.update(dict(b))
            union.append((l, sorted(d.items())))
        end = BASE + 4 * HOUR
        self.assert_same(fetch_all(srv, union, end, 5 * HOUR), expected_map(union, end, 5 * HOUR))
        total, levels = self.stored_samples(srv)
        self.assertEqual(total, sum(len(s[1]) for s in union))
        metas = []
        for b in block_dirs(srv.data_dir):
            with open(os.path.join(b, "meta.json")) as f:
                metas.append(json.load(f))
        metas.sort(key=lambda m: m["minTime"])
        for a, b in zip(metas, metas[1:]):
            self.assertLessEqual(a["maxTime"], b["minTime"])  # no overlaps left

    def test_crash_during_compaction(self):
        srv = self.server(args=["--block-range", "1h"])
        os.environ["STRATA_CRASH_POINT"] = "compact-written"
        try:
            srv.start()
        finally:
            del os.environ["STRATA_CRASH_POINT"]
        series = make_series(11, 3, BASE, 5, 60_000)
        try:
            write_all(srv, series)
            srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=60)
        except (requests.RequestException, AssertionError):
            pass
        srv.proc.wait(30)
        self.assertEqual(srv.proc.returncode, -9)
        srv.start()
        self.assertIn("a compacted block replaces it", srv.log())  # parents removed at open
        # Whatever was acknowledged before the crash is there once; write the rest again.
        write_all_lenient(srv, series)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        end = BASE + 6 * HOUR
        self.assert_same(fetch_all(srv, series, end, 7 * HOUR), expected_map(series, end, 7 * HOUR))
        total, _ = self.stored_samples(srv)
        self.assertEqual(total, sum(len(s[1]) for s in series))

    # ---- deletion ------------------------------------------------------------------------------

    def test_delete_series_and_clean_tombstones(self):
        srv = self.server(args=["--block-range", "1h"]).start()
        series = make_series(12, 6, BASE, 3, 60_000)
        write_all(srv, series)
        lo, hi = BASE + HOUR - 5 * 60_000, BASE + 2 * HOUR + 10 * 60_000
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/delete_series",
                             params={"match[]": 'blk_metric_1{job="blocks"}', "start": "%.3f" % (lo / 1000),
                                     "end": "%.3f" % (hi / 1000)})
        self.assertEqual(r.status_code, 204, r.text)
        kept = [(l, [(t, v) for t, v in smp if not (l["__name__"] == "blk_metric_1" and lo <= t <= hi)])
                for l, smp in series]
        end = BASE + 4 * HOUR
        want = expected_map(kept, end, 5 * HOUR)
        self.assert_same(fetch_all(srv, series, end, 5 * HOUR), want)
        tombstoned = [b for b in block_dirs(srv.data_dir) if os.path.getsize(os.path.join(b, "tombstones")) > 9]
        self.assertTrue(tombstoned)
        # promtool applies our tombstones: its dump lacks exactly the deleted samples.
        want_dump = {"{" + ", ".join('%s="%s"' % kv for kv in sorted(l.items())) + "}":
                     [(t, bits(v)) for t, v in smp] for l, smp in kept}
        self.assertEqual(self.promtool_dump(srv), want_dump)
        # Deletions survive a restart, and new samples after them are kept.
        srv.stop()
        srv.start()
        self.assert_same(fetch_all(srv, series, end, 5 * HOUR), want)
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/clean_tombstones")
        self.assertEqual(r.status_code, 204, r.text)
        for b in block_dirs(srv.data_dir):
            self.assertEqual(os.path.getsize(os.path.join(b, "tombstones")), 9, b)
        total, _ = self.stored_samples(srv)
        self.assertEqual(total, sum(len(s[1]) for s in kept))
        self.assert_same(fetch_all(srv, series, end, 5 * HOUR), want)
        # Bad requests are refused clearly.
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/delete_series")
        self.assertEqual(r.status_code, 400)
        self.assertIn("match[]", r.json()["error"])

    def test_crash_during_automatic_flush(self):
        # The flusher cuts the closed windows while writes go on; a kill at each step of that
        # partial flush must keep every acknowledged sample exactly once.
        for i, point in enumerate(CRASH_POINTS):
            with self.subTest(point=point):
                srv = self.server(args=["--block-range", "1h"])
                os.environ["STRATA_CRASH_POINT"] = point
                try:
                    srv.start()
                finally:
                    del os.environ["STRATA_CRASH_POINT"]
                series = make_series(40 + i, 3, BASE, 4, 60_000)
                acked, inflight = [], []
                try:
                    for k in range(0, 240, 5):
                        batch = [(l, smp[k:k + 5]) for l, smp in series]
                        inflight = batch
                        r = srv.write(batch)
                        self.assertEqual(r.status_code, 204, r.text)
                        acked.append(batch)
                        inflight = []
                        time.sleep(0.01)
                except requests.RequestException:
                    pass
                srv.proc.wait(60)
                self.assertEqual(srv.proc.returncode, -9, point)
                srv.start()
                end = BASE + 5 * HOUR
                got = fetch_all(srv, series, end, 6 * HOUR)
                want = {}
                for batch in acked:
                    for l, smp in batch:
                        want.setdefault(key_of(l), []).extend((t, bits(v)) for t, v in smp)
                maybe = {}
                for l, smp in inflight:
                    maybe.setdefault(key_of(l), set()).update((t, bits(v)) for t, v in smp)
                for k, v in want.items():
                    extra = set(got.get(k, [])) - set(v)
                    self.assertTrue(extra <= maybe.get(k, set()), (point, k, sorted(extra)[:3]))
                    self.assertEqual([x for x in got.get(k, []) if x in set(v)], v, (point, k))
                # Stored once: after a full flush the blocks hold exactly what is served.
                self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
                total, _ = self.stored_samples(srv)
                self.assertEqual(total, sum(len(v) for v in got.values()), point)
                srv.cleanup()
                self.servers.remove(srv)

    # ---- export ------------------------------------------------------------------------------

    def test_export_round_trip_through_promtool(self):
        # strata export -> promtool tsdb create-blocks-from openmetrics -> Strata serves the same.
        srv = self.server().start()
        series = make_series(13, 3, BASE, 3, 60_000)
        odd = {"__name__": "blk_metric_0", "instance": 'quote"back\\slash', "job": "blocks"}
        series.append((odd, [(BASE + i * 60_000, v) for i, v in
                             enumerate([float("inf"), float("-inf"), -0.0, 1e-300, 12345678.9])]))
        write_all(srv, series)
        self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
        more = [(l, [(t + 3 * HOUR, v) for t, v in smp]) for l, smp in series]
        write_all(srv, more)  # these stay in the head
        srv.stop()
        both = [(l, a + b) for (l, a), (_, b) in zip(series, more)]
        out = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "export", "--data-dir",
                              srv.data_dir], check=True, capture_output=True, text=True).stdout
        self.assertTrue(out.endswith("# EOF\n"))
        om = os.path.join(self.tmpdir("export"), "out.om")
        with open(om, "w") as f:
            f.write(out)
        data = self.tmpdir("reimport")
        subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om, data],
                       check=True, capture_output=True)
        again = self.server(data_dir=data).start()
        end = BASE + 7 * HOUR
        self.assert_same(fetch_all(again, both, end, 8 * HOUR), expected_map(both, end, 8 * HOUR))
        # strata import reads it back into blocks too.
        imported = self.tmpdir("strata-import")
        r = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "import", "--data-dir",
                            imported, om], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("imported %d of %d samples" % ((sum(len(x[1]) for x in both),) * 2), r.stdout)
        self.assertTrue(block_dirs(imported))
        self.assertFalse(os.path.exists(os.path.join(imported, "wal", "00000001")))  # all in blocks
        third = self.server(data_dir=imported).start()
        self.assert_same(fetch_all(third, both, end, 8 * HOUR), expected_map(both, end, 8 * HOUR))
        third.stop()
        # A malformed line is refused with its number.
        bad = os.path.join(self.tmpdir("bad"), "bad.om")
        with open(bad, "w") as f:
            f.write('# TYPE x gauge\nx{a="b"} 1 1700000000\nx{a="b" 2 1700000001\n# EOF\n')
        r = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "import", "--data-dir",
                            self.tmpdir("bad-import"), bad], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("line 3", r.stderr)
        # A time range and a selector narrow the export.
        part = subprocess.run([os.environ.get("STRATA_BIN", "build/strata"), "export", "--data-dir",
                               srv.data_dir, "--match", 'blk_metric_1{job="blocks"}', "--start",
                               str(BASE / 1000), "--end", str((BASE + HOUR) / 1000)],
                              check=True, capture_output=True, text=True).stdout
        lines = [l for l in part.splitlines() if not l.startswith("#")]
        self.assertEqual(len(lines), sum(1 for l, smp in both if l["__name__"] == "blk_metric_1"
                                         for t, _ in smp if BASE <= t <= BASE + HOUR))

    # ---- crashes at every step -----------------------------------------------------------------

    def test_crash_at_each_flush_step(self):
        for i, point in enumerate(CRASH_POINTS):
            with self.subTest(point=point):
                first = make_series(10 + i, 3, BASE, 2.5, 60_000)  # two block windows
                srv = self.server()
                os.environ["STRATA_CRASH_POINT"] = point
                try:
                    srv.start()
                finally:
                    del os.environ["STRATA_CRASH_POINT"]
                write_all(srv, first)
                with self.assertRaises(requests.RequestException):
                    srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=60)
                srv.proc.wait(30)
                self.assertEqual(srv.proc.returncode, -9, point)
                self.assertTrue(any(l in srv.log() for l in ["STRATA_CRASH_POINT=" + point]), srv.log()[-2000:])
                srv.start()
                self.assertEqual(glob.glob(os.path.join(srv.data_dir, "*.tmp")), [])
                end = BASE + 4 * HOUR
                want = expected_map(first, end, 5 * HOUR)
                self.assert_same(fetch_all(srv, first, end, 5 * HOUR), want)
                # New samples, a flush that completes, a restart: still exactly once.
                second = make_series(20 + i, 3, BASE + 3 * HOUR, 0.5, 60_000)
                write_all(srv, second)
                self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
                srv.stop()
                srv.start()
                self.assertEqual(srv.session.post(srv.url + "/api/v1/admin/tsdb/flush").status_code, 200)
                both = [(a[0], a[1] + b[1]) for a, b in zip(first, second)]
                self.assert_same(fetch_all(srv, both, end, 5 * HOUR), expected_map(both, end, 5 * HOUR))
                # Stored once, not only shown once: the blocks hold every sample exactly once.
                stored = 0
                for b in block_dirs(srv.data_dir):
                    with open(os.path.join(b, "meta.json")) as f:
                        stored += json.load(f)["stats"]["numSamples"]
                self.assertEqual(stored, sum(len(s[1]) for s in both), point)
                srv.cleanup()
                self.servers.remove(srv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
