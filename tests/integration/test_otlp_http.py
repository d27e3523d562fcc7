"""OTLP/HTTP metrics into a real `strata serve`: protobuf (hand-encoded from the field numbers in
WIRE-FORMATS.md section 2, so the server is checked against the wire format, not against its own
encoder), OTLP/JSON and gzip bodies posted to /v1/metrics, the ExportMetricsServiceResponse read
back, and every value checked through PromQL on /api/v1/query. Then, when npm can install it, the
OpenTelemetry JavaScript SDK itself exports a counter, a gauge and a histogram to Strata."""

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OTEL_JS = os.path.join(HERE, "otel-js")

# Points a minute in the past, so a query at "now" sees them within the 5-minute lookback.
T_MS = (int(time.time()) - 60) * 1000
T_NS = T_MS * 1_000_000
T_S = "%.3f" % (T_MS / 1000)


# ---- a protobuf encoder for the OTLP messages, from the field tables ---------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def f_len(num, payload):
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_fixed64(num, v):
    return varint((num << 3) | 1) + struct.pack("<Q", v)


def f_sfixed64(num, v):
    return varint((num << 3) | 1) + struct.pack("<q", v)


def f_double(num, v):
    return varint((num << 3) | 1) + struct.pack("<d", v)


def any_value(v):
    if isinstance(v, bool):
        return f_varint(2, 1 if v else 0)
    if isinstance(v, int):
        return f_varint(3, v)
    if isinstance(v, float):
        return f_double(4, v)
    return f_len(1, v.encode())


def key_value(k, v):
    return f_len(1, k.encode()) + f_len(2, any_value(v))


def number_point(t_ns, value, attrs=(), flags=0):
    out = b"".join(f_len(7, key_value(k, v)) for k, v in attrs)
    out += f_fixed64(3, t_ns)
    if isinstance(value, int):
        out += f_sfixed64(6, value)   # as_int
    elif value is not None:
        out += f_double(4, value)     # as_double
    if flags:
        out += f_varint(8, flags)
    return out


def histogram_point(t_ns, count, total, buckets, bounds, attrs=()):
    out = b"".join(f_len(9, key_value(k, v)) for k, v in attrs)
    out += f_fixed64(3, t_ns) + f_fixed64(4, count) + f_double(5, total)
    out += f_len(6, b"".join(struct.pack("<Q", b) for b in buckets))   # packed fixed64
    out += f_len(7, b"".join(struct.pack("<d", b) for b in bounds))    # packed double
    return out


def metric(name, unit, kind, points, temporality=2, monotonic=False):
    """kind: gauge (5), sum (7), histogram (9), exponential_histogram (10), summary (11)."""
    fields = {"gauge": 5, "sum": 7, "histogram": 9, "exponential_histogram": 10, "summary": 11}
    body = b"".join(f_len(1, p) for p in points)
    if kind in ("sum", "histogram", "exponential_histogram"):
        body += f_varint(2, temporality)
    if kind == "sum" and monotonic:
        body += f_varint(3, 1)
    return f_len(1, name.encode()) + f_len(3, unit.encode()) + f_len(fields[kind], body)


def request(resource_attrs, metrics):
    resource = b"".join(f_len(1, key_value(k, v)) for k, v in resource_attrs)
    scope = f_len(1, b"integration") + f_len(2, b"0.1")
    scope_metrics = f_len(1, scope) + b"".join(f_len(2, m) for m in metrics)
    return f_len(1, f_len(1, resource) + f_len(2, scope_metrics))


