"""Native histograms end to end: remote-write 1.0 Histogram messages (integer and float,
exponential and custom buckets, a staleness marker) into a real `strata serve`, read back through
remote read (SAMPLES and STREAMED_XOR_CHUNKS), the series and label endpoints, then again after a
clean restart and after kill -9 (WAL replay). Every value must come back bit for bit.

Protobuf is written and parsed by hand here (a few lines each), so the test does not share code
with the server's protobuf-c encoder and decoder."""

import os
import struct
import sys
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import RW_HEADERS, Strata, _field_bytes, _varint  # noqa: E402

T0 = 1_700_000_000_000
STALE = 0x7FF0000000000002


def zz(v):
    return ((v << 1) ^ (v >> 63)) & ((1 << 64) - 1)


def unzz(u):
    return (u >> 1) ^ -(u & 1)


def key(num, wt):
    return _varint((num << 3) | wt)


def f64(num, v):
    return key(num, 1) + struct.pack("<d", v)


def f64_bits(num, bits):
    return key(num, 1) + struct.pack("<Q", bits)


def span_msg(offset, length):
    return key(1, 0) + _varint(zz(offset)) + key(2, 0) + _varint(length)


def histogram_msg(h):
    """h: dict with t, schema, zt, sum_bits, count, zero_count, pos/neg spans [(off, len)],
    pos/neg absolute bucket counts, is_int, custom (list), hint."""
    out = bytearray()
    if h["is_int"]:
        out += key(1, 0) + _varint(h["count"])
    else:
        out += f64(2, h["count"])
    out += f64_bits(3, h["sum_bits"])
    out += key(4, 0) + _varint(zz(h["schema"]) & 0xFFFFFFFF)
    out += f64(5, h["zt"])
    if h["is_int"]:
        out += key(6, 0) + _varint(h["zero_count"])
    else:
        out += f64(7, h["zero_count"])
    for side, (sf, df, cf) in (("neg", (8, 9, 10)), ("pos", (11, 12, 13))):
        for off, ln in h[side + "_spans"]:
            out += _field_bytes(sf, span_msg(off, ln))
        counts = h[side]
        if not counts:
            continue
        if h["is_int"]:
            prev, packed = 0, bytearray()
            for c in counts:
                packed += _varint(zz(c - prev))
                prev = c
            out += _field_bytes(df, bytes(packed))
        else:
            out += _field_bytes(cf, b"".join(struct.pack("<d", c) for c in counts))
    if h.get("hint"):
        out += key(14, 0) + _varint(h["hint"])
    out += key(15, 0) + _varint(h["t"])
    if h.get("custom"):
        out += _field_bytes(16, b"".join(struct.pack("<d", c) for c in h["custom"]))
    return bytes(out)


def write_request(series):
    out = bytearray()
    for labels, hists in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field_bytes(1, _field_bytes(1, name.encode()) + _field_bytes(2, value.encode()))
        for h in hists:
            ts += _field_bytes(4, histogram_msg(h))
        out += _field_bytes(1, bytes(ts))
    return snappy.compress(bytes(out))


# ---- a minimal protobuf reader ------------------------------------------------------------------

def uvarint(b, i):
    shift = result = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if c < 0x80:
            return result, i
        shift += 7


