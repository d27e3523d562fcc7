"""Exemplars end to end against a real `strata serve`: sent with remote write 1.0
(TimeSeries.exemplars), remote write 2.0 (exemplars with symbol references) and OTLP/HTTP (data
point exemplars with trace and span ids), read back through GET and POST /api/v1/query_exemplars in
Prometheus' JSON shape, checked against the validation rules (128-character label limit, order per
series, unknown series), counted in /metrics, bounded by --max-exemplars, and still there after a
restart (they are replayed from the WAL)."""

import os
import struct
import sys
import time
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, RW_HEADERS, _varint, _field_bytes, _bytes, encode_sample, prom_ts  # noqa: E402

T0 = (int(time.time()) - 600) * 1000  # ten minutes ago, in ms


# ---- encoders (field numbers from remote.proto / remote_v2.proto / OTLP metrics.proto) ---------

def rw1_label(name, value):
    return _field_bytes(1, _bytes(name)) + _field_bytes(2, _bytes(value))


def rw1_exemplar(labels, value, ts):
    """Exemplar{labels=1 repeated Label, value=2 double, timestamp=3 int64}."""
    out = b"".join(_field_bytes(1, rw1_label(n, v)) for n, v in labels)
    return out + b"\x11" + struct.pack("<d", value) + b"\x18" + _varint(ts)


def rw1_request(series):
    """series: [(labels dict, [(t, v)], [(exemplar labels list, value, ts)])]"""
    out = bytearray()
    for labels, samples, exemplars in series:
        ts = bytearray()
        for n, v in sorted(labels.items()):
            ts += _field_bytes(1, rw1_label(n, v))
        for t, v in samples:
            ts += _field_bytes(2, encode_sample(t, float(v)))  # an int would be a raw bit pattern
        for ex in exemplars:
            ts += _field_bytes(3, rw1_exemplar(*ex))
        out += _field_bytes(1, bytes(ts))
    return snappy.compress(bytes(out))


def packed_varints(vals):
    return b"".join(_varint(v) for v in vals)


def rw2_request(series):
    """Same input as rw1_request, encoded as io.prometheus.write.v2.Request."""
    symbols = [""]
    index = {"": 0}

    def ref(s):
        if s not in index:
            index[s] = len(symbols)
            symbols.append(s)
        return index[s]

    ts_out = bytearray()
    for labels, samples, exemplars in series:
        ts = bytearray()
        refs = []
        for n, v in sorted(labels.items()):
            refs += [ref(n), ref(v)]
        ts += _field_bytes(1, packed_varints(refs))
        for t, v in samples:
            ts += _field_bytes(2, b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(t))
        for ex_labels, v, t in exemplars:
            xr = []
            for n, lv in ex_labels:
                xr += [ref(n), ref(lv)]
            ex = _field_bytes(1, packed_varints(xr)) + b"\x11" + struct.pack("<d", v) + b"\x18" + _varint(t)
            ts += _field_bytes(4, ex)
        ts_out += _field_bytes(5, bytes(ts))
    out = b"".join(_field_bytes(4, s.encode()) for s in symbols) + bytes(ts_out)
    return snappy.compress(out)


RW2_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    "X-Prometheus-Remote-Write-Version": "2.0.0",
}


