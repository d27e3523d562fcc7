"""Storage tiers: the cold tier (--cold-dir, --cold-after) and the warm adaptive codec.

- Data written over remote write, flushed; blocks older than --cold-after move to the cold
  directory (adaptive chunks, zstd-compressed segments). Every sample reads back bit-exact through
  PromQL range selectors and through remote read from head + warm + cold together, before and
  after a restart, and `strata inspect --verify` checks every cold checksum.
- /api/v1/status/tsdb and `strata inspect` show the tiers; /metrics shows the selector's choices.
- --warm-codec adaptive: warm blocks hold adaptive chunks (encoding 0x40) and read back the same.
- kill -9 at each step of a demotion (STRATA_CRASH_POINT): after a restart each block is served
  from exactly one tier: never twice, never lost.
"""

import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import STRATA_BIN, TMP_BASE, Strata  # noqa: E402
from test_blocks import (BASE, HOUR, bits, expected_map, fetch_all, make_series,  # noqa: E402
                         write_all)
import test_prometheus_remote_read as rr  # noqa: E402

DEMOTE_POINTS = ["demote-staged", "demote-renamed", "demote-published"]


def block_dirs(d):
    return sorted(os.path.basename(x) for x in glob.glob(os.path.join(d, "*"))
                  if os.path.isdir(x) and len(os.path.basename(x)) == 26)


def chunk_encodings(block_dir):
    """The encodings of every chunk in an uncompressed chunk segment (warm blocks)."""
    encs = set()
    for seg in sorted(glob.glob(os.path.join(block_dir, "chunks", "[0-9]" * 6))):
        with open(seg, "rb") as f:
            data = f.read()
        at = 8
        while at < len(data):
            n, shift, ln = 0, 0, 0
            while True:
                b = data[at + n]
                ln |= (b & 0x7F) << shift
                n += 1
                shift += 7
                if b < 0x80:
                    break
            encs.add(data[at + n])
            at += n + 1 + ln + 4
    return encs


def pb_fields(b):
    """(field number, wire type, value) of one protobuf message: varints, 64-bit, bytes."""
    i = 0
    while i < len(b):
        key, i = rr.read_uvarint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = rr.read_uvarint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = rr.read_uvarint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def decode_samples_response(raw):
    """ReadResponse -> [(labels, [(t, v)])] over every QueryResult's TimeSeries."""
    out = []
    for f, _, qr in pb_fields(raw):
        if f != 1:
            continue
        for g, _, ts in pb_fields(qr):
            if g != 1:
                continue
            labels, samples = {}, []
            for h, _, x in pb_fields(ts):
                if h == 1:
                    kv = {k: v.decode() for k, _, v in pb_fields(x)}
                    labels[kv[1]] = kv[2]
                elif h == 2:
                    val, t = 0.0, 0
                    for k, _, v in pb_fields(x):
                        if k == 1:
                            val = struct.unpack("<d", v)[0]
                        elif k == 2:
                            t = v - (1 << 64) if v >= 1 << 63 else v
                    samples.append((t, val))
            out.append((labels, samples))
    return out


