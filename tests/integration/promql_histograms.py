"""Native histograms for the PromQL conformance runner: the test files' histogram notation
(`{{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1] offset:1 n_buckets:[..]
n_offset:.. custom_values:[..] counter_reset_hint:gauge}}`, with the series forms `{{..}}xN` and
`{{a}}+{{b}}xN` / `{{a}}-{{b}}xN`), the arithmetic those series forms need, remote-write 1.0
Histogram messages, and the comparison of an expected histogram with the JSON Prometheus' API
returns (count, sum and every populated bucket with its bounds and boundary rule).

A histogram here is a dict: schema, sum, count, zc (zero count), zt (zero threshold), pos and neg
({bucket index: count}), cv (custom bounds or None), hint ('unknown', 'reset', 'not_reset',
'gauge')."""

import math
import re
import struct

CUSTOM = -53
HINTS = {"unknown": 0, "reset": 1, "not_reset": 2, "gauge": 3}


def _num(t):
    t = t.strip()
    low = t.lower().lstrip("+")
    if low in ("inf",):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    if low.startswith("0x") or low.startswith("-0x"):
        return float(int(low, 16))
    return float(t)


def parse(text):
    """`{{...}}` (with the braces) -> histogram dict."""
    body = text.strip()
    if not (body.startswith("{{") and body.endswith("}}")):
        raise ValueError("bad histogram %r" % text)
    body = body[2:-2]
    items = {}
    for m in re.finditer(r"(\w+):(\[[^\]]*\]|\S+)", body):
        items[m.group(1)] = m.group(2)
    known = {"schema", "sum", "count", "z_bucket", "z_bucket_w", "buckets", "offset", "n_buckets",
             "n_offset", "custom_values", "counter_reset_hint"}
    if set(items) - known:
        raise ValueError("unknown histogram keys %s" % (set(items) - known))

    def arr(k):
        v = items.get(k)
        return [_num(x) for x in v[1:-1].split()] if v else []

    h = {"schema": int(items.get("schema", "0")), "sum": _num(items.get("sum", "0")),
         "count": _num(items.get("count", "0")), "zc": _num(items.get("z_bucket", "0")),
         "zt": _num(items.get("z_bucket_w", "0")), "pos": {}, "neg": {},
         "cv": arr("custom_values"),
         "hint": items.get("counter_reset_hint", "unknown"),
         "hint_set": "counter_reset_hint" in items}
    if h["hint"] not in HINTS:
        raise ValueError("bad counter_reset_hint %r" % h["hint"])
    for side, bk, ok in (("pos", "buckets", "offset"), ("neg", "n_buckets", "n_offset")):
        off = int(items.get(ok, "0"))
        for i, c in enumerate(arr(bk)):
            h[side][off + i] = c
    return h


def copy(h):
    r = dict(h)
    r["pos"] = dict(h["pos"])
    r["neg"] = dict(h["neg"])
    return r


def bound(idx, schema, cv=None):
    """Upper bound of bucket idx (Prometheus' getBound)."""
    if schema == CUSTOM:
        if idx < 0:
            return -math.inf
        if idx >= len(cv):
            return math.inf
        return cv[idx]
    if schema < 0:
        e = idx << -schema
        if e == 1024:
            return 1.7976931348623157e308
        if e > 1024:
            return math.inf
        return math.ldexp(1.0, e)
    per = 1 << schema
    frac_idx = idx & (per - 1)
    e = (idx >> schema) + 1
    frac = 2 ** (frac_idx / per) / 2 if frac_idx else 0.5
    if frac == 0.5 and e == 1025:
        return 1.7976931348623157e308
    if e > 1025:
        return math.inf
    return math.ldexp(frac, e)


def _reduce(side, frm, to):
    if frm <= to:
        return dict(side)
    out = {}
    for i, c in side.items():
        t = ((i - 1) >> (frm - to)) + 1
        out[t] = out.get(t, 0) + c
    return out


def _widen(h, thr):
    """h's buckets within a zero threshold of thr go into its zero bucket (thr grows to the
    edge of a populated bucket it cuts)."""
    while True:
        zc = h["zc"]
        pos, neg = dict(h["pos"]), dict(h["neg"])
        again = False
        for i in sorted(pos):
            lo, up = bound(i - 1, h["schema"]), bound(i, h["schema"])
            if lo >= thr:
                break
            zc += pos.pop(i)
            if up > thr:
                if h["pos"][i]:
                    thr = up
                break
        for i in sorted(neg):
            lo, up = -bound(i, h["schema"]), -bound(i - 1, h["schema"])
            if up <= -thr:
                break
            zc += neg.pop(i)
            if lo < -thr:
                if h["neg"][i]:
                    thr = -lo
                    again = True
                break
        if not again:
            return zc, thr, pos, neg


def _adjust_hint(a, b):
    if a == b or a == "gauge":
        return a
    if b == "gauge":
        return "gauge"
    return "unknown"