class ExemplarTest(unittest.TestCase):
    def setUp(self):
        self.s = Strata(extra_args=["--self-scrape-interval", "0"], name="exemplars").start()

    def tearDown(self):
        try:
            self.s.stop()
        finally:
            self.s.cleanup()

    def post_rw1(self, series):
        return self.s.post_write_body(rw1_request(series))

    def exemplars(self, query, method="GET", **params):
        params["query"] = query
        if method == "GET":
            r = self.s.session.get(self.s.url + "/api/v1/query_exemplars", params=params, timeout=30)
        else:
            r = self.s.session.post(self.s.url + "/api/v1/query_exemplars", data=params, timeout=30)
        return r

    def ok_exemplars(self, query, **params):
        r = self.exemplars(query, **params)
        self.assertEqual(r.status_code, 200, r.text)
        body = r.json()
        self.assertEqual(body["status"], "success", body)
        return body["data"]

    def metric(self, name, labels=""):
        text = self.s.session.get(self.s.url + "/metrics", timeout=30).text
        for line in text.splitlines():
            if line.startswith(name + labels + " "):
                return float(line.split()[-1])
        return None

    def test_remote_write_1_exemplars_query_and_restart(self):
        trace = [("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), ("span_id", "00f067aa0ba902b7")]
        r = self.post_rw1([
            ({"__name__": "http_requests_total", "job": "api", "code": "200"},
             [(T0, 1), (T0 + 15000, 2)],
             [(trace, 1.5, T0), ([("trace_id", "abc")], 2.0, T0 + 15000)]),
            ({"__name__": "http_requests_total", "job": "api", "code": "500"},
             [(T0, 7)], [([("trace_id", "def")], 7.0, T0)]),
            ({"__name__": "other_metric", "job": "api"}, [(T0, 1)], [([("trace_id", "zzz")], 1.0, T0)]),
        ])
        self.assertEqual(r.status_code, 204, r.text)

        data = self.ok_exemplars('http_requests_total{job="api"}', start="%.3f" % (T0 / 1000 - 60),
                                 end="%.3f" % (T0 / 1000 + 60))
        expected = [
            {"seriesLabels": {"__name__": "http_requests_total", "code": "200", "job": "api"},
             "exemplars": [
                 {"labels": {"span_id": "00f067aa0ba902b7", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
                  "value": "1.5", "timestamp": T0 / 1000},
                 {"labels": {"trace_id": "abc"}, "value": "2", "timestamp": (T0 + 15000) / 1000}]},
            {"seriesLabels": {"__name__": "http_requests_total", "code": "500", "job": "api"},
             "exemplars": [{"labels": {"trace_id": "def"}, "value": "7", "timestamp": T0 / 1000}]},
        ]
        self.assertEqual(data, expected)
        # The same through POST, without start/end (the whole time range).
        r = self.exemplars('http_requests_total{job="api"}', method="POST")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["data"], expected)
        # Timestamps are JSON numbers with millisecond precision, as Prometheus writes them.
        self.assertIn('"timestamp":%s' % prom_ts(T0 + 15000), r.text)
        # Every selector of an expression counts, as Prometheus' ExtractSelectors.
        data = self.ok_exemplars('sum(rate(http_requests_total{code="500"}[5m])) / other_metric')
        self.assertEqual([d["seriesLabels"]["__name__"] for d in data], ["http_requests_total", "other_metric"])
        # A time range that excludes the newer exemplar of the first series.
        data = self.ok_exemplars('http_requests_total{code="200"}', start="%.3f" % (T0 / 1000),
                                 end="%.3f" % (T0 / 1000 + 1))
        self.assertEqual(len(data), 1)
        self.assertEqual([e["value"] for e in data[0]["exemplars"]], ["1.5"])
        # Nothing matches: an empty list, not null.
        self.assertEqual(self.ok_exemplars('nothing_here'), [])
        self.assertEqual(self.metric("strata_exemplars_in_storage"), 4)
        self.assertEqual(self.metric("strata_exemplars_series_in_storage"), 3)

        # A restart replays them from the WAL.
        self.s.stop()
        self.s.start()
        data = self.ok_exemplars('http_requests_total{job="api"}')
        self.assertEqual(data, expected)
        self.assertEqual(self.metric("strata_exemplars_in_storage"), 4)
        # And after a kill -9 too (the WAL record is written before the answer).
        r = self.post_rw1([({"__name__": "other_metric", "job": "api"}, [(T0 + 30000, 2)],
                            [([("trace_id", "after-restart")], 2.0, T0 + 30000)])])
        self.assertEqual(r.status_code, 204, r.text)
        self.s.kill9()
        self.s.start()
        data = self.ok_exemplars('other_metric')
        self.assertEqual([e["labels"]["trace_id"] for e in data[0]["exemplars"]], ["zzz", "after-restart"])

    def test_validation(self):
        series = {"__name__": "m", "job": "v"}
        r = self.post_rw1([(series, [(T0, 1), (T0 + 1000, 2), (T0 + 2000, 3)], [
            ([("trace_id", "x" * 120)], 1.0, T0),             # 8 + 120 = 128 characters: accepted
            ([("trace_id", "x" * 121)], 1.0, T0 + 1000),      # 129: too long
            ([("trace_id", "é" * 120)], 1.0, T0 + 1000),      # 128 characters in 248 bytes: accepted
            ([("trace_id", "old")], 1.0, T0 + 500),           # older than the newest: out of order
            ([("trace_id", "é" * 120)], 1.0, T0 + 1000),      # the same again: a duplicate, stored once
            ([("a", "1"), ("a", "2")], 1.0, T0 + 2000),       # a name twice
            ([("", "1")], 1.0, T0 + 2000),                    # an empty name
        ])])
        self.assertEqual(r.status_code, 204, r.text)  # exemplar problems never fail the samples
        data = self.ok_exemplars("m")
        self.assertEqual([e["labels"]["trace_id"] for e in data[0]["exemplars"]], ["x" * 120, "é" * 120])
        self.assertEqual(self.metric("strata_exemplars_rejected_total", '{reason="out_of_order"}'), 1)
        self.assertEqual(self.metric("strata_exemplars_rejected_total", '{reason="invalid"}'), 3)
        # An exemplar for a series without any sample is refused (unknown series), as Prometheus.
        r = self.post_rw1([({"__name__": "no_samples", "job": "v"}, [], [([("trace_id", "t")], 1.0, T0)])])
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.ok_exemplars("no_samples"), [])
        self.assertEqual(self.metric("strata_exemplars_rejected_total", '{reason="invalid"}'), 4)
        # Samples of a request with bad exemplars are stored.
        body = self.s.query("m", t="%.3f" % (T0 / 1000 + 2)).json()
        self.assertEqual(body["data"]["result"][0]["value"][1], "3")

    def test_bad_queries(self):
        r = self.exemplars("sum(")
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["errorType"], "bad_data")
        r = self.s.session.get(self.s.url + "/api/v1/query_exemplars", timeout=30)
        self.assertEqual(r.status_code, 400)
        self.assertIn("query", r.json()["error"])
        r = self.exemplars("up", start="200", end="100")
        self.assertEqual(r.status_code, 400)
        self.assertIn("end timestamp must not be before start time", r.json()["error"])
        r = self.exemplars("up", start="yesterday")
        self.assertEqual(r.status_code, 400)

    def test_remote_write_2_exemplars(self):
        series = [({"__name__": "rw2_total", "job": "two"}, [(T0, 1.0), (T0 + 1000, 2.0)],
                   [([("trace_id", "t1"), ("span_id", "s1")], 1.0, T0),
                    ([("trace_id", "t2")], 2.0, T0 + 1000)])]
        r = self.s.post_write_body(rw2_request(series), headers=RW2_HEADERS)
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(r.headers["X-Prometheus-Remote-Write-Samples-Written"], "2")
        self.assertEqual(r.headers["X-Prometheus-Remote-Write-Exemplars-Written"], "2")
        data = self.ok_exemplars('rw2_total')
        self.assertEqual(data, [{"seriesLabels": {"__name__": "rw2_total", "job": "two"}, "exemplars": [
            {"labels": {"span_id": "s1", "trace_id": "t1"}, "value": "1", "timestamp": T0 / 1000},
            {"labels": {"trace_id": "t2"}, "value": "2", "timestamp": (T0 + 1000) / 1000}]}])
        # A label reference past the symbol table is a clear 400, nothing stored.
        bad = bytearray()
        ts = _field_bytes(1, packed_varints([1, 2])) + _field_bytes(2, b"\x09" + struct.pack("<d", 1) + b"\x10" + _varint(T0 + 5000))
        ts += _field_bytes(4, _field_bytes(1, packed_varints([1, 99])) + b"\x18" + _varint(T0 + 5000))
        bad += b"".join(_field_bytes(4, s) for s in (b"", b"__name__", b"rw2_total", b"job", b"two"))
        bad += _field_bytes(5, ts)
        r = self.s.post_write_body(snappy.compress(bytes(bad)), headers=RW2_HEADERS)
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn("exemplar 0: label reference 99 is past the 5 symbols", r.text)

    def test_otlp_exemplars(self):
        ns = T0 * 1_000_000
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        span = "00f067aa0ba902b7"

        def ex(v, t_ns, attrs=()):
            return {"timeUnixNano": str(t_ns), "asDouble": v, "traceId": trace, "spanId": span,
                    "filteredAttributes": [{"key": k, "value": {"stringValue": val}} for k, val in attrs]}

        body = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeMetrics": [{"metrics": [
                {"name": "orders", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                    {"timeUnixNano": str(ns), "asInt": "5",
                     "exemplars": [ex(1.0, ns, [("customer", "c-42")]),
                                   # attributes past 128 characters are dropped, the ids kept
                                   ex(2.0, ns + 1_000_000, [("big", "y" * 100)])]}]}},
                {"name": "temperature", "gauge": {"dataPoints": [
                    {"timeUnixNano": str(ns), "asDouble": 20.5, "exemplars": [ex(20.5, ns)]}]}},
                {"name": "latency", "unit": "s", "histogram": {"aggregationTemporality": 2, "dataPoints": [
                    {"timeUnixNano": str(ns), "count": "3", "sum": 5.5, "explicitBounds": [1, 2],
                     "bucketCounts": ["1", "1", "1"],
                     "exemplars": [ex(0.5, ns), ex(1.5, ns), ex(3.5, ns)]}]}},
            ]}]}]}
        r = self.s.session.post(self.s.url + "/v1/metrics", json=body, timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertNotIn("partialSuccess", r.json())
        data = self.ok_exemplars('orders_total')
        self.assertEqual(data, [{"seriesLabels": {"__name__": "orders_total", "job": "shop"}, "exemplars": [
            {"labels": {"customer": "c-42", "span_id": span, "trace_id": trace}, "value": "1",
             "timestamp": T0 / 1000},
            {"labels": {"span_id": span, "trace_id": trace}, "value": "2", "timestamp": (T0 + 1) / 1000}]}])
        # Gauges carry no exemplars in Prometheus' translation.
        self.assertEqual(self.ok_exemplars('temperature'), [])
        # Histogram exemplars land on the first bucket whose bound holds their value.
        data = self.ok_exemplars('latency_seconds_bucket')
        got = {d["seriesLabels"]["le"]: [e["value"] for e in d["exemplars"]] for d in data}
        self.assertEqual(got, {"1": ["0.5"], "2": ["1.5"], "+Inf": ["3.5"]})


class BoundedStoreTest(unittest.TestCase):
    def test_circular_buffer_keeps_the_newest(self):
        s = Strata(extra_args=["--self-scrape-interval", "0", "--max-exemplars", "5"], name="exemplars-ring").start()
        try:
            for i in range(8):
                r = s.post_write_body(rw1_request([
                    ({"__name__": "ring", "i": str(i % 3)}, [(T0 + i * 1000, i)],
                     [([("n", str(i))], float(i), T0 + i * 1000)])]))
                self.assertEqual(r.status_code, 204, r.text)
            data = s.session.get(s.url + "/api/v1/query_exemplars", params={"query": "ring"}, timeout=30).json()["data"]
            kept = sorted(int(e["labels"]["n"]) for d in data for e in d["exemplars"])
            self.assertEqual(kept, [3, 4, 5, 6, 7])
            s.stop()
            s.start()  # replay keeps the bound: the oldest are dropped again
            data = s.session.get(s.url + "/api/v1/query_exemplars", params={"query": "ring"}, timeout=30).json()["data"]
            self.assertEqual(sorted(int(e["labels"]["n"]) for d in data for e in d["exemplars"]), [3, 4, 5, 6, 7])
            text = s.session.get(s.url + "/metrics", timeout=30).text
            self.assertIn("strata_exemplars_max 5", text)
        finally:
            s.stop()
            s.cleanup()

    def test_disabled(self):
        s = Strata(extra_args=["--self-scrape-interval", "0", "--max-exemplars", "0"], name="exemplars-off").start()
        try:
            r = s.post_write_body(rw1_request([({"__name__": "off"}, [(T0, 1)], [([("t", "1")], 1.0, T0)])]))
            self.assertEqual(r.status_code, 204, r.text)
            data = s.session.get(s.url + "/api/v1/query_exemplars", params={"query": "off"}, timeout=30).json()
            self.assertEqual(data, {"status": "success", "data": []})
        finally:
            s.stop()
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
