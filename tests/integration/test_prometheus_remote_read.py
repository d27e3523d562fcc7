"""Remote read: Debian's Prometheus, with an empty TSDB of its own and Strata as its remote_read
endpoint, answers queries from Strata's data exactly as Strata does. The streamed-chunks response
type is checked frame by frame (length, CRC-32C, series) with a hand-built request."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, _field_bytes, _varint, _tmp_base, free_port  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def read_request(start_ms, end_ms, name, response_types):
    matcher = _varint(0x08) + _varint(0) + _field_bytes(2, b"__name__") + _field_bytes(3, name.encode())
    query = _varint(0x08) + _varint(start_ms) + _varint(0x10) + _varint(end_ms) + _field_bytes(3, matcher)
    body = _field_bytes(1, query)
    if response_types:
        body += _field_bytes(2, b"".join(_varint(t) for t in response_types))
    return snappy.compress(body)


def read_uvarint(b, i):
    shift = v = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, i
        shift += 7


class RemoteReadTest(unittest.TestCase):
    def setUp(self):
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="rread").start()
        self.now = int(time.time()) * 1000
        self.start_ms = self.now - 600_000
        series = []
        for i in range(5):
            series.append(({"__name__": "rr_metric", "instance": "host-%d" % i, "job": "rr"},
                           [(self.start_ms + k * 15000, i * 100.0 + k * 0.5) for k in range(40)]))
        r = self.strata.write(series)
        self.assertEqual(r.status_code, 204, r.text)
        self.prom = None
        self.prom_dir = tempfile.mkdtemp(prefix="prom-rr-", dir=_tmp_base())

    def tearDown(self):
        if self.prom and self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(20)
            except subprocess.TimeoutExpired:
                self.prom.kill()
        self.strata.cleanup()
        shutil.rmtree(self.prom_dir, ignore_errors=True)

    def test_streamed_chunks_frames(self):
        body = read_request(self.start_ms, self.now, "rr_metric", [1, 0])
        r = requests.post(self.strata.url + "/api/v1/read", data=body, timeout=10,
                          headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("application/x-streamed-protobuf", r.headers["Content-Type"])
        b, i, frames = r.content, 0, 0
        while i < len(b):
            n, i = read_uvarint(b, i)
            crc = int.from_bytes(b[i:i + 4], "big")
            msg = b[i + 4:i + 4 + n]
            self.assertEqual(len(msg), n, "truncated frame")
            self.assertEqual(crc32c(msg), crc, "frame CRC-32C does not match")
            self.assertIn(b"rr_metric", msg)
            i += 4 + n
            frames += 1
        self.assertEqual(frames, 5)  # one frame per series

    def test_samples_response_and_bad_input(self):
        body = read_request(self.start_ms, self.now, "rr_metric", [])
        r = requests.post(self.strata.url + "/api/v1/read", data=body, timeout=10)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("Content-Encoding"), "snappy")
        raw = snappy.uncompress(r.content)
        self.assertEqual(raw.count(b"rr_metric"), 5)
        r = requests.post(self.strata.url + "/api/v1/read", data=b"\x00garbage", timeout=10)
        self.assertEqual(r.status_code, 400)
        self.assertIn("snappy", r.text)
        r = requests.post(self.strata.url + "/api/v1/read", data=snappy.compress(b"\xff\xff\xff"), timeout=10)
        self.assertEqual(r.status_code, 400)

    @unittest.skipUnless(os.path.exists(PROMETHEUS), "Debian's prometheus package is not installed")
    def test_prometheus_reads_from_strata(self):
        port = free_port()
        cfg = os.path.join(self.prom_dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("remote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n" % self.strata.url)
        log = open(os.path.join(self.prom_dir, "log"), "wb")
        self.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(self.prom_dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=log, start_new_session=True)
        log.close()
        url = "http://127.0.0.1:%d" % port
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        t = "%.3f" % (self.now / 1000)
        for q in ["rr_metric[15m]", 'rr_metric{instance="host-3"}[15m]', "rr_metric"]:
            with self.subTest(query=q):
                p = requests.get(url + "/api/v1/query", params={"query": q, "time": t}, timeout=20).json()
                s = requests.get(self.strata.url + "/api/v1/query", params={"query": q, "time": t}, timeout=20).json()
                self.assertEqual(p["status"], "success", p)
                self.assertTrue(p["data"]["result"], "Prometheus returned nothing through remote read")
                key = lambda x: sorted(x["metric"].items())
                self.assertEqual(sorted(p["data"]["result"], key=key), sorted(s["data"]["result"], key=key))


if __name__ == "__main__":
    unittest.main(verbosity=2)