def parse_fields(data):
    """A protobuf message as {field number: [values]} (varints as ints, bytes as bytes)."""
    out, i = {}, 0
    while i < len(data):
        key, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, shift = 0, 0
            while True:
                b = data[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
        elif wt == 2:
            n, shift = 0, 0
            while True:
                b = data[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            v = data[i:i + n]
            i += n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
SERVICE = [("service.name", "checkout"), ("service.namespace", "shop"),
           ("service.instance.id", "pod-7"), ("deployment.environment", "test"), ("host.cpus", 8)]


class OtlpHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="otlp").start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def post(self, body, headers):
        return requests.post(self.s.url + "/v1/metrics", data=body, headers=headers, timeout=30)

    def values(self, q, t=T_S):
        """{sorted label tuple: float value} of an instant query."""
        r = self.s.query(q, t=t)
        body = r.json()
        self.assertEqual(body.get("status"), "success", body)
        return {tuple(sorted(x["metric"].items())): float(x["value"][1]) for x in body["data"]["result"]}

    def one(self, q, t=T_S):
        v = self.values(q, t)
        self.assertEqual(len(v), 1, "%s: %s" % (q, v))
        return list(v.values())[0]

    def test_protobuf_gauge_counter_histogram(self):
        body = request(SERVICE, [
            metric("process.memory.usage", "By", "gauge",
                   [number_point(T_NS, 1536.0, [("state", "used")]),
                    number_point(T_NS, 512, [("state", "free")])]),
            metric("http.server.requests", "{request}", "sum",
                   [number_point(T_NS, 42, [("http.route", "/cart"), ("http.method", "GET")])],
                   monotonic=True),
            metric("http.server.duration", "s", "histogram",
                   [histogram_point(T_NS, 10, 4.2, [2, 3, 4, 1], [0.1, 0.5, 1.0],
                                    [("http.route", "/cart")])]),
        ])
        r = self.post(body, PB)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.headers["Content-Type"], "application/x-protobuf")
        self.assertEqual(r.content, b"")  # full success: an empty ExportMetricsServiceResponse

        got = self.values('process_memory_usage_bytes{job="shop/checkout"}')
        base = (("instance", "pod-7"), ("job", "shop/checkout"))
        self.assertEqual(got, {
            tuple(sorted(base + (("__name__", "process_memory_usage_bytes"), ("state", "used")))): 1536.0,
            tuple(sorted(base + (("__name__", "process_memory_usage_bytes"), ("state", "free")))): 512.0,
        })
        self.assertEqual(self.one('http_server_requests_total{http_route="/cart",http_method="GET"}'), 42)
        buckets = self.values('http_server_duration_seconds_bucket{http_route="/cart"}')
        self.assertEqual(sorted((dict(k)["le"], v) for k, v in buckets.items()),
                         sorted([("0.1", 2), ("0.5", 5), ("1", 9), ("+Inf", 10)]))
        self.assertEqual(self.one("http_server_duration_seconds_sum"), 4.2)
        self.assertEqual(self.one("http_server_duration_seconds_count"), 10)
        # The classic buckets work with PromQL's histogram_quantile: the median falls in (0.1, 0.5].
        q = self.one("histogram_quantile(0.5, http_server_duration_seconds_bucket)")
        self.assertAlmostEqual(q, 0.1 + (0.5 - 0.1) * (5 - 2) / 3)
        # The other resource attributes are on target_info, joined by job and instance.
        info = self.values('target_info{job="shop/checkout"}')
        self.assertEqual(list(info.values()), [1.0])
        self.assertEqual(dict(list(info.keys())[0]),
                         {"__name__": "target_info", "job": "shop/checkout", "instance": "pod-7",
                          "deployment_environment": "test", "host_cpus": "8"})
        joined = self.values('process_memory_usage_bytes * on (job, instance) group_left (deployment_environment) '
                             'target_info')
        self.assertEqual({dict(k)["deployment_environment"] for k in joined}, {"test"})

    def test_json_and_partial_success(self):
        doc = {"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
            "scopeMetrics": [{"scope": {"name": "lib"}, "metrics": [
                {"name": "queue.depth", "unit": "{item}", "gauge": {"dataPoints": [
                    {"asInt": "17", "timeUnixNano": str(T_NS)}]}},
                {"name": "jobs.completed", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                                   "dataPoints": [{"asDouble": 3.5, "timeUnixNano": str(T_NS),
                                                                   "attributes": [{"key": "queue",
                                                                                   "value": {"stringValue": "a"}}]}]}},
                {"name": "jobs.delta", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                                               "dataPoints": [{"asDouble": 1, "timeUnixNano": str(T_NS)},
                                                              {"asDouble": 1, "timeUnixNano": str(T_NS + 1)}]}},
            ]}]}]}
        r = self.post(json.dumps(doc), JS)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.headers["Content-Type"].startswith("application/json"))
        ps = r.json()["partialSuccess"]
        self.assertEqual(ps["rejectedDataPoints"], "2")
        self.assertIn("delta temporality is not supported", ps["errorMessage"])
        self.assertEqual(self.one('queue_depth{job="json-svc"}'), 17)
        self.assertEqual(self.one('jobs_completed_total{queue="a"}'), 3.5)
        self.assertEqual(self.values("jobs_delta_total"), {})

        # Full success in JSON is {}.
        doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].pop()
        for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for p in (m.get("gauge") or m.get("sum"))["dataPoints"]:
                p["timeUnixNano"] = str(T_NS + 1_000_000_000)
        r = self.post(json.dumps(doc), JS)
        self.assertEqual((r.status_code, r.json()), (200, {}))

    def test_gzip_bodies(self):
        pb = request([("service.name", "zipped")],
                     [metric("zipped.gauge", "1", "gauge", [number_point(T_NS, 0.75)])])
        r = self.post(gzip.compress(pb), {**PB, "Content-Encoding": "gzip"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.one('zipped_gauge_ratio{job="zipped"}'), 0.75)
        doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "zipped.json", "gauge": {"dataPoints": [{"asDouble": 2.5, "timeUnixNano": str(T_NS)}]}}]}]}]}
        r = self.post(gzip.compress(json.dumps(doc).encode()), {**JS, "Content-Encoding": "gzip"})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.one("zipped_json"), 2.5)

    def test_partial_success_protobuf_and_staleness(self):
        body = request([("service.name", "partial")], [
            # count 1 but no bucket holds the observation: not a valid native histogram
            metric("native.latency", "s", "exponential_histogram", [f_fixed64(3, T_NS) + f_fixed64(4, 1)]),
            metric("still.here", "", "gauge", [number_point(T_NS, 5.0), number_point(T_NS + 2_000_000_000, None, flags=1)]),
        ])
        r = self.post(body, PB)
        self.assertEqual(r.status_code, 200, r.text)
        resp = parse_fields(r.content)
        ps = parse_fields(resp[1][0])
        self.assertEqual(ps[1], [1])
        self.assertIn(b"exponential histogram invalid as a native histogram", ps[2][0])
        self.assertEqual(self.one('still_here{job="partial"}'), 5)
        # The NO_RECORDED_VALUE point is a staleness marker: the series is gone right after it.
        self.assertEqual(self.values("still_here", t="%.3f" % ((T_MS + 2500) / 1000)), {})

    def test_exponential_histogram_is_native(self):
        # scale 1, zero_count 2, positive buckets at OTLP offset 0: [1, 3] (Prometheus indexes 1, 2),
        # count 6, sum 9.5; read back through remote read as a native histogram.
        pos = f_varint(1, 0) + f_len(2, varint(1) + varint(3))
        point = (f_fixed64(3, T_NS) + f_fixed64(4, 6) + f_double(5, 9.5) + f_varint(6, 2)
                 + f_fixed64(7, 2) + f_len(8, pos))
        body = request([("service.name", "exp")], [metric("exp.latency", "s", "exponential_histogram", [point])])
        r = self.post(body, PB)
        self.assertEqual(r.status_code, 200, r.text)
        from test_native_histograms import fields as pb_fields, parse_histogram, read_request
        import snappy
        rr = requests.post(self.s.url + "/api/v1/read",
                           data=read_request("exp_latency_seconds", T_MS - 1000, T_MS + 1000, []), timeout=10)
        self.assertEqual(rr.status_code, 200, rr.text)
        result = pb_fields(pb_fields(snappy.uncompress(rr.content))[1][0])
        self.assertEqual(len(result[1]), 1)
        h = parse_histogram(pb_fields(result[1][0])[4][0])
        self.assertTrue(h["is_int"])
        self.assertEqual((h["t"], h["schema"], h["count"], h["zero_count"]), (T_MS, 1, 6, 2))
        self.assertEqual(struct.unpack("<d", struct.pack("<Q", h["sum_bits"]))[0], 9.5)
        self.assertEqual(h["zt"], 1e-128)
        self.assertEqual((h["pos_spans"], h["pos"]), ([(1, 2)], [1, 3]))

    def test_refusals(self):
        r = self.post(b"x", {"Content-Type": "text/plain"})
        self.assertEqual(r.status_code, 415)
        self.assertIn("application/x-protobuf or application/json", r.text)
        r = self.post(b"x", {**PB, "Content-Encoding": "br"})
        self.assertEqual(r.status_code, 415)
        r = self.post(b"\x0a\x05\x01", PB)  # truncated
        self.assertEqual(r.status_code, 400)
        self.assertIn("protobuf", r.text)
        r = self.post(b'{"resourceMetrics": 5}', JS)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["message"], "json: resourceMetrics: expected an array")
        r = self.post(b"\x1f\x8b garbage", {**PB, "Content-Encoding": "gzip"})
        self.assertEqual(r.status_code, 400)
        r = self.post("[" * 10000 + "]" * 10000, JS)
        self.assertEqual(r.status_code, 400)
        # Still serving.
        self.assertEqual(requests.get(self.s.url + "/-/ready", timeout=5).status_code, 200)
        r = self.post(b"", PB)
        self.assertEqual(r.status_code, 200)