class ColdTierTest(unittest.TestCase):
    def setUp(self):
        os.makedirs(TMP_BASE, exist_ok=True)
        self.servers = []
        self.cold = None

    def tearDown(self):
        for s in self.servers:
            s.cleanup()
        if self.cold:
            shutil.rmtree(self.cold, ignore_errors=True)

    def server(self, args=(), data_dir=None):
        s = Strata(data_dir=data_dir, extra_args=["--self-scrape-interval", "0"] + list(args))
        self.servers.append(s)
        return s

    def assert_same(self, got, want):
        self.assertEqual(sorted(got.keys()), sorted(want.keys()))
        for k in want:
            self.assertEqual(got[k], want[k], k)

    def cold_server(self, extra=()):
        probe = Strata()  # for a fresh temporary directory beside the data directory
        self.cold = probe.data_dir + "-cold"
        shutil.rmtree(probe.data_dir, ignore_errors=True)
        return self.server(["--block-range", "1h", "--cold-dir", self.cold, "--cold-after", "3h"]
                           + list(extra))

    def flush(self, srv):
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=120)
        self.assertEqual(r.status_code, 200, r.text)

    def test_demotion_roundtrip_restart_and_status(self):
        srv = self.cold_server().start()
        series = make_series(21, 6, BASE, 8, 30_000)
        write_all(srv, series)
        self.flush(srv)
        # 8 h of data, newest sample at BASE+8h: blocks ending before BASE+5h are cold.
        cold_blocks = block_dirs(self.cold)
        self.assertTrue(cold_blocks, srv.log()[-3000:])
        warm_blocks = block_dirs(srv.data_dir)
        self.assertTrue(warm_blocks)
        self.assertFalse(set(cold_blocks) & set(warm_blocks))
        # A cold segment is compressed (magic STCZ), not a plain chunk segment.
        for b in cold_blocks:
            for seg in glob.glob(os.path.join(self.cold, b, "chunks", "*")):
                with open(seg, "rb") as f:
                    self.assertEqual(f.read(4), b"STCZ", seg)
        # More data in the head on top of warm and cold.
        more = make_series(22, 6, BASE + 8 * HOUR, 1, 30_000)
        write_all(srv, more)
        both = [(a[0], a[1] + b[1]) for a, b in zip(series, more)]
        end = BASE + 9 * HOUR
        want = expected_map(both, end, 10 * HOUR)
        self.assert_same(fetch_all(srv, both, end, 10 * HOUR), want)
        st = srv.get("/api/v1/status/tsdb").json()["data"]
        tiers = st["tiers"]
        self.assertEqual(tiers["cold"]["blocks"], len(cold_blocks))
        self.assertGreater(tiers["cold"]["samples"], 0)
        self.assertGreater(tiers["warm"]["samples"], 0)
        self.assertEqual({b["tier"] for b in st["blocks"]}, {"warm", "cold"})
        total_blocks = tiers["cold"]["samples"] + tiers["warm"]["samples"]
        self.assertEqual(total_blocks, sum(len(s[1]) for s in series))
        # Cold bytes per sample below warm (XOR) bytes per sample.
        cold_bps = tiers["cold"]["bytes"] / tiers["cold"]["samples"]
        warm_bps = tiers["warm"]["bytes"] / tiers["warm"]["samples"]
        self.assertLess(cold_bps, warm_bps)
        metrics = srv.get("/metrics").text
        self.assertIn('strata_tier_blocks{tier="cold"} %d' % len(cold_blocks), metrics)
        self.assertIn("strata_chunk_codec_compression_ratio", metrics)
        chunks = [l for l in metrics.splitlines()
                  if l.startswith('strata_chunk_codec_chunks_total{kind="value"')]
        self.assertGreater(sum(float(l.split()[-1]) for l in chunks), 0)
        # Restart: everything, once.
        for _ in range(2):
            srv.stop()
            srv.start()
            self.assert_same(fetch_all(srv, both, end, 10 * HOUR), want)
        # The head's hour moved the newest sample on: more blocks may be cold now, none came back.
        now_cold = block_dirs(self.cold)
        self.assertTrue(set(cold_blocks) <= set(now_cold))
        self.assertFalse(set(now_cold) & set(block_dirs(srv.data_dir)))
        cold_blocks = now_cold
        srv.stop()
        out = subprocess.run([STRATA_BIN, "inspect", "--data-dir", srv.data_dir, "--cold-dir",
                              self.cold, "--verify"], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("cold tier: %d blocks" % len(cold_blocks), out.stdout)
        self.assertIn(" cold ", out.stdout)

    def test_remote_read_across_tiers(self):
        srv = self.cold_server().start()
        series = make_series(23, 3, BASE, 7, 60_000)
        write_all(srv, series)
        self.flush(srv)
        self.assertTrue(block_dirs(self.cold))
        more = make_series(26, 3, BASE + 7 * HOUR, 1, 60_000)
        write_all(srv, more)
        both = [(a[0], a[1] + b[1]) for a, b in zip(series, more)]
        want = expected_map(both, BASE + 8 * HOUR, 9 * HOUR)
        got = {}
        for name in sorted({s[0]["__name__"] for s in both}):
            body = rr.read_request(BASE - 1, BASE + 8 * HOUR, name, [])
            r = requests.post(srv.url + "/api/v1/read", data=body, timeout=60)
            self.assertEqual(r.status_code, 200, r.text)
            for labels, samples in decode_samples_response(snappy.uncompress(r.content)):
                got[tuple(sorted(labels.items()))] = [(t, bits(v)) for t, v in samples]
        self.assertEqual(got, want)

    def test_warm_adaptive_codec(self):
        srv = self.server(["--block-range", "1h", "--warm-codec", "adaptive"]).start()
        series = make_series(24, 4, BASE, 4, 30_000)
        write_all(srv, series)
        self.flush(srv)
        blocks = block_dirs(srv.data_dir)
        self.assertTrue(blocks)
        for b in blocks:
            self.assertEqual(chunk_encodings(os.path.join(srv.data_dir, b)), {0x40}, b)
        end = BASE + 4 * HOUR
        want = expected_map(series, end, 5 * HOUR)
        self.assert_same(fetch_all(srv, series, end, 5 * HOUR), want)
        srv.stop()
        srv.start()
        self.assert_same(fetch_all(srv, series, end, 5 * HOUR), want)

    def test_kill9_during_demotion(self):
        for point in DEMOTE_POINTS:
            with self.subTest(point=point):
                srv = self.cold_server()
                os.environ["STRATA_CRASH_POINT"] = point
                try:
                    srv.start()
                finally:
                    del os.environ["STRATA_CRASH_POINT"]
                series = make_series(25, 3, BASE, 8, 60_000)
                write_all(srv, series)
                try:
                    srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=120)
                except requests.RequestException:
                    pass
                srv.proc.wait(60)
                self.assertEqual(srv.proc.returncode, -9, point)
                srv.start()
                end = BASE + 8 * HOUR
                want = expected_map(series, end, 9 * HOUR)
                self.assert_same(fetch_all(srv, series, end, 9 * HOUR), want)
                st = srv.get("/api/v1/status/tsdb").json()["data"]
                in_blocks = st["tiers"]["warm"]["samples"] + st["tiers"]["cold"]["samples"]
                self.assertLessEqual(in_blocks, sum(len(s[1]) for s in series))
                # A flush now completes the demotion; still every sample once.
                self.flush(srv)
                self.assertTrue(block_dirs(self.cold))
                self.assertFalse(os.path.exists(os.path.join(self.cold, ".staging")) and
                                 os.listdir(os.path.join(self.cold, ".staging")))
                self.assert_same(fetch_all(srv, series, end, 9 * HOUR), want)
                st = srv.get("/api/v1/status/tsdb").json()["data"]
                in_blocks = st["tiers"]["warm"]["samples"] + st["tiers"]["cold"]["samples"]
                self.assertEqual(in_blocks, sum(len(s[1]) for s in series))
                srv.cleanup()
                self.servers.remove(srv)
                shutil.rmtree(self.cold, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