def fields(b):
    """{field number: [values]}: ints for varints, bytes for the rest."""
    out, i = {}, 0
    while i < len(b):
        k, i = uvarint(b, i)
        num, wt = k >> 3, k & 7
        if wt == 0:
            v, i = uvarint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = uvarint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def parse_histogram(b):
    f = fields(b)
    is_int = 2 not in f
    h = {"is_int": is_int, "t": f.get(15, [0])[-1]}
    h["count"] = f[1][-1] if is_int else struct.unpack("<d", f[2][-1])[0]
    h["sum_bits"] = struct.unpack("<Q", f[3][-1])[0] if 3 in f else 0
    sch = f.get(4, [0])[-1] & 0xFFFFFFFF
    h["schema"] = (sch >> 1) ^ -(sch & 1)
    h["zt"] = struct.unpack("<d", f[5][-1])[0] if 5 in f else 0.0
    if is_int:
        h["zero_count"] = f.get(6, [0])[-1]
    else:
        h["zero_count"] = struct.unpack("<d", f[7][-1])[0] if 7 in f else 0.0
    for side, (sf, df, cf) in (("neg", (8, 9, 10)), ("pos", (11, 12, 13))):
        spans = []
        for s in f.get(sf, []):
            sp = fields(s)
            o = sp.get(1, [0])[-1] & 0xFFFFFFFF
            spans.append(((o >> 1) ^ -(o & 1), sp.get(2, [0])[-1]))
        h[side + "_spans"] = spans
        counts = []
        if is_int:
            cur = 0
            for packed in f.get(df, []):
                i = 0
                while i < len(packed):
                    u, i = uvarint(packed, i)
                    cur += unzz(u)
                    counts.append(cur)
        else:
            for packed in f.get(cf, []):
                counts += [struct.unpack("<d", packed[k:k + 8])[0] for k in range(0, len(packed), 8)]
        h[side] = counts
    h["hint"] = f.get(14, [0])[-1]
    h["custom"] = [struct.unpack("<d", p[k:k + 8])[0] for p in f.get(16, []) for k in range(0, len(p), 8)]
    return h


def read_request(name, start, end, response_types):
    matcher = key(1, 0) + _varint(0) + _field_bytes(2, b"__name__") + _field_bytes(3, name.encode())
    query = key(1, 0) + _varint(start) + key(2, 0) + _varint(end) + _field_bytes(3, matcher)
    body = _field_bytes(1, query)
    if response_types:
        body += _field_bytes(2, b"".join(_varint(t) for t in response_types))
    return snappy.compress(body)


def make_int(i, t):
    """An integer exponential histogram whose counts grow with i; a negative side too."""
    pos = [i + 1, 2 * i, 3, i]
    neg = [i, 1]
    zc = 2 * i + 1
    return {"is_int": True, "t": t, "schema": 3, "zt": 2.0 ** -128, "sum_bits": struct.unpack(
        "<Q", struct.pack("<d", 0.1 * i + 1.25))[0], "count": sum(pos) + sum(neg) + zc,
        "zero_count": zc, "pos_spans": [(-2, 2), (3, 2)], "neg_spans": [(1, 2)], "pos": pos,
        "neg": neg}


def make_float(i, t):
    """A float histogram with custom buckets (NHCB)."""
    pos = [0.5 * i, 1.25, 3.0 + i / 3]
    return {"is_int": False, "t": t, "schema": -53, "zt": 0.0, "sum_bits": struct.unpack(
        "<Q", struct.pack("<d", -7.5 + i / 7))[0], "count": sum(pos), "zero_count": 0.0,
        "pos_spans": [(0, 3)], "neg_spans": [], "pos": pos, "neg": [], "custom": [0.1, 0.25, 1e6]}


def comparable(h):
    """The fields that must survive storage bit for bit (the reset hint is the chunks' reading)."""
    def bits(x):
        return struct.pack("<d", float(x)) if not isinstance(x, int) else x
    return (h["is_int"], h["t"], h["schema"], bits(h["zt"]), h["sum_bits"], bits(h["count"]),
            bits(h["zero_count"]), tuple(h["pos_spans"]), tuple(h["neg_spans"]),
            tuple(bits(c) for c in h["pos"]), tuple(bits(c) for c in h["neg"]),
            tuple(bits(c) for c in h.get("custom") or []))