def add(a, b, sign=1):
    """a + sign*b as Prometheus' FloatHistogram.Add/Sub (the cases the test files use)."""
    r = copy(a)
    r["hint"] = _adjust_hint(a["hint"], b["hint"])
    r["count"] = a["count"] + sign * b["count"]
    r["sum"] = a["sum"] + sign * b["sum"]
    bpos, bneg = dict(b["pos"]), dict(b["neg"])
    if (a["schema"] == CUSTOM) != (b["schema"] == CUSTOM):
        raise ValueError("custom and exponential histograms do not add")
    if a["schema"] != CUSTOM:
        bz, bt = b["zc"], b["zt"]
        while bt != r["zt"]:
            if r["zt"] > bt:
                bz, bt, bpos, bneg = _widen(b, r["zt"])
            if bt > r["zt"]:
                r["zc"], r["zt"], r["pos"], r["neg"] = _widen(r, bt)
        r["zc"] += sign * bz
        if b["schema"] < r["schema"]:
            r["pos"] = _reduce(r["pos"], r["schema"], b["schema"])
            r["neg"] = _reduce(r["neg"], r["schema"], b["schema"])
            r["schema"] = b["schema"]
        else:
            bpos = _reduce(bpos, b["schema"], r["schema"])
            bneg = _reduce(bneg, b["schema"], r["schema"])
    elif a["cv"] != b["cv"]:
        raise ValueError("custom bounds differ")
    for side, src in (("pos", bpos), ("neg", bneg)):
        for i, c in src.items():
            r[side][i] = r[side].get(i, 0) + sign * c
    return r


def expand_series(tok):
    """One series-value token holding a histogram -> list of histograms (the token's steps)."""
    m = re.match(r"^(\{\{.*?\}\})(?:([+-])(\{\{.*?\}\}))?(?:x(\d+))?$", tok)
    if not m:
        raise ValueError("bad histogram series %r" % tok)
    base = parse(m.group(1))
    if m.group(2):
        if m.group(4) is None:
            raise ValueError("histogram increment without xN: %r" % tok)
        inc = parse(m.group(3))
        out = [base]
        cur = base
        for _ in range(int(m.group(4))):
            if cur["schema"] > inc["schema"] and cur["schema"] != CUSTOM:
                raise ValueError("cannot merge from schema %d to %d" % (inc["schema"], cur["schema"]))
            cur = add(cur, inc, 1 if m.group(2) == "+" else -1)
            cur["hint_set"] = inc["hint_set"]
            out.append(cur)
        return out
    n = int(m.group(4)) if m.group(4) else 0
    return [base] * (n + 1)


# ---- remote write ---------------------------------------------------------------------------

def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _zigzag(n):
    return (n << 1) ^ (n >> 63)


def _ld(num, payload):
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def _dbl(num, v):
    return _varint((num << 3) | 1) + struct.pack("<d", v)


def _spans_and_counts(side):
    spans, counts, prev_end = [], [], None
    for i in sorted(side):
        if prev_end is not None and i == prev_end:
            spans[-1][1] += 1
        else:
            spans.append([i if prev_end is None else i - prev_end, 1])
        counts.append(side[i])
        prev_end = i + 1
    return spans, counts


def encode_histogram(t, h):
    """A remote-write 1.0 Histogram message in the float flavour (absolute counts)."""
    out = bytearray()
    out += _dbl(2, h["count"])
    out += _dbl(3, h["sum"])
    out += _varint(4 << 3) + _varint(_zigzag(h["schema"]))
    out += _dbl(5, h["zt"])
    out += _dbl(7, h["zc"])
    for side, span_f, count_f in (("neg", 8, 10), ("pos", 11, 13)):
        spans, counts = _spans_and_counts(h[side])
        for off, ln in spans:
            out += _ld(span_f, _varint(1 << 3) + _varint(_zigzag(off)) + _varint(2 << 3) + _varint(ln))
        if counts:
            out += _ld(count_f, b"".join(struct.pack("<d", c) for c in counts))
    if HINTS[h["hint"]]:
        out += _varint(14 << 3) + _varint(HINTS[h["hint"]])
    out += _varint(15 << 3) + _varint(t)
    if h["cv"]:
        out += _ld(16, b"".join(struct.pack("<d", c) for c in h["cv"]))
    return bytes(out)


def encode_write_request(series):
    """series: list of (labels dict, [(t, float or raw-bits int)], [(t, histogram dict)])."""
    out = bytearray()
    for labels, samples, hists in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _ld(1, _ld(1, name.encode()) + _ld(2, value.encode()))
        for t, v in samples:
            vb = struct.pack("<Q", v) if isinstance(v, int) else struct.pack("<d", v)
            ts += _ld(2, b"\x09" + vb + b"\x10" + _varint(t))
        for t, h in hists:
            ts += _ld(4, encode_histogram(t, h))
        out += _ld(1, bytes(ts))
    return bytes(out)


# ---- comparison -----------------------------------------------------------------------------

