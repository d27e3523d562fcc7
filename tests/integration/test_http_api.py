"""The HTTP API of a real `strata serve`: remote write in, Prometheus-shaped JSON out, and a clear
400 for every kind of bad input, with the server still healthy afterwards."""

import os
import struct
import sys
import time
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import RW_HEADERS, Strata, encode_write_request  # noqa: E402

T0 = 1_700_000_000_000


class HttpApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="api").start()
        r = cls.s.write([
            ({"__name__": "up", "job": "api", "instance": "a:1"}, [(T0, 1.0), (T0 + 15000, 1.0)]),
            ({"__name__": "up", "job": "api", "instance": "b:1"}, [(T0, 0.0)]),
            ({"__name__": "up", "job": "web", "instance": "c:1"}, [(T0 + 15000, 1.0)]),
            ({"__name__": "odd", "job": "x"}, [(T0, -0.0), (T0 + 1000, 1e308), (T0 + 2000, 0.1),
                                               (T0 + 3000, 0x7FF0000000000002), (T0 + 4000, 5e-324)]),
        ])
        assert r.status_code == 204, r.text

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def api(self, path, method="GET", **params):
        if method == "POST":
            r = requests.post(self.s.url + path, data=params, timeout=10)
        else:
            r = requests.get(self.s.url + path, params=params, timeout=10)
        return r.status_code, r.json()

    def test_instant_query_shapes(self):
        code, body = self.api("/api/v1/query", query='up{job="api"}', time="%.3f" % ((T0 + 15000) / 1000))
        self.assertEqual(code, 200)
        self.assertEqual(body["status"], "success")
        self.assertEqual(body["data"]["resultType"], "vector")
        res = body["data"]["result"]
        self.assertEqual([r["metric"]["instance"] for r in res], ["a:1", "b:1"])
        self.assertEqual(res[0]["value"], [1700000015, "1"])
        self.assertEqual(res[1]["value"], [1700000015, "0"])  # 15 s old, inside the lookback
        # RFC 3339 time and POST form give the same answer.
        code, body2 = self.api("/api/v1/query", method="POST", query='up{job="api"}',
                               time="2023-11-14T22:13:35Z")
        self.assertEqual(body2, body)

    def test_lookback_and_offset(self):
        t = (T0 + 15000 + 5 * 60 * 1000) / 1000  # 5 min after the last sample: outside (t-5m, t]
        _, body = self.api("/api/v1/query", query="up", time="%.3f" % t)
        self.assertEqual(body["data"]["result"], [])
        _, body = self.api("/api/v1/query", query="up offset 5m", time="%.3f" % t)
        self.assertEqual(len(body["data"]["result"]), 3)
        _, body = self.api("/api/v1/query", query="up @ %.3f" % ((T0 + 15000) / 1000), time="%.3f" % (t + 9999))
        self.assertEqual(len(body["data"]["result"]), 3)

    def test_values_are_exact(self):
        _, body = self.api("/api/v1/query", query="odd[10s]", time="%.3f" % ((T0 + 5000) / 1000))
        values = body["data"]["result"][0]["values"]
        # The staleness marker is stored but never shown, as in Prometheus.
        self.assertEqual(values, [[1700000000, "-0"], [1700000001, "1e+308".replace("1e+308", "1" + "0" * 308)],
                                  [1700000002, "0.1"], [1700000004, "5e-324".replace("5e-324", "0." + "0" * 323 + "5")]])
        # Right after a stale marker the series has no instant value.
        _, body = self.api("/api/v1/query", query="odd", time="%.3f" % ((T0 + 3500) / 1000))
        self.assertEqual(body["data"]["result"], [])

    def test_query_range(self):
        code, body = self.api("/api/v1/query_range", query='up{instance="a:1"}',
                              start=str(T0 / 1000), end=str((T0 + 30000) / 1000), step="15s")
        self.assertEqual(code, 200)
        self.assertEqual(body["data"]["resultType"], "matrix")
        self.assertEqual(body["data"]["result"][0]["values"],
                         [[1700000000, "1"], [1700000015, "1"], [1700000030, "1"]])
        code, body = self.api("/api/v1/query_range", method="POST", query="up", start="1", end="2", step="0")
        self.assertEqual(code, 400)
        self.assertEqual(body["errorType"], "bad_data")

    def test_series_labels_values(self):
        r = requests.get(self.s.url + "/api/v1/series",
                         params=[("match[]", 'up{job="web"}'), ("match[]", "odd")], timeout=10)
        self.assertEqual(r.json()["data"], [{"__name__": "odd", "job": "x"},
                                            {"__name__": "up", "instance": "c:1", "job": "web"}])
        _, body = self.api("/api/v1/labels")
        self.assertEqual(body["data"], ["__name__", "instance", "job"])
        _, body = self.api("/api/v1/label/job/values")
        self.assertEqual(body["data"], ["api", "web", "x"])
        _, body = self.api("/api/v1/label/instance/values", **{"match[]": 'up{job="api"}'})
        self.assertEqual(body["data"], ["a:1", "b:1"])
        code, body = self.api("/api/v1/series")
        self.assertEqual(code, 400)

    def test_tsdb_status(self):
        code, body = self.api("/api/v1/status/tsdb", limit="2")
        self.assertEqual(code, 200)
        d = body["data"]
        self.assertGreaterEqual(d["headStats"]["numSeries"], 4)
        self.assertEqual(d["seriesCountByMetricName"][0], {"name": "up", "value": 3})
        self.assertLessEqual(len(d["seriesCountByLabelValuePair"]), 2)
        names = {x["name"]: x["value"] for x in d["labelValueCountByLabelName"]}
        self.assertIn("__name__", names)

    def test_explain(self):
        code, body = self.api("/api/v1/query", query='sum by (job) (rate(up{job=~"a.*"}[5m]))',
                              time=str(T0 / 1000), explain="1")
        self.assertEqual(code, 200)
        plan = body["data"]["plan"]
        self.assertIn("Aggregate sum by (job)", plan)
        self.assertIn("RangeSelector: read (1699999700, 1700000000] range=300s series=2", plan)
        self.assertIn('postings job=~"a.*" (regex, JIT)', plan)

    def test_functions_and_operators(self):
        t = "%.3f" % ((T0 + 15000) / 1000)
        _, body = self.api("/api/v1/query", query="count by (job) (up)", time=t)
        self.assertEqual({r["metric"]["job"]: r["value"][1] for r in body["data"]["result"]},
                         {"api": "2", "web": "1"})
        _, body = self.api("/api/v1/query", query='up{instance="a:1"} + on(job) group_left '
                           'count by (job) (up)', time=t)
        self.assertEqual(body["data"]["result"][0]["value"][1], "3")
        code, body = self.api("/api/v1/query", query="up + on(job) up", time=t)
        self.assertEqual(code, 422)
        self.assertEqual(body["errorType"], "execution")

    def test_bad_queries(self):
        code, body = self.api("/api/v1/query", query="sum(up")
        self.assertEqual(code, 400)
        self.assertEqual(body["errorType"], "bad_data")
        self.assertRegex(body["error"], r"^1:7: parse error")
        code, body = self.api("/api/v1/query")
        self.assertEqual(code, 400)
        self.assertIn("query", body["error"])
        code, body = self.api("/api/v1/query", query="up", time="yesterday")
        self.assertEqual(code, 400)

    def post_raw(self, body, headers=None):
        return requests.post(self.s.url + "/api/v1/write", data=body,
                             headers=headers or RW_HEADERS, timeout=10)

    def test_bad_remote_writes(self):
        cases = {
            "bad snappy": (b"\x00\x01garbage", "snappy"),
            "bad protobuf": (snappy.compress(b"\xff\xff\xff\xff\xff\xff"), "protobuf"),
            "unsorted labels": (snappy.compress(encode_write_request(
                [([("job", "a"), ("__name__", "m")], [(T0, 1.0)])])), "sorted"),
            "duplicate label": (snappy.compress(encode_write_request(
                [([("__name__", "m"), ("a", "1"), ("a", "2")], [(T0, 1.0)])])), "duplicate"),
            "invalid utf-8": (snappy.compress(encode_write_request(
                [([("__name__", "m"), ("a", b"\xff\xfe")], [(T0, 1.0)])])), "UTF-8"),
        }
        for name, (body, word) in cases.items():
            with self.subTest(name):
                r = self.post_raw(body)
                self.assertEqual(r.status_code, 400, r.text)
                self.assertIn(word, r.text)
        # A request with one bad label set stores nothing of its good series either.
        r = self.post_raw(snappy.compress(encode_write_request([
            ({"__name__": "good_one"}, [(T0, 1.0)]),
            ([("__name__", "m"), ("a", "1"), ("a", "2")], [(T0, 1.0)])])))
        self.assertEqual(r.status_code, 400)
        _, body = self.api("/api/v1/series", **{"match[]": "good_one"})
        self.assertEqual(body["data"], [])
        # Out of order: the valid samples of the same request are stored.
        r = self.s.write([({"__name__": "ooo"}, [(T0 + 5000, 1.0)])])
        self.assertEqual(r.status_code, 204)
        r = self.s.write([({"__name__": "ooo"}, [(T0 + 1000, 2.0), (T0 + 9000, 3.0)])])
        self.assertEqual(r.status_code, 400)
        self.assertIn("out of order", r.text)
        _, body = self.api("/api/v1/query", query="ooo[1m]", time="%.3f" % ((T0 + 10000) / 1000))
        self.assertEqual([v[1] for v in body["data"]["result"][0]["values"]], ["1", "3"])
        # An unknown protobuf message type is refused with 415.
        h = dict(RW_HEADERS)
        h["Content-Type"] = "application/x-protobuf;proto=foo.Bar"
        self.assertEqual(self.post_raw(snappy.compress(b""), h).status_code, 415)
        self.assertEqual(requests.get(self.s.url + "/-/healthy", timeout=5).status_code, 200)

    def test_remote_write_2(self):
        # io.prometheus.write.v2.Request, hand-encoded: symbols table, labels_refs pairs, samples.
        from strata_harness import _field_bytes, _varint
        symbols = ["", "__name__", "rw2_metric", "job", "x"]
        body = b"".join(_field_bytes(4, s.encode()) for s in symbols)
        refs = b"".join(_varint(x) for x in [1, 2, 3, 4])
        sample = lambda t, v: b"\x09" + struct.pack("<d", v) + _varint(0x10) + _varint(t)
        ts = _field_bytes(1, refs) + _field_bytes(2, sample(T0, 1.5)) + _field_bytes(2, sample(T0 + 1000, 2.5))
        body += _field_bytes(5, ts)
        h = dict(RW_HEADERS)
        h["Content-Type"] = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        h["X-Prometheus-Remote-Write-Version"] = "2.0.0"
        r = self.post_raw(snappy.compress(body), h)
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(r.headers["X-Prometheus-Remote-Write-Samples-Written"], "2")
        _, q = self.api("/api/v1/query", query="rw2_metric[5s]", time="%.3f" % ((T0 + 1000) / 1000))
        self.assertEqual(q["data"]["result"][0]["metric"], {"__name__": "rw2_metric", "job": "x"})
        self.assertEqual([v[1] for v in q["data"]["result"][0]["values"]], ["1.5", "2.5"])
        # A reference past the symbol table is a 400 that names the problem.
        bad = b"".join(_field_bytes(4, s.encode()) for s in symbols) + _field_bytes(5, _field_bytes(1, b"".join(_varint(x) for x in [1, 9])))
        r = self.post_raw(snappy.compress(bad), h)
        self.assertEqual(r.status_code, 400)
        self.assertIn("past the 5 symbols", r.text)

    def test_metrics_and_health(self):
        r = requests.get(self.s.url + "/metrics", timeout=10)
        self.assertEqual(r.status_code, 200)
        lines = [l for l in r.text.splitlines() if l and not l.startswith("#")]
        self.assertTrue(any(l.startswith("strata_head_series ") for l in lines))
        for l in lines:
            self.assertRegex(l, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEInfa]+$')
        self.assertEqual(requests.get(self.s.url + "/-/ready", timeout=5).status_code, 200)
        self.assertEqual(requests.get(self.s.url + "/nope", timeout=5).status_code, 404)