class NativeHistogramTest(unittest.TestCase):
    def setUp(self):
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="nhist").start()
        self.ints = [make_int(i, T0 + 15000 * i) for i in range(200)]
        self.floats = [make_float(i, T0 + 15000 * i) for i in range(50)]
        stale = make_int(0, T0 + 15000 * 200)
        stale.update(sum_bits=STALE, count=0, zero_count=0, pos=[], neg=[], pos_spans=[], neg_spans=[])
        self.stale = stale
        body = write_request([({"__name__": "nh_int", "job": "t"}, self.ints + [stale]),
                              ({"__name__": "nh_float", "job": "t"}, self.floats)])
        r = requests.post(self.strata.url + "/api/v1/write", data=body, headers=RW_HEADERS, timeout=30)
        self.assertEqual(r.status_code, 204, r.text)

    def tearDown(self):
        self.strata.cleanup()

    def read_samples(self, name):
        body = read_request(name, T0 - 1000, T0 + 10_000_000, [])
        r = requests.post(self.strata.url + "/api/v1/read", data=body, timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        resp = fields(snappy.uncompress(r.content))
        result = fields(resp[1][0])
        series = result.get(1, [])
        self.assertEqual(len(series), 1)
        ts = fields(series[0])
        labels = {fields(l)[1][0].decode(): fields(l)[2][0].decode() for l in ts[1]}
        self.assertEqual(labels["__name__"], name)
        self.assertNotIn(2, ts, "a histogram-only series has no float samples")
        return [parse_histogram(h) for h in ts[4]]

    def read_streamed(self, name):
        body = read_request(name, T0 - 1000, T0 + 10_000_000, [1])
        r = requests.post(self.strata.url + "/api/v1/read", data=body, timeout=30)
        self.assertEqual(r.status_code, 200, r.text)
        b, i, chunks = r.content, 0, []
        while i < len(b):
            n, i = uvarint(b, i)
            msg = b[i + 4:i + 4 + n]
            i += 4 + n
            for cs in fields(msg).get(1, []):
                for c in fields(cs).get(2, []):
                    chunks.append(fields(c))
        return chunks

    def check_all(self):
        got = self.read_samples("nh_int")
        self.assertEqual(len(got), len(self.ints) + 1)
        for want, have in zip(self.ints, got):
            self.assertEqual(comparable(have), comparable(want))
        self.assertEqual(got[-1]["sum_bits"], STALE)
        self.assertEqual(got[-1]["t"], self.stale["t"])
        # Hints as the chunks record them: the first sample of a counter chunk unknown, the rest
        # not reset.
        self.assertEqual(got[0]["hint"], 0)
        self.assertEqual(got[1]["hint"], 2)
        got = self.read_samples("nh_float")
        self.assertEqual([comparable(h) for h in got], [comparable(h) for h in self.floats])

        chunks = self.read_streamed("nh_int")
        self.assertGreaterEqual(len(chunks), 2)
        self.assertTrue(all(c[3][0] == 2 for c in chunks), "integer histograms: encoding 2")
        self.assertEqual(sum(int.from_bytes(c[4][0][:2], "big") for c in chunks), len(self.ints) + 1)
        chunks = self.read_streamed("nh_float")
        self.assertTrue(all(c[3][0] == 3 for c in chunks), "float histograms: encoding 3")
        self.assertEqual(sum(int.from_bytes(c[4][0][:2], "big") for c in chunks), len(self.floats))
        starts = [c[1][0] for c in chunks]
        self.assertEqual(starts, sorted(starts))

        # Histogram-only series are found by the series and label endpoints.
        end = str((T0 + 10_000_000) / 1000)
        r = self.strata.get("/api/v1/series", **{"match[]": "nh_int", "start": str(T0 / 1000), "end": end})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["data"], [{"__name__": "nh_int", "job": "t"}])
        r = self.strata.get("/api/v1/label/__name__/values", **{"match[]": '{job="t"}', "start": str(T0 / 1000),
                                                              "end": end})
        self.assertEqual(r.json()["data"], ["nh_float", "nh_int"])

    def test_roundtrip_restart_and_crash(self):
        self.check_all()
        self.strata.stop()
        self.strata.start()
        self.check_all()
        self.strata.kill9()
        self.strata.start()
        self.check_all()

    def write_floats(self, name, n):
        ts = _field_bytes(1, _field_bytes(1, b"__name__") + _field_bytes(2, name.encode()))
        for i in range(n):
            ts += _field_bytes(2, f64(1, i * 0.5 + 1 / 3) + key(2, 0) + _varint(T0 + 15000 * i))
        for i in range(0, n, 50):  # exemplars: labels, value, timestamp
            lab = _field_bytes(1, _field_bytes(1, b"trace_id") + _field_bytes(2, b"t%d" % i))
            ts += _field_bytes(3, lab + f64(2, i + 0.25) + key(3, 0) + _varint(T0 + 15000 * i))
        body = snappy.compress(bytes(_field_bytes(1, bytes(ts))))
        r = requests.post(self.strata.url + "/api/v1/write", data=body, headers=RW_HEADERS, timeout=30)
        self.assertEqual(r.status_code, 204, r.text)

    def check_floats(self, name, n):
        r = self.strata.get("/api/v1/query", query="count_over_time(%s[1h])" % name,
                            time=str((T0 + 15000 * (n - 1)) / 1000))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["data"]["result"][0]["value"][1], "240")
        r = self.strata.session.get(self.strata.url + "/api/v1/query_exemplars", timeout=30, params={
            "query": name, "start": str(T0 / 1000), "end": str((T0 + 15000 * n) / 1000)})
        self.assertEqual(r.status_code, 200, r.text)
        data = r.json()["data"]
        self.assertEqual(len(data), 1, data)
        got = [(e["labels"]["trace_id"], e["value"], e["timestamp"]) for e in data[0]["exemplars"]]
        want = [("t%d" % i, repr(i + 0.25), (T0 + 15000 * i) / 1000) for i in range(0, n, 50)]
        self.assertEqual(got, want)
        r = self.strata.get("/api/v1/query", query="histogram_count(nh_int)",
                            time=str((T0 + 15000 * 199) / 1000))
        self.assertEqual(r.status_code, 200, r.text)
        want = self.ints[199]["count"]
        self.assertEqual(float(r.json()["data"]["result"][0]["value"][1]), float(want))

    def test_flush_restart_and_crash_points_keep_histograms(self):
        # A flush writes float chunks into a block and truncates the head and the WAL: the
        # histograms (not flushed into blocks) must stay in the head and in the checkpoint.
        # Each round writes a new float series, so every flush has chunks to cut.
        points = ["flush-snapshot", "flush-blocks-durable", "flush-head-truncated",
                  "flush-wal-checkpointed", None]
        for k, point in enumerate(points):
            self.strata.stop()
            if point:
                os.environ["STRATA_CRASH_POINT"] = point
            try:
                self.strata.start()
            finally:
                os.environ.pop("STRATA_CRASH_POINT", None)
            self.write_floats("f_%d" % k, 300)
            if point:
                with self.assertRaises(requests.RequestException):
                    self.strata.session.post(self.strata.url + "/api/v1/admin/tsdb/flush", timeout=60)
                self.strata.proc.wait(30)
                self.assertEqual(self.strata.proc.returncode, -9, point)
            else:
                r = self.strata.session.post(self.strata.url + "/api/v1/admin/tsdb/flush", timeout=60)
                self.assertEqual(r.status_code, 200, r.text)
            self.strata.start()
            for restart in range(2):
                self.check_all()
                for j in range(k + 1):
                    self.check_floats("f_%d" % j, 300)
                self.strata.stop()
                self.strata.start()

    def test_invalid_and_out_of_order(self):
        bad = make_int(1, T0 + 15000 * 300)
        bad["count"] += 1  # one observation more than the buckets hold
        body = write_request([({"__name__": "nh_bad"}, [bad])])
        r = requests.post(self.strata.url + "/api/v1/write", data=body, headers=RW_HEADERS, timeout=30)
        self.assertEqual(r.status_code, 400)
        self.assertIn("observations found in buckets", r.text)
        old = make_int(5, T0)  # older than nh_int's newest sample
        old["t"] = T0 + 1
        body = write_request([({"__name__": "nh_int", "job": "t"}, [old])])
        r = requests.post(self.strata.url + "/api/v1/write", data=body, headers=RW_HEADERS, timeout=30)
        self.assertEqual(r.status_code, 400)
        self.assertIn("out of order", r.text)


if __name__ == "__main__":
    unittest.main()