def json_buckets(h):
    """The populated buckets of h as Prometheus' JSON lists them: (rule, lower, upper, count)."""
    out = []
    custom = h["schema"] == CUSTOM
    zt = h["zt"]

    def rule(lo_inc, up_inc):
        return 3 if lo_inc and up_inc else 1 if lo_inc else 0 if up_inc else 2

    for i in sorted(h["neg"], reverse=True):
        c = h["neg"][i]
        lo, up = -bound(i, h["schema"], h["cv"]), -bound(i - 1, h["schema"], h["cv"])
        if -zt < up < 0:
            up = -zt
        if c:
            out.append((rule(lo < 0, up > 0), lo, up, c))
    if not custom and h["zc"] > 0:
        out.append((3, -zt, zt, h["zc"]))
    for i in sorted(h["pos"]):
        c = h["pos"][i]
        lo, up = bound(i - 1, h["schema"], h["cv"]), bound(i, h["schema"], h["cv"])
        if not custom and 0 < lo < zt:
            lo = zt
        if c:
            out.append((rule(i == 0, True) if custom else rule(lo < 0, up > 0), lo, up, c))
    return out


def describe(h):
    return "{count:%s sum:%s buckets:%s}" % (h["count"], h["sum"],
                                              [(r, lo, up, c) for r, lo, up, c in json_buckets(h)])


def compare(expected, got_json, close):
    """Whether the API's histogram object matches the expected histogram; (ok, reason)."""
    try:
        gc, gs = float(got_json["count"]), float(got_json["sum"])
        gb = [(int(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in got_json.get("buckets", [])]
    except (KeyError, TypeError, ValueError) as ex:
        return False, "malformed histogram %r (%s)" % (got_json, ex)
    if not close(gc, expected["count"]) or not close(gs, expected["sum"]):
        return False, "histogram count/sum %s/%s, expected %s/%s" % (gc, gs, expected["count"], expected["sum"])
    want = json_buckets(expected)
    if len(want) != len(gb):
        return False, "histogram has %d buckets, expected %d" % (len(gb), len(want))
    for (wr, wl, wu, wc), (gr, gl, gu, gcnt) in zip(want, gb):
        if wr != gr or not close(wl, gl) or not close(wu, gu) or not close(wc, gcnt):
            return False, "histogram bucket %s, expected %s" % ((gr, gl, gu, gcnt), (wr, wl, wu, wc))
    return True, ""


# ---- load_with_nhcb: classic histograms converted to custom-bucket native histograms ---------

def _set_bucket(th, le, count):
    """Prometheus' TempHistogram.SetBucketCount: cumulative counts by upper bound, in any order;
    a repeated bound is ignored, counts that are not cumulative spoil the histogram."""
    if th["err"]:
        return
    if count < 0:
        th["err"] = True
        return
    b = th["b"]
    if not b or b[-1][0] < le:
        if b and count < b[-1][1]:
            th["err"] = True
            return
        b.append((le, count))
        return
    i = next(k for k, (x, _) in enumerate(b) if x >= le)
    if b[i][0] == le:
        return
    if (i > 0 and count < b[i - 1][1]) or count > b[i][1]:
        th["err"] = True
        return
    b.insert(i, (le, count))


def _convert(th):
    """Prometheus' TempHistogram.Convert -> histogram dict, or None when it is not valid."""
    if th["err"]:
        return None
    b = list(th["b"])
    count = th["count"]
    if count is None and b:
        count = b[-1][1]
    if count is None:
        count = 0.0
    if not b or b[-1][0] != math.inf:
        b.append((math.inf, count))
    if count != b[-1][1]:
        return None
    h = {"schema": CUSTOM, "sum": th["sum"], "count": count, "zc": 0.0, "zt": 0.0, "pos": {},
         "neg": {}, "cv": [le for le, _ in b[:-1]], "hint": "unknown", "hint_set": False}
    prev = 0.0
    for i, (_, c) in enumerate(b):
        h["pos"][i] = c - prev
        prev = c
    return h


def nhcb_from_classic(series):
    """series: [(labels dict, [(t, value)])] of one load block -> [(labels, [(t, histogram)])]
    for every classic histogram among them (name_bucket with le, name_count, name_sum)."""
    groups = {}
    for labels, samples in series:
        name = labels.get("__name__", "")
        kind = None
        for suffix, k in (("_bucket", "b"), ("_sum", "s"), ("_count", "c")):
            if name.endswith(suffix):
                kind = k
                break
        if not kind:
            continue
        base = dict(labels)
        base["__name__"] = name[:-len(suffix)]
        le = None
        if kind == "b":
            if "le" not in labels:
                continue
            try:
                le = float(labels["le"])
            except ValueError:
                continue
            if math.isnan(le):
                continue
        base.pop("le", None)
        key = tuple(sorted(base.items()))
        g = groups.setdefault(key, (base, {}))
        for t, v in samples:
            if isinstance(v, (dict, int)) or v == "stale":
                continue  # histograms and stale markers take no part
            th = g[1].setdefault(t, {"b": [], "err": False, "count": None, "sum": 0.0})
            if kind == "b":
                _set_bucket(th, le, v)
            elif kind == "c":
                if v < 0:
                    th["err"] = True
                th["count"] = v
            else:
                th["sum"] = v
    out = []
    for base, by_t in groups.values():
        hs = []
        for t in sorted(by_t):
            h = _convert(by_t[t])
            if h is not None:
                hs.append((t, h))
        if hs:
            out.append((base, hs))
    return out