class IngestLimitsTest(unittest.TestCase):
    def test_limits_are_enforced_and_counted(self):
        s = Strata(extra_args=["--self-scrape-interval", "0", "--ingest-max-series-per-metric", "1",
                               "--ingest-max-labels", "3"], name="limits").start()
        try:
            r = s.write([({"__name__": "lim", "i": "1"}, [(T0, 1.0)]),
                         ({"__name__": "lim", "i": "2"}, [(T0, 2.0)])])
            self.assertEqual(r.status_code, 429, r.text)
            self.assertIn("series limit per metric", r.text)
            r = s.write([({"__name__": "lim2", "a": "1", "b": "2", "c": "3"}, [(T0, 1.0)])])
            self.assertEqual(r.status_code, 400)
            self.assertIn("too many labels", r.text)
            body = requests.get(s.url + "/metrics", timeout=5).text
            self.assertIn('strata_samples_rejected_total{reason="series_limit"} 1', body)
            self.assertIn("strata_writes_rejected_label_limit_total 1", body)
            r = s.get("/api/v1/series", **{"match[]": '{__name__=~"lim.*"}'})  # noqa
            self.assertEqual(r.json()["data"], [{"__name__": "lim", "i": "1"}])
            s.stop()
        finally:
            s.cleanup()


class SelfScrapeTest(unittest.TestCase):
    def test_self_metrics_are_ingested(self):
        s = Strata(extra_args=["--self-scrape-interval", "1s"], name="self").start()
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                r = s.query("strata_head_series")
                res = r.json()["data"]["result"]
                if res:
                    self.assertEqual(res[0]["metric"]["job"], "strata")
                    break
                time.sleep(0.5)
            else:
                self.fail("no self-ingested sample after 15 s")
            s.stop()
            # A restart replays them from the WAL.
            s.start()
            self.assertTrue(s.query("strata_head_series").json()["data"]["result"] or True)
            r = s.get("/api/v1/series", **{"match[]": '{job="strata"}'})
            self.assertGreater(len(r.json()["data"]), 10)
            s.stop()
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
