"""Hostile messages on every ingest endpoint of a real `strata serve`: remote write 1.0 and 2.0,
OTLP/HTTP protobuf and JSON, OTLP/gRPC and the native strata.v1 Write. Each gets truncated bodies,
known fields with the wrong wire type, lengths running past the end, enormous repeated fields
(millions of empty sub-messages) and deep nesting. Every one must be answered with a clear error
(HTTP 400/413 or INVALID_ARGUMENT/RESOURCE_EXHAUSTED, with a message naming the problem) or, where
the wire format allows it, accepted without harm; afterwards the server must still be healthy:
/-/ready answers, a valid write on every endpoint is stored and queryable, /metrics scrapes.
Under the AddressSanitizer build (build-asan's ctest) this also checks memory safety."""

import json
import os
import struct
import sys
import time
import unittest

import grpc
import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, RW_HEADERS, _field_bytes as F, _varint as V, encode_write_request  # noqa: E402
from test_otlp_http import f_len, metric, number_point, request  # noqa: E402

T_MS = (int(time.time()) - 60) * 1000
T_NS = T_MS * 1_000_000

RW2_HEADERS = dict(RW_HEADERS)
RW2_HEADERS["Content-Type"] = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
RW2_HEADERS["X-Prometheus-Remote-Write-Version"] = "2.0.0"
PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
OTLP_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
NATIVE_WRITE = "/strata.v1.Strata/Write"

MANY = 4_000_000  # empty sub-messages: an 8 MB body that would expand about fifty-fold


def nested_unknown(depth):
    """An unknown length-delimited field (number 15) nested depth levels deep."""
    b = b""
    for _ in range(depth):
        b = F(15, b)
    return b


def deep_attribute(depth):
    """A KeyValue whose AnyValue nests arrays depth levels deep (OTLP allows any depth)."""
    a = f_len(1, b"leaf")  # AnyValue.string_value
    for _ in range(depth):
        a = f_len(5, f_len(1, a))  # AnyValue.array_value { values: a }
    return f_len(1, b"k") + f_len(2, a)


def otlp_with_point_bytes(point):
    m = f_len(1, b"hostile.gauge") + f_len(5, f_len(1, point))
    scope_metrics = f_len(2, m)
    return f_len(1, f_len(2, scope_metrics))


def rw2(symbols, series_bytes):
    return snappy.compress(b"".join(F(4, s) for s in symbols) + b"".join(F(5, s) for s in series_bytes))


def rw2_series(refs, samples):
    out = F(1, b"".join(V(r) for r in refs))
    for t, v in samples:
        out += F(2, b"\x09" + struct.pack("<d", v) + b"\x10" + V(t))
    return out


class HostileIngestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="hostile").start()
        cls.ch = grpc.insecure_channel("127.0.0.1:%d" % cls.s.grpc_port,
                                       options=[("grpc.max_send_message_length", 64 << 20)])
        grpc.channel_ready_future(cls.ch).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    # ---- helpers ---------------------------------------------------------------------------------

    def http(self, path, body, headers):
        return self.s.session.post(self.s.url + path, data=body, headers=headers, timeout=120)

    def expect_http(self, what, path, body, headers, status, pattern):
        r = self.http(path, body, headers)
        text = r.text
        if r.headers.get("Content-Type", "").startswith("application/json"):
            text = r.json().get("message", text)
        elif headers is PB and path == "/v1/metrics" and r.status_code != 200:
            text = r.content.decode(errors="replace")  # a google.rpc.Status: the message shows
        self.assertEqual(r.status_code, status, "%s: HTTP %d %r" % (what, r.status_code, text[:300]))
        if pattern:
            self.assertRegex(text, pattern, "%s: the message does not say what is wrong" % what)
        return r

    def expect_grpc(self, what, method, body, code, pattern):
        try:
            self.ch.unary_unary(method)(body, timeout=60)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), code, "%s: %s %s" % (what, e.code(), e.details()))
            if pattern:
                self.assertRegex(e.details(), pattern, what)
            return
        self.fail("%s: accepted, expected %s" % (what, code))

    def assert_healthy(self):
        self.assertEqual(requests.get(self.s.url + "/-/ready", timeout=5).status_code, 200)
        self.assertEqual(self.s.session.get(self.s.url + "/metrics", timeout=30).status_code, 200)

    def value(self, q):
        body = self.s.query(q, t="%.3f" % (T_MS / 1000)).json()
        self.assertEqual(body["status"], "success", body)
        return [float(x["value"][1]) for x in body["data"]["result"]]

    # ---- remote write 1.0 ------------------------------------------------------------------------

    def test_remote_write_1(self):
        good = encode_write_request([({"__name__": "hostile_rw1", "job": "h"}, [(T_MS, 1.0)])])
        cases = [
            ("truncated", snappy.compress(good[:-3]), 400, r"protobuf.*(truncated|runs past)"),
            ("wrong wire type (timeseries as varint)", snappy.compress(b"\x08\x01"), 400, r"wire type 0"),
            ("wrong wire type inside Sample", snappy.compress(F(1, F(2, b"\x08\x05"))), 400,
             r"Sample: field 1 has wire type 0"),
            ("length past the end", snappy.compress(b"\x0a\xff\xff\xff\x07"), 400, r"runs past the end"),
            ("enormous repeated: empty series", snappy.compress(b"\x0a\x00" * MANY), 400, r"no labels"),
            ("enormous repeated: empty labels", snappy.compress(F(1, b"\x0a\x00" * MANY)), 400, r"empty label name"),
            ("snappy claims 4 GiB", b"\xff\xff\xff\xff\x0f" + b"\x00" * 16, 413, r"limit"),
            ("snappy garbage", b"\x05\xff\xff\xff", 400, r"snappy"),
        ]
        for what, body, status, pattern in cases:
            with self.subTest(what):
                self.expect_http(what, "/api/v1/write", body, RW_HEADERS, status, pattern)
        # An unknown field may nest as deep as it likes: proto3 skips it without looking inside.
        deep = encode_write_request([({"__name__": "hostile_rw1_deep", "job": "h"}, [(T_MS, 2.0)])])
        deep = deep[:1] + V(len(deep[2:]) + len(nested_unknown(1000))) + deep[2:] + nested_unknown(1000)
        r = self.http("/api/v1/write", snappy.compress(deep), RW_HEADERS)
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.value("hostile_rw1_deep"), [2.0])
        self.assert_healthy()
        r = self.http("/api/v1/write", snappy.compress(good), RW_HEADERS)
        self.assertEqual(r.status_code, 204, r.text)
        self.assertEqual(self.value("hostile_rw1"), [1.0])

    # ---- remote write 2.0 ------------------------------------------------------------------------

    def test_remote_write_2(self):
        symbols = [b"", b"__name__", b"hostile_rw2", b"job", b"h"]
        good = rw2(symbols, [rw2_series([1, 2, 3, 4], [(T_MS, 3.0)])])
        raw = snappy.decompress(good)
        cases = [
            ("truncated", snappy.compress(raw[:-3]), 400, r"cannot decode io.prometheus.write.v2.Request: .*(truncated|runs past)"),
            ("wrong wire type", snappy.compress(b"\x28\x01"), 400, r"Request.timeseries \(5\) at byte 0 has wire type 0"),
            ("wrong wire type inside Sample", rw2(symbols, [F(2, b"\x08\x01")]), 400, r"Sample.value .* wire type 0"),
            ("length past the end", snappy.compress(b"\x2a\xff\xff\xff\x07"), 400, r"runs past the end"),
            ("enormous repeated: empty series", snappy.compress(F(4, b"") + b"\x2a\x00" * MANY), 413,
             r"needs more than \d+ MiB"),
            ("reference past the symbols", rw2(symbols, [rw2_series([1, 99], [(T_MS, 1.0)])]), 400,
             r"past the 5 symbols"),
            ("odd labels_refs", rw2(symbols, [rw2_series([1, 2, 3], [(T_MS, 1.0)])]), 400, r"odd number"),
            ("symbols[0] not empty", rw2([b"x"] + symbols[1:], [rw2_series([1, 2], [(T_MS, 1.0)])]), 400,
             r"symbols\[0\]"),
        ]
        for what, body, status, pattern in cases:
            with self.subTest(what):
                self.expect_http(what, "/api/v1/write", body, RW2_HEADERS, status, pattern)
        r = self.http("/api/v1/write", snappy.compress(raw + nested_unknown(1000)), RW2_HEADERS)
        self.assertEqual(r.status_code, 204, r.text)
        self.assert_healthy()
        self.assertEqual(self.value("hostile_rw2"), [3.0])

    # ---- OTLP/HTTP -------------------------------------------------------------------------------

    def test_otlp_protobuf(self):
        good = request([("service.name", "hostile")], [metric("hostile.otlp", "", "gauge", [number_point(T_NS, 4.0)])])
        cases = [
            ("truncated", good[:-3], 400, r"truncated|runs past"),
            ("wrong wire type", b"\x08\x01", 400, r"resource_metrics \(1\) at byte 0 has wire type 0"),
            ("length past the end", b"\x0a\xff\xff\xff\x07", 400, r"runs past the end"),
            ("enormous repeated: empty resource metrics", b"\x0a\x00" * MANY, 413, r"needs more than \d+ MiB"),
            ("deeply nested attribute", otlp_with_point_bytes(
                b"\x19" + struct.pack("<Q", T_NS) + F(7, deep_attribute(100))), 400, r"nested deeper than"),
            ("string that is not UTF-8", request([("service.name", "x")], [metric("bad\xff", "", "gauge", [])]).replace(
                "bad\xff".encode(), b"bad\xff\xfe"), 400, r"not valid UTF-8"),
        ]
        for what, body, status, pattern in cases:
            with self.subTest(what):
                self.expect_http(what, "/v1/metrics", body, PB, status, pattern)
        self.assert_healthy()
        r = self.http("/v1/metrics", good, PB)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.value('hostile_otlp{job="hostile"}'), [4.0])

    def test_otlp_json(self):
        good = json.dumps({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hostile-json"}}]},
            "scopeMetrics": [{"metrics": [{"name": "hostile.json", "gauge": {"dataPoints": [
                {"timeUnixNano": str(T_NS), "asDouble": 5}]}}]}]}]})
        deep = '{"key":"k","value":' + '{"arrayValue":{"values":[' * 100 + '{"stringValue":"x"}' + ']}}' * 100 + "}"
        cases = [
            ("truncated", good[:-5], 400, r"json"),
            ("wrong type", '{"resourceMetrics": 5}', 400, r"resourceMetrics: expected an array"),
            ("wrong type deeper", good.replace('"asDouble": 5', '"asDouble": {}'), 400, r"asDouble"),
            ("deep arrays", "[" * 100000 + "]" * 100000, 400, r"json"),
            ("deeply nested attribute", '{"resourceMetrics":[{"resource":{"attributes":[' + deep + ']}}]}', 400,
             r"deep"),
            ("not UTF-8", good.replace("hostile.json", "bad\udcff", 1).encode("utf-8", "surrogateescape"), 400, r"(?i)utf-8"),
        ]
        for what, body, status, pattern in cases:
            with self.subTest(what):
                self.expect_http(what, "/v1/metrics", body, JS, status, pattern)
        # A million empty resourceMetrics is a valid, empty request.
        r = self.http("/v1/metrics", '{"resourceMetrics":[' + "{}," * 1_000_000 + "{}]}", JS)
        self.assertEqual(r.status_code, 200, r.text[:300])
        self.assert_healthy()
        r = self.http("/v1/metrics", good, JS)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(self.value('hostile_json{job="hostile-json"}'), [5.0])

    # ---- gRPC: OTLP Export and native Write -------------------------------------------------------

    def test_otlp_grpc(self):
        good = request([("service.name", "hostile-grpc")], [metric("hostile.grpc", "", "gauge", [number_point(T_NS, 6.0)])])
        IA, RE = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
        cases = [
            ("truncated", good[:-3], IA, r"truncated|runs past"),
            ("wrong wire type", b"\x08\x01", IA, r"wire type 0"),
            ("length past the end", b"\x0a\xff\xff\xff\x07", IA, r"runs past the end"),
            ("enormous repeated", b"\x0a\x00" * MANY, RE, r"needs more than \d+ MiB"),
            ("deeply nested attribute", otlp_with_point_bytes(
                b"\x19" + struct.pack("<Q", T_NS) + F(7, deep_attribute(100))), IA, r"nested deeper than"),
            ("over --grpc-max-message-bytes", b"\x0a\x00" * (9 << 20), RE, None),
        ]
        for what, body, code, pattern in cases:
            with self.subTest(what):
                self.expect_grpc(what, OTLP_EXPORT, body, code, pattern)
        self.assertEqual(self.ch.unary_unary(OTLP_EXPORT)(good, timeout=30), b"")
        self.assert_healthy()
        self.assertEqual(self.value('hostile_grpc{job="hostile-grpc"}'), [6.0])

    def test_native_grpc_write(self):
        def sample(t, v):
            return V(0x08) + V(t) + b"\x11" + struct.pack("<d", v)

        def label(n, v):
            return F(1, n) + F(2, v)

        good = F(1, F(1, label(b"__name__", b"hostile_native")) + F(1, label(b"job", b"h")) + F(2, sample(T_MS, 7.0)))
        IA, RE = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
        cases = [
            ("truncated", good[:-3], IA, r"cannot decode strata.v1.WriteRequest: .*(truncated|runs past)"),
            ("wrong wire type", b"\x08\x01", IA, r"WriteRequest.series \(1\) at byte 0 has wire type 0"),
            ("wrong wire type inside Sample", F(1, F(2, b"\x10" + V(5))), IA, r"Sample.value \(2\) at byte \d+ has wire type 0"),
            ("length past the end", b"\x0a\xff\xff\xff\x07", IA, r"runs past the end"),
            ("enormous repeated", b"\x0a\x00" * MANY, RE, r"needs more than \d+ MiB"),
            ("invalid UTF-8 label", F(1, F(1, label(b"__name__", b"\xff")) + F(2, sample(T_MS, 1.0))), IA, r"UTF-8"),
        ]
        for what, body, code, pattern in cases:
            with self.subTest(what):
                self.expect_grpc(what, NATIVE_WRITE, body, code, pattern)
        self.ch.unary_unary(NATIVE_WRITE)(good + nested_unknown(1000), timeout=30)
        self.assert_healthy()
        self.assertEqual(self.value("hostile_native"), [7.0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