# ---- the OpenTelemetry JavaScript SDK ---------------------------------------------------------

def npm_install():
    """Installs the SDK from the committed lockfile if needed; returns a reason to skip or None."""
    if os.path.isdir(os.path.join(OTEL_JS, "node_modules", "@opentelemetry", "sdk-metrics")):
        return None
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are not installed"
    try:
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OTEL_JS,
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "npm ci failed: %s" % e
    if r.returncode != 0:
        return "npm ci could not install the OpenTelemetry SDK: %s" % (r.stderr.strip()[-500:] or r.stdout[-500:])
    return None


class OtelJsSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = npm_install()
        if reason:
            raise unittest.SkipTest(reason)
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="otlp-js").start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def test_sdk_exports(self):
        for protocol in ("json", "protobuf"):
            with self.subTest(protocol=protocol):
                r = subprocess.run(["node", os.path.join(OTEL_JS, "export.js"), self.s.url + "/v1/metrics",
                                    protocol], capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                t = "%.3f" % time.time()
                svc = 'job="strata-test/otel-js-%s"' % protocol

                def one(q):
                    body = self.s.query(q, t=t).json()
                    self.assertEqual(body["status"], "success", body)
                    res = body["data"]["result"]
                    self.assertEqual(len(res), 1, "%s: %s" % (q, res))
                    return float(res[0]["value"][1])

                self.assertEqual(one('orders_processed_total{%s,kind="online"}' % svc), 7)
                self.assertEqual(one('cart_items{%s}' % svc), 3)
                self.assertEqual(one('checkout_duration_milliseconds_count{%s}' % svc), 4)
                self.assertEqual(one('checkout_duration_milliseconds_sum{%s}' % svc), 5 + 20 + 120 + 900)
                self.assertEqual(one('checkout_duration_milliseconds_bucket{%s,le="100"}' % svc), 2)
                self.assertEqual(one('checkout_duration_milliseconds_bucket{%s,le="+Inf"}' % svc), 4)
                info = self.s.query('target_info{%s}' % svc, t=t).json()["data"]["result"]
                self.assertEqual(len(info), 1)
                self.assertEqual(info[0]["metric"]["deployment_environment_name"], "integration")


if __name__ == "__main__":
    unittest.main(verbosity=2)
