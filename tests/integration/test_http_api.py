"""The HTTP API of a real `strata serve`: remote write in, Prometheus-shaped JSON out (compared
with the exact shapes and number formatting of Prometheus' API), and a clear 400 for every kind
of bad input, with the server still healthy afterwards. Fast: also runs under the sanitizers."""

import os
import re
import struct
import sys
import time
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import (NORMAL_NAN, RW_HEADERS, STALE_NAN, Strata,  # noqa: E402
                            encode_write_request, prom_float)

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
S0 = T0 // 1000

# Values written one a second to odd{job="x"} from T0, each to come back exactly as Prometheus
# formats it (shortest round-trip digits; exponent form below 1e-6 and from 1e21).
ODD_VALUES = [-0.0, 1e308, 0.1, STALE_NAN, 5e-324, NORMAL_NAN, float("inf"), float("-inf"), 1e-7,
              123456789.125, -2.5e-5, 1.7976931348623157e308, 1e21, 1.2345678901234567e20, 1e-6,
              9.99e-7, 42.0, 1 / 3]
STALE_AT = ODD_VALUES.index(STALE_NAN)


def is_stale(v):
    return isinstance(v, int) and v == STALE_NAN


class HttpApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="api")
        try:
            cls.s.start()
            r = cls.s.write([
                ({"__name__": "up", "job": "api", "instance": "a:1"}, [(T0, 1.0), (T0 + 15000, 1.0)]),
                ({"__name__": "up", "job": "api", "instance": "b:1"}, [(T0, 0.0)]),
                ({"__name__": "up", "job": "web", "instance": "c:1"}, [(T0 + 15000, 1.0)]),
                ({"__name__": "odd", "job": "x"}, [(T0 + i * 1000, v) for i, v in enumerate(ODD_VALUES)]),
            ])
            assert r.status_code == 204, "setup write: HTTP %d %s" % (r.status_code, r.text)
        except BaseException:
            cls.s.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.s.stop()
            assert rc == 0, "strata exited with %s on SIGTERM:\n%s" % (rc, cls.s.log()[-5000:])
        finally:
            cls.s.cleanup()

    def api(self, path, method="GET", params=None, **kw):
        """(status code, JSON body). params may be a list of pairs (for repeated match[])."""
        p = params if params is not None else kw
        if method == "POST":
            r = requests.post(self.s.url + path, data=p, timeout=10)
        else:
            r = requests.get(self.s.url + path, params=p, timeout=10)
        try:
            return r.status_code, r.json()
        except ValueError:
            self.fail("%s %s %s: HTTP %d, not JSON: %r" % (method, path, p, r.status_code, r.text[:300]))

    def assertApiError(self, code, body, want_code=400, want_type="bad_data"):
        self.assertEqual(code, want_code, body)
        self.assertEqual(set(body), {"status", "errorType", "error"}, body)
        self.assertEqual(body["status"], "error")
        self.assertEqual(body["errorType"], want_type, body)
        self.assertTrue(body["error"])

    # ---- instant queries ----------------------------------------------------------------------

    def test_instant_query_exact_shape(self):
        code, body = self.api("/api/v1/query", query='up{job="api"}', time=str(S0 + 15))
        self.assertEqual(code, 200)
        self.assertEqual(body, {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a:1", "job": "api"}, "value": [S0 + 15, "1"]},
            # 15 s old: inside the 5 m lookback, stamped with the query time.
            {"metric": {"__name__": "up", "instance": "b:1", "job": "api"}, "value": [S0 + 15, "0"]},
        ]}})
        # The same instant as RFC 3339 (UTC, with fraction, with a zone offset), with a
        # fractional unix time, and as a POST form: the same answer.
        for t in ["2023-11-14T22:13:35Z", "2023-11-14T22:13:35.000Z", "2023-11-14T23:13:35+01:00",
                  "%d.000" % (S0 + 15)]:
            with self.subTest(time=t):
                code, body2 = self.api("/api/v1/query", query='up{job="api"}', time=t)
                self.assertEqual((code, body2), (200, body))
        code, body2 = self.api("/api/v1/query", method="POST", query='up{job="api"}',
                               time="2023-11-14T22:13:35Z")
        self.assertEqual((code, body2), (200, body))

    def test_fractional_query_time(self):
        code, body = self.api("/api/v1/query", query='up{instance="a:1"}', time="%d.120" % (S0 + 15))
        self.assertEqual(code, 200)
        self.assertEqual(body["data"]["result"][0]["value"], [S0 + 15.12, "1"])

    def test_lookback(self):
        # up's newest samples are at T0+15s (a:1, c:1) and T0 (b:1).
        last = S0 + 15
        _, body = self.api("/api/v1/query", query="up", time=str(last + 300 - 1))
        self.assertEqual(sorted(r["metric"]["instance"] for r in body["data"]["result"]), ["a:1", "c:1"],
                         "a sample 4m59s old is inside the lookback; b:1's, 5m14s old, is not")
        _, body = self.api("/api/v1/query", query="up", time=str(last + 300 + 1))
        self.assertEqual(body["data"]["result"], [], "a sample older than 5 m must not be returned")
        _, body = self.api("/api/v1/query", query="up", time=str(S0 - 1))
        self.assertEqual(body["data"]["result"], [], "no sample before the first one")

    def test_offset_and_at(self):
        t = S0 + 15 + 300 + 1  # everything is out of the lookback here
        _, body = self.api("/api/v1/query", query="up offset 5m", time=str(t))
        self.assertEqual(sorted((r["metric"]["instance"], r["value"][0], r["value"][1])
                                for r in body["data"]["result"]),
                         [("a:1", t, "1"), ("b:1", t, "0"), ("c:1", t, "1")])
        _, body = self.api("/api/v1/query", query="up offset 5m1s", time=str(t))
        self.assertEqual(len(body["data"]["result"]), 3)
        _, body = self.api("/api/v1/query", query="up offset 10m", time=str(t))
        self.assertEqual(body["data"]["result"], [], "window (t-15m, t-10m] holds no sample")
        _, body = self.api("/api/v1/query", query="up @ %d" % (S0 + 15), time=str(t + 9999))
        self.assertEqual(sorted(r["value"][1] for r in body["data"]["result"]), ["0", "1", "1"])
        self.assertTrue(all(r["value"][0] == t + 9999 for r in body["data"]["result"]))
        # A range selector with offset returns the raw samples of the shifted window.
        _, body = self.api("/api/v1/query", query='up{instance="a:1"}[1m] offset 1m', time=str(S0 + 75))
        self.assertEqual(body["data"]["result"][0]["values"], [[S0, "1"], [S0 + 15, "1"]])

    # ---- values -------------------------------------------------------------------------------

    def expected_odd_points(self):
        return [[S0 + i, prom_float(v)] for i, v in enumerate(ODD_VALUES) if not is_stale(v)]

    def assertNoValueMismatch(self, got):
        """Names every written value that came back differently from Prometheus' formatting."""
        bad = []
        for w in self.expected_odd_points():
            g = next((p for p in got if p[0] == w[0]), None)
            if g != w:
                i = w[0] - S0
                bad.append("  value #%d %r at %d: Prometheus writes %r, got %r"
                           % (i, ODD_VALUES[i], w[0], w[1], g[1][:60] if g else None))
        if bad:
            self.fail("%d values differ from Prometheus' JSON formatting:\n%s" % (len(bad), "\n".join(bad)))

    def test_values_are_exact_through_query_range(self):
        n = len(ODD_VALUES)
        code, body = self.api("/api/v1/query_range", query="odd", start=str(S0), end=str(S0 + n - 1), step="1")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["data"]["resultType"], "matrix")
        [res] = body["data"]["result"]
        self.assertEqual(res["metric"], {"__name__": "odd", "job": "x"})
        got = res["values"]
        self.assertNoValueMismatch(got)
        # At the staleness marker the series has no point, as in Prometheus.
        self.assertNotIn(S0 + STALE_AT, [p[0] for p in got], "the staleness marker was returned")
        self.assertEqual(got, self.expected_odd_points())

    def test_values_are_exact_through_range_selector(self):
        _, body = self.api("/api/v1/query", query="odd[1m]", time=str(S0 + len(ODD_VALUES)))
        self.assertEqual(body["data"]["resultType"], "matrix")
        got = body["data"]["result"][0]["values"]
        self.assertNoValueMismatch(got)
        self.assertEqual(got, self.expected_odd_points())
        # Right after the stale marker the series has no instant value; a normal NaN is a value.
        _, body = self.api("/api/v1/query", query="odd", time="%d.500" % (S0 + STALE_AT))
        self.assertEqual(body["data"]["result"], [])
        i = ODD_VALUES.index(NORMAL_NAN)
        _, body = self.api("/api/v1/query", query="odd", time=str(S0 + i))
        self.assertEqual(body["data"]["result"][0]["value"], [S0 + i, "NaN"])

    # ---- range queries ------------------------------------------------------------------------

    def test_query_range_get_and_post(self):
        params = {"query": 'up{instance="a:1"}', "start": str(S0), "end": str(S0 + 30), "step": "15s"}
        code, body = self.api("/api/v1/query_range", params=params)
        self.assertEqual(code, 200)
        self.assertEqual(body, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up", "instance": "a:1", "job": "api"},
             "values": [[S0, "1"], [S0 + 15, "1"], [S0 + 30, "1"]]}]}})
        code, body2 = self.api("/api/v1/query_range", method="POST", params=params)
        self.assertEqual((code, body2), (200, body))
        # RFC 3339 bounds, a float step in seconds.
        code, body3 = self.api("/api/v1/query_range", query='up{instance="a:1"}', start="2023-11-14T22:13:20Z",
                               end="2023-11-14T22:13:50Z", step="15")
        self.assertEqual((code, body3), (200, body))
        # Series are sorted by labels; steps where a series has no value are left out.
        code, body = self.api("/api/v1/query_range", query="up", start=str(S0 - 15), end=str(S0 + 15), step="15s")
        self.assertEqual([(r["metric"]["instance"], r["values"]) for r in body["data"]["result"]],
                         [("a:1", [[S0, "1"], [S0 + 15, "1"]]), ("b:1", [[S0, "0"], [S0 + 15, "0"]]),
                          ("c:1", [[S0 + 15, "1"]])])

    def test_query_range_errors(self):
        for name, params in {
            "step 0": dict(query="up", start="1", end="2", step="0"),
            "negative step": dict(query="up", start="1", end="2", step="-1"),
            "missing step": dict(query="up", start="1", end="2"),
            "end before start": dict(query="up", start="3", end="2", step="1"),
            "bad start": dict(query="up", start="soon", end="2", step="1"),
            "missing query": dict(start="1", end="2", step="1"),
        }.items():
            for method in ("GET", "POST"):
                with self.subTest(name, method=method):
                    code, body = self.api("/api/v1/query_range", method=method, params=params)
                    self.assertApiError(code, body)

    # ---- metadata -----------------------------------------------------------------------------

    def test_series(self):
        matches = [("match[]", 'up{job="web"}'), ("match[]", "odd"), ("match[]", '{instance="c:1"}')]
        want = [{"__name__": "odd", "job": "x"}, {"__name__": "up", "instance": "c:1", "job": "web"}]
        for method in ("GET", "POST"):
            with self.subTest(method=method):
                code, body = self.api("/api/v1/series", method=method, params=matches)
                self.assertEqual(code, 200)
                self.assertEqual(body, {"status": "success", "data": want})
        code, body = self.api("/api/v1/series", params=[("match[]", 'up{job="api"}'), ("match[]", 'up{instance=~"b.*"}')])
        self.assertEqual(body["data"], [{"__name__": "up", "instance": "a:1", "job": "api"},
                                        {"__name__": "up", "instance": "b:1", "job": "api"}])
        code, body = self.api("/api/v1/series", params=[("match[]", "no_such_metric")])
        self.assertEqual((code, body), (200, {"status": "success", "data": []}))
        code, body = self.api("/api/v1/series")
        self.assertApiError(code, body)
        code, body = self.api("/api/v1/series", params=[("match[]", "up{")])
        self.assertApiError(code, body)

    def test_labels_and_values(self):
        code, body = self.api("/api/v1/labels")
        self.assertEqual(code, 200)
        self.assertEqual(body["status"], "success")
        self.assertEqual(body["data"], sorted(set(body["data"])))
        self.assertTrue({"__name__", "instance", "job"} <= set(body["data"]))
        _, body = self.api("/api/v1/labels", params=[("match[]", "up"), ("match[]", "odd")])
        self.assertEqual(body, {"status": "success", "data": ["__name__", "instance", "job"]})
        _, body = self.api("/api/v1/labels", params=[("match[]", "odd")])
        self.assertEqual(body["data"], ["__name__", "job"])

        code, body = self.api("/api/v1/label/job/values")
        self.assertEqual(code, 200)
        self.assertEqual(body["data"], sorted(set(body["data"])))
        self.assertTrue({"api", "web", "x"} <= set(body["data"]))
        _, body = self.api("/api/v1/label/job/values", params=[("match[]", "up"), ("match[]", "odd")])
        self.assertEqual(body, {"status": "success", "data": ["api", "web", "x"]})
        _, body = self.api("/api/v1/label/instance/values", params=[("match[]", 'up{job="api"}')])
        self.assertEqual(body["data"], ["a:1", "b:1"])
        _, body = self.api("/api/v1/label/__name__/values", params=[("match[]", '{job=~"api|x"}')])
        self.assertEqual(body["data"], ["odd", "up"])
        _, body = self.api("/api/v1/label/nonexistent/values")
        self.assertEqual(body, {"status": "success", "data": []})

    def test_tsdb_status(self):
        code, body = self.api("/api/v1/status/tsdb", limit="2")
        self.assertEqual(code, 200)
        d = body["data"]
        self.assertGreaterEqual(d["headStats"]["numSeries"], 4)
        self.assertEqual(d["seriesCountByMetricName"][0], {"name": "up", "value": 3})
        self.assertLessEqual(len(d["seriesCountByLabelValuePair"]), 2)
        names = {x["name"]: x["value"] for x in d["labelValueCountByLabelName"]}
        self.assertIn("__name__", names)

    # ---- PromQL beyond selectors (when the PromQL engine is in) --------------------------------

    def test_explain(self):
        code, body = self.api("/api/v1/query", query='sum by (job) (rate(up{job=~"a.*"}[5m]))',
                              time=str(S0), explain="1")
        self.assertEqual(code, 200)
        plan = body["data"]["plan"]
        self.assertIn("Aggregate sum by (job)", plan)
        self.assertIn("RangeSelector: read (1699999700, 1700000000] range=300s series=2", plan)
        self.assertIn('postings job=~"a.*" (regex, JIT)', plan)

    def test_functions_and_operators(self):
        t = str(S0 + 15)
        _, body = self.api("/api/v1/query", query="count by (job) (up)", time=t)
        self.assertEqual({r["metric"]["job"]: r["value"][1] for r in body["data"]["result"]},
                         {"api": "2", "web": "1"})
        _, body = self.api("/api/v1/query", query='up{instance="a:1"} + on(job) group_left '
                           'count by (job) (up)', time=t)
        self.assertEqual(body["data"]["result"][0]["value"][1], "3")
        code, body = self.api("/api/v1/query", query="up + on(job) up", time=t)
        self.assertApiError(code, body, 422, "execution")

    # ---- query errors -------------------------------------------------------------------------

    def test_bad_queries(self):
        code, body = self.api("/api/v1/query", query="sum(up")
        self.assertApiError(code, body)
        self.assertRegex(body["error"], r"(^|: )1:7: parse error", "no line:column in the message")
        code, body = self.api("/api/v1/query", query="sum(\nodd")
        self.assertApiError(code, body)
        self.assertRegex(body["error"], r"(^|: )2:\d+: parse error", "no line:column in the message")
        code, body = self.api("/api/v1/query", query='up{job="a"')
        self.assertApiError(code, body)
        self.assertRegex(body["error"], r"\b1:\d+\b")
        code, body = self.api("/api/v1/query", method="POST", query="up[5m")
        self.assertApiError(code, body)
        code, body = self.api("/api/v1/query")
        self.assertApiError(code, body)
        self.assertIn("query", body["error"])
        code, body = self.api("/api/v1/query", method="POST")
        self.assertApiError(code, body)
        code, body = self.api("/api/v1/query", query="up", time="yesterday")
        self.assertApiError(code, body)
        self.assertIn("time", body["error"])

    # ---- remote write errors ------------------------------------------------------------------

    def test_bad_remote_writes(self):
        sorted_body = encode_write_request([({"__name__": "bad_rw", "a": "1"}, [(T0, 1.0)])])
        cases = {
            "bad snappy": (b"\x00\x01garbage", "snappy"),
            "snappy of a truncated body": (snappy.compress(sorted_body)[:-3], "snappy"),
            "bad protobuf": (snappy.compress(b"\xff\xff\xff\xff\xff\xff"), "protobuf"),
            "truncated protobuf": (snappy.compress(sorted_body[:-4]), "protobuf"),
            "unsorted labels": (snappy.compress(encode_write_request(
                [([("job", "a"), ("__name__", "bad_rw")], [(T0, 1.0)])])), "sorted"),
            "duplicate label": (snappy.compress(encode_write_request(
                [([("__name__", "bad_rw"), ("a", "1"), ("a", "2")], [(T0, 1.0)])])), "duplicate"),
            "invalid utf-8 value": (snappy.compress(encode_write_request(
                [([("__name__", "bad_rw"), ("a", b"\xff\xfe")], [(T0, 1.0)])])), "UTF-8"),
            "invalid utf-8 name": (snappy.compress(encode_write_request(
                [([("__name__", "bad_rw"), (b"\xc3\x28", "v")], [(T0, 1.0)])])), "UTF-8|label name"),
        }
        for name, (body, word) in cases.items():
            with self.subTest(name):
                r = self.s.post_write_body(body)
                self.assertEqual(r.status_code, 400, "%s: HTTP %d %r" % (name, r.status_code, r.text))
                self.assertRegex(r.text.lower(), word.lower(), "the reason does not say what is wrong")
        # Nothing of those requests was stored.
        _, body = self.api("/api/v1/series", params=[("match[]", "bad_rw")])
        self.assertEqual(body["data"], [])
        # A request with one bad label set stores nothing of its good series either.
        r = self.s.post_write_body(snappy.compress(encode_write_request([
            ({"__name__": "good_one"}, [(T0, 1.0)]),
            ([("__name__", "m"), ("a", "1"), ("a", "2")], [(T0, 1.0)])])))
        self.assertEqual(r.status_code, 400)
        _, body = self.api("/api/v1/series", params=[("match[]", "good_one")])
        self.assertEqual(body["data"], [])
        # An unknown protobuf message type is refused with 415.
        h = dict(RW_HEADERS)
        h["Content-Type"] = "application/x-protobuf;proto=foo.Bar"
        self.assertEqual(self.s.post_write_body(snappy.compress(b""), h).status_code, 415)
        self.assertEqual(requests.get(self.s.url + "/-/healthy", timeout=5).status_code, 200)

    def test_out_of_order_keeps_the_valid_samples(self):
        r = self.s.write([({"__name__": "ooo", "k": "a"}, [(T0 + 5000, 1.0)]),
                          ({"__name__": "ooo", "k": "b"}, [(T0 + 5000, 10.0)])])
        self.assertEqual(r.status_code, 204, r.text)
        r = self.s.write([({"__name__": "ooo", "k": "a"}, [(T0 + 1000, 2.0), (T0 + 9000, 3.0)]),
                          ({"__name__": "ooo", "k": "b"}, [(T0 + 6000, 11.0), (T0 + 7000, 12.0)])])
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn("out of order", r.text.lower())
        # The reply names the first rejected sample: its series and timestamp.
        self.assertIn("ooo", r.text)
        self.assertIn(str(T0 + 1000), r.text)
        _, body = self.api("/api/v1/query", query="ooo[1m]", time=str(S0 + 10))
        got = {x["metric"]["k"]: x["values"] for x in body["data"]["result"]}
        self.assertEqual(got, {"a": [[S0 + 5, "1"], [S0 + 9, "3"]],
                               "b": [[S0 + 5, "10"], [S0 + 6, "11"], [S0 + 7, "12"]]})
        # Resending an identical sample is not an error (Prometheus retries do that).
        r = self.s.write([({"__name__": "ooo", "k": "b"}, [(T0 + 7000, 12.0)])])
        self.assertEqual(r.status_code, 204, r.text)

    def test_remote_write_2(self):
        # io.prometheus.write.v2.Request, hand-encoded: symbols table, labels_refs pairs, samples.
        from strata_harness import _field_bytes, _varint
        symbols = ["", "__name__", "rw2_metric", "job", "rw2"]
        body = b"".join(_field_bytes(4, s.encode()) for s in symbols)
        refs = b"".join(_varint(x) for x in [1, 2, 3, 4])

        def sample(t, v):
            return b"\x09" + struct.pack("<d", v) + _varint(0x10) + _varint(t)
        ts = _field_bytes(1, refs) + _field_bytes(2, sample(T0, 1.5)) + _field_bytes(2, sample(T0 + 1000, 2.5))
        body += _field_bytes(5, ts)
        h = dict(RW_HEADERS)
        h["Content-Type"] = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        h["X-Prometheus-Remote-Write-Version"] = "2.0.0"
        r = self.s.post_write_body(snappy.compress(body), h)
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(r.headers["X-Prometheus-Remote-Write-Samples-Written"], "2")
        _, q = self.api("/api/v1/query", query="rw2_metric[5s]", time=str(S0 + 1))
        self.assertEqual(q["data"]["result"][0]["metric"], {"__name__": "rw2_metric", "job": "rw2"})
        self.assertEqual([v[1] for v in q["data"]["result"][0]["values"]], ["1.5", "2.5"])
        # A reference past the symbol table is a 400 that names the problem.
        bad = b"".join(_field_bytes(4, s.encode()) for s in symbols) + \
            _field_bytes(5, _field_bytes(1, b"".join(_varint(x) for x in [1, 9])))
        r = self.s.post_write_body(snappy.compress(bad), h)
        self.assertEqual(r.status_code, 400)
        self.assertIn("past the 5 symbols", r.text)

    # ---- /metrics and health ------------------------------------------------------------------

    SAMPLE_LINE = re.compile(
        r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
        r'(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
        r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*,?)?\})?'
        r' (?P<value>[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))(?: -?[0-9]+)?$')

    def test_metrics_exposition(self):
        r = requests.get(self.s.url + "/metrics", timeout=10)
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"), r.headers["Content-Type"])
        self.assertTrue(r.text.endswith("\n"))
        seen, types = set(), {}
        for line in r.text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$", line)
                if line.startswith(("# HELP", "# TYPE")):
                    self.assertIsNotNone(m, "bad comment line: %r" % line)
                    if m.group(1) == "TYPE":
                        self.assertIn(m.group(3), ("counter", "gauge", "histogram", "summary", "untyped"), line)
                        self.assertNotIn(m.group(2), types, "TYPE given twice: %r" % line)
                        types[m.group(2)] = m.group(3)
                continue
            m = self.SAMPLE_LINE.match(line)
            self.assertIsNotNone(m, "not a valid exposition sample line: %r" % line)
            key = line.rsplit(" ", 1)[0]
            self.assertNotIn(key, seen, "series exposed twice: %r" % line)
            seen.add(key)
            float(m.group("value").replace("Inf", "inf"))
        names = {k.split("{")[0] for k in seen}
        self.assertIn("strata_head_series", names)
        head = [l for l in r.text.splitlines() if l.startswith("strata_head_series ")]
        self.assertEqual(len(head), 1)
        self.assertGreaterEqual(float(head[0].split()[1]), 4)
        self.assertEqual(types.get("strata_head_series"), "gauge")

    def test_health(self):
        for path in ("/-/healthy", "/-/ready"):
            r = requests.get(self.s.url + path, timeout=5)
            self.assertEqual(r.status_code, 200, path)
        self.assertEqual(requests.get(self.s.url + "/nope", timeout=5).status_code, 404)
        self.assertEqual(requests.get(self.s.url + "/api/v1/write", timeout=5).status_code, 405)


