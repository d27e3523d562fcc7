"""The native gRPC API (strata.v1) of a real `strata serve`, called with Debian's grpcio: unary and
client-streaming writes, queries, series and label listings, stats, and errors as gRPC status codes
(INVALID_ARGUMENT for bad input, UNIMPLEMENTED for unknown methods) with the server still healthy.
Messages are hand-encoded protobuf, so the test checks the wire format, not generated code."""

import os
import struct
import sys
import unittest

import grpc

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, _field_bytes, _varint  # noqa: E402

T0 = 1_700_000_000_000


def label(n, v):
    return _field_bytes(1, n.encode()) + _field_bytes(2, v.encode())


def sample(t, v):
    return _varint(0x08) + _varint(t) + b"\x11" + struct.pack("<d", v)


def series(labels, samples):
    return b"".join(_field_bytes(1, label(n, v)) for n, v in labels) + \
        b"".join(_field_bytes(2, sample(t, v)) for t, v in samples)


def write_request(items):
    return b"".join(_field_bytes(1, series(l, s)) for l, s in items)


def parse(b):
    """A minimal protobuf reader: {field: [values]} with bytes for length-delimited fields."""
    out, i = {}, 0
    while i < len(b):
        key, i = _read_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(b, i)
        elif wt == 1:
            v = struct.unpack("<d", b[i:i + 8])[0]
            i += 8
        elif wt == 2:
            n, i = _read_varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(f, []).append(v)
    return out


def _read_varint(b, i):
    shift = v = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, i
        shift += 7


class GrpcApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Strata(extra_args=["--self-scrape-interval", "0"], name="grpc").start()
        cls.ch = grpc.insecure_channel("127.0.0.1:%d" % cls.s.grpc_port)
        grpc.channel_ready_future(cls.ch).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        try:
            cls.s.stop()
        finally:
            cls.s.cleanup()

    def call(self, method, body, stream=False):
        if stream:
            return self.ch.stream_unary("/strata.v1.Strata/" + method)(iter(body), timeout=10)
        return self.ch.unary_unary("/strata.v1.Strata/" + method)(body, timeout=10)

    def test_write_query_series_labels(self):
        resp = parse(self.call("Write", write_request([
            ([("__name__", "grpc_metric"), ("host", "a")], [(T0, 1.5), (T0 + 1000, 2.5)]),
            ([("host", "b"), ("__name__", "grpc_metric")], [(T0, 7.0)]),  # unsorted: sorted on the way in
        ])))
        self.assertEqual(resp[1], [3])
        q = parse(self.call("Query", _field_bytes(1, b'grpc_metric{host="a"}') + _varint(0x10) + _varint(T0 + 1000)))
        self.assertEqual(q[1], [b"vector"])
        ser = parse(q[2][0])
        self.assertEqual([parse(l) for l in ser[1]], [{1: [b"__name__"], 2: [b"grpc_metric"]}, {1: [b"host"], 2: [b"a"]}])
        self.assertEqual(parse(ser[2][0])[2], [2.5])
        r = parse(self.call("QueryRange", _field_bytes(1, b"grpc_metric") + _varint(0x10) + _varint(T0) +
                            _varint(0x18) + _varint(T0 + 1000) + _varint(0x20) + _varint(1000)))
        self.assertEqual(r[1], [b"matrix"])
        self.assertEqual(len(r[2]), 2)
        s = parse(self.call("Series", _field_bytes(1, b"grpc_metric")))
        self.assertEqual(len(s.get(1, [])), 2)
        names = parse(self.call("LabelNames", _field_bytes(2, b"grpc_metric")))
        self.assertEqual(names[1], [b"__name__", b"host"])
        vals = parse(self.call("LabelValues", _field_bytes(1, b"host")))
        self.assertEqual(vals[1], [b"a", b"b"])
        st = parse(self.call("Stats", b""))
        self.assertGreaterEqual(st[1][0], 2)

    def test_write_stream(self):
        msgs = [write_request([([("__name__", "stream_metric")], [(T0 + i * 1000, float(i))])]) for i in range(50)]
        resp = parse(self.call("WriteStream", msgs, stream=True))
        self.assertEqual(resp[1], [50])
        q = parse(self.call("Query", _field_bytes(1, b"count_over_time(stream_metric[1m])") + _varint(0x10) + _varint(T0 + 49000)))
        self.assertEqual(parse(parse(q[2][0])[2][0])[2], [50.0])
        # A stream with an out-of-order sample reports it in the response, not as a failed call.
        resp = parse(self.call("WriteStream", [write_request([([("__name__", "stream_metric")], [(T0, 9.0)])])], stream=True))
        self.assertEqual(resp.get(1, [0]), [0])
        self.assertEqual(resp[2], [1])
        self.assertIn(b"out of order", resp[3][0])

    def test_c_client_library_example(self):
        import subprocess
        from strata_harness import STRATA_BIN
        example = os.path.join(os.path.dirname(STRATA_BIN), "client_example")
        if not os.path.exists(example):
            self.skipTest("examples/client_example was not built next to strata")
        out = subprocess.run([example, "127.0.0.1:%d" % self.s.grpc_port], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("written 2, rejected 0", out.stdout)
        self.assertIn("vector room=kitchen -> 21.75", out.stdout)

    def test_otlp_grpc_export(self):
        import time
        from test_otlp_http import metric, number_point, request
        t_ms = (int(time.time()) - 30) * 1000
        body = request([("service.name", "grpc-svc"), ("service.instance.id", "i-1")],
                       [metric("queue.depth", "1", "gauge", [number_point(t_ms * 1_000_000, 17.0)])])
        export = self.ch.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
        self.assertEqual(export(body, timeout=10), b"")  # an empty response is full success
        r = self.s.query('queue_depth_ratio{job="grpc-svc",instance="i-1"}', t="%.3f" % (t_ms / 1000))
        self.assertEqual(r.json()["data"]["result"][0]["value"][1], "17")
        with self.assertRaises(grpc.RpcError) as e:
            export(b"\x0a\xff", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_errors_are_status_codes(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.call("Query", _field_bytes(1, b"sum(up"))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("1:7: parse error", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.call("Write", b"\xff\xff\xff\xff")
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            self.call("Write", write_request([([("__name__", "x"), ("a", "1"), ("a", "2")], [(T0, 1.0)])]))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("duplicate label name", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.ch.unary_unary("/strata.v1.Strata/Nope")(b"", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        # Hostile: a huge declared length and deep nesting; the server answers and stays up.
        for body in [b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x02" * 1000]:
            with self.assertRaises(grpc.RpcError) as e:
                self.call("Write", body)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(parse(self.call("Stats", b"")).get(7, [b""])[0][:7], b"series:")


if __name__ == "__main__":
    unittest.main(verbosity=2)