class IngestLimitsTest(unittest.TestCase):
    def test_limits_are_enforced_and_counted(self):
        s = Strata(extra_args=["--self-scrape-interval", "0", "--ingest-max-series-per-metric", "1",
                               "--ingest-max-labels", "3"], name="limits")
        try:
            s.start()
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
            r = s.get("/api/v1/series", **{"match[]": '{__name__=~"lim.*"}'})
            self.assertEqual(r.json()["data"], [{"__name__": "lim", "i": "1"}])
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


class SelfScrapeTest(unittest.TestCase):
    def test_self_metrics_are_ingested(self):
        s = Strata(extra_args=["--self-scrape-interval", "1s"], name="self")
        try:
            s.start()
            time.sleep(3)
            deadline = time.time() + 10
            while True:
                res = s.query("strata_head_series").json()["data"]["result"]
                if res or time.time() > deadline:
                    break
                time.sleep(0.5)
            self.assertTrue(res, "no self-ingested strata_head_series ~3 s after start")
            self.assertEqual(len(res), 1, res)
            self.assertEqual(res[0]["metric"].get("job"), "strata", res)
            self.assertGreater(float(res[0]["value"][1]), 0)
            # Several scrapes a second apart: a range selector over the last 3 s has more than one.
            r = s.query('strata_head_series{job="strata"}[3s]').json()
            self.assertGreaterEqual(len(r["data"]["result"][0]["values"]), 2, r)
            self.assertEqual(s.stop(), 0)
            # A restart replays them from the WAL.
            s.start()
            r = s.get("/api/v1/series", **{"match[]": '{job="strata"}'})
            self.assertGreater(len(r.json()["data"]), 10)
            self.assertEqual(s.stop(), 0)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
