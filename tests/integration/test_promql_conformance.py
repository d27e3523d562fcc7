"""Prometheus' own PromQL test files (../shared/conformance/promql/*.test, Apache-2.0, used as
data) run against a real `strata serve`: each file's `load` blocks are remote-written, each `eval`
is sent to /api/v1/query or /api/v1/query_range and compared with the expected result as
Prometheus' runner compares (exact labels, values within 1e-6 relative, NaN == NaN, order for
`expect ordered`). Prints a pass count per file and `conformance: N passed, M failed`.

The test fails when an eval that is not listed in promql_known_failures.txt fails; a listed eval
that now passes is reported so the list can shrink. The suite is never weakened: every eval of
every file is run and counted. STRATA_CONFORMANCE_UPDATE=1 rewrites the list and
docs/compatibility.md from the current results."""

import math
import os
import re
import sys
import unittest

import requests
import snappy

sys.path.insert(0, os.path.dirname(__file__))
import promql_histograms as ph  # noqa: E402
from strata_harness import RW_HEADERS, Strata  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CONF_DIR = os.environ.get("STRATA_CONFORMANCE_DIR",
                          os.path.join(REPO, "..", "shared", "conformance", "promql"))
KNOWN = os.path.join(HERE, "promql_known_failures.txt")
COMPAT = os.path.join(REPO, "docs", "compatibility.md")
STALE = 0x7FF0000000000002

UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000, "y": 31536000000}


def dur(s):
    if s in ("0", "0s"):
        return 0
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError("bad duration %r" % s)
    return sum(int(n) * UNITS[u] for n, u in parts)


def parse_string(s, i):
    q = s[i]
    j = i + 1
    out = []
    while j < len(s) and s[j] != q:
        if s[j] == "\\" and q != "`":
            j += 1
            c = s[j]
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(c, "\\" + c))
        else:
            out.append(s[j])
        j += 1
    return "".join(out), j + 1


def parse_series(text):
    """`name{a="b", ...}` -> labels dict (equality matchers only, as the format allows)."""
    text = text.strip()
    labels = {}
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:.]*)?\s*(\{.*\})?$", text, re.S)
    if not m:
        raise ValueError("bad series %r" % text)
    if m.group(1):
        labels["__name__"] = m.group(1)
    body = m.group(2)
    if body:
        i, s = 1, body
        while i < len(s) - 1:
            while s[i] in " \t,":
                i += 1
            if s[i] == "}":
                break
            if s[i] in "\"'`":
                name, i = parse_string(s, i)
            else:
                j = i
                while s[j] not in "=!~ \t,}":
                    j += 1
                name, i = s[i:j], j
            while s[i] in " \t":
                i += 1
            if s[i] != "=":  # a bare quoted metric name: {"name"}
                labels["__name__"] = name
                continue
            i += 1
            while s[i] in " \t":
                i += 1
            value, i = parse_string(s, i)
            labels[name] = value
    if m.group(1):
        # name{...}: Prometheus' parser builds these with a label builder, which drops labels
        # with empty values
        labels = {k: v for k, v in labels.items() if v != ""}
    return labels


def split_series_values(line):
    depth, quote = 0, None
    for i, ch in enumerate(line):
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in " \t" and depth == 0:
            return line[:i], split_values(line[i:])
    return line, []


def split_values(text):
    """Whitespace-separated value tokens; a native histogram `{{...}}` (with its spaces, and
    forms like `{{a}}+{{b}}x3`) stays one token."""
    out, cur, depth = [], [], 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch in " \t" and depth == 0:
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


NUM = r"[-+]?(?:\d*\.?\d+(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|[iI]nf|NaN)"


def num(t):
    t2 = t.lstrip("+")
    if t2.lower() in ("inf",):
        return math.inf
    if t2.lower() in ("-inf",):
        return -math.inf
    if t2.lower() == "nan":
        return math.nan
    if t2.lower().startswith("0x") or t2.lower().startswith("-0x"):
        return float(int(t2, 16))
    return float(t2)


def expand(tokens):
    out = []
    for t in tokens:
        if "{{" in t:
            out += ph.expand_series(t)
            continue
        if t == "_":
            out.append(None)
            continue
        if t == "stale":
            out.append("stale")
            continue
        m = re.match(r"^_x(\d+)$", t)
        if m:
            out += [None] * int(m.group(1))
            continue
        m = re.match(r"^(%s)(?:([+-])(%s))?x(\d+)$" % (NUM, NUM), t)
        if m:
            a, b = num(m.group(1)), num(m.group(3) or "0") * (-1 if m.group(2) == "-" else 1)
            out += [a + k * b for k in range(int(m.group(4)) + 1)]
            continue
        out.append(num(t))
    return out


def close(a, b):
    if isinstance(a, dict) or isinstance(b, dict):
        return False  # a histogram never equals a float
    if a == "stale" or b == "stale":
        return a == b
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    if a == 0 or b == 0:
        return abs(a - b) < 1e-6 * 2.2e-308
    return abs(a - b) / (abs(a) + abs(b)) < 1e-6


def same_value(got, want):
    """got from the API (a float, or a histogram's JSON object), want from the test file (a
    float, "stale", or a histogram dict); (equal, reason)."""
    if isinstance(want, dict) or isinstance(got, dict):
        if not (isinstance(want, dict) and isinstance(got, dict)):
            return False, "%s, expected %s" % ("a histogram" if isinstance(got, dict) else got,
                                                 "a histogram" if isinstance(want, dict) else want)
        return ph.compare(want, got, close)
    return close(got, want), "%s, expected %s" % (got, want)


class Runner:
    def __init__(self):
        self.strata = None
        self.results = {}  # (file, line) -> (ok, reason, expr)

    def fresh(self):
        if self.strata:
            self.strata.stop()
            self.strata.cleanup()
        # The engine configured as Prometheus' own test engine (promqltest) runs these files:
        # 5 m lookback and delayed __name__ removal (EnableDelayedNameRemoval: true there).
        self.strata = Strata(extra_args=["--self-scrape-interval", "0", "--grpc-listen", "off",
                                         "--query-lookback-delta", "5m",
                                         "--enable-feature", "promql-delayed-name-removal"],
                             name="conf").start()

    def close(self):
        if self.strata:
            try:
                self.strata.stop()
            finally:
                self.strata.cleanup()

    def load(self, interval, lines, histograms, with_nhcb=False):
        series = {}
        for ln in lines:
            if "@st" in ln.split()[0]:
                continue  # start timestamps are not implemented
            ser, toks = split_series_values(ln)
            labels = parse_series(ser)
            vals = expand(toks)
            if any(isinstance(v, dict) for v in vals):
                histograms.add(labels.get("__name__", ""))
            # A series defined twice in one block: the later definition replaces the earlier.
            key = tuple(sorted(labels.items()))
            series[key] = (labels, [(k * interval, STALE if v == "stale" else v)
                                    for k, v in enumerate(vals) if v is not None])
        if with_nhcb:
            # load_with_nhcb: each classic histogram is also stored as a native histogram with
            # custom buckets under its base name, as Prometheus' test loader converts them.
            for labels, hs in ph.nhcb_from_classic(list(series.values())):
                series[tuple(sorted(labels.items()))] = (labels, hs)
                histograms.add(labels.get("__name__", ""))
        # Floats and histograms of a series go in time order: each request carries one run of
        # samples of one kind per series, so the store never sees a sample older than one it has.
        runs = []
        for labels, samples in series.values():
            k = 0
            while samples:
                is_h = isinstance(samples[0][1], dict)
                n = 0
                while n < len(samples) and isinstance(samples[n][1], dict) == is_h:
                    n += 1
                if len(runs) <= k:
                    runs.append([])
                runs[k].append((labels, [] if is_h else samples[:n], samples[:n] if is_h else []))
                samples = samples[n:]
                k += 1
        for batch in runs:
            body = snappy.compress(ph.encode_write_request(batch))
            r = self.strata.post_write_body(body, headers=RW_HEADERS)
            if r.status_code not in (204, 400):
                raise RuntimeError("load failed: %s %s" % (r.status_code, r.text))

    def query(self, expr, instant_t=None, rng=None):
        if rng is None:
            return requests.get(self.strata.url + "/api/v1/query", timeout=60,
                                params={"query": expr, "time": "%.3f" % (instant_t / 1000)}).json()
        st, en, sp = rng
        return requests.get(self.strata.url + "/api/v1/query_range", timeout=60,
                            params={"query": expr, "start": "%.3f" % (st / 1000),
                                    "end": "%.3f" % (en / 1000), "step": "%.3f" % (sp / 1000)}).json()

    def check(self, head, body, histograms):
        m = re.match(r"^eval(?:_(fail|ordered|warn|info))?\s+instant\s+at\s+(\S+)\s+(.*)$", head)
        mr = re.match(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.*)$", head)
        if not m and not mr:
            return False, "unparsable eval line", head
        expr = (m.group(3) if m else mr.group(5)).strip()
        legacy = (m or mr).group(1)
        expect = [b for b in body if b.startswith("expect") or b.startswith("expected_fail")]
        results = [b for b in body if not (b.startswith("expect") or b.startswith("expected_fail"))]
        fail = legacy == "fail" or any(e.startswith("expect fail") or e.startswith("expected_fail") for e in expect)
        ordered = legacy == "ordered" or any(e.startswith("expect ordered") for e in expect)
        rng_vec = [e for e in expect if e.startswith("expect range vector")]
        try:
            if m:
                r = self.query(expr, instant_t=dur(m.group(2)))
            else:
                r = self.query(expr, rng=(dur(mr.group(2)), dur(mr.group(3)), dur(mr.group(4))))
        except Exception as ex:  # a dropped connection means the server died: report it
            return False, "request failed: %s" % ex, expr
        if fail:
            return (r.get("status") == "error"), "expected an error, got a result", expr
        if r.get("status") != "success":
            return False, r.get("error", "")[:200], expr
        d = r["data"]
        strings = [e for e in expect if e.startswith("expect string")]
        if strings:
            want = strings[0][len("expect string"):].strip()
            want = want[1:-1] if want[:1] in "\"`" else want
            return d["resultType"] == "string" and d["result"][1] == want, "string differs", expr
        if results and re.match(r"^%s$" % NUM, results[0].strip()):
            if d["resultType"] != "scalar":
                return False, "expected a scalar, got %s" % d["resultType"], expr
            return close(float(d["result"][1]), num(results[0].strip())), \
                "scalar %s, expected %s" % (d["result"][1], results[0]), expr
        if m and not rng_vec:
            if d["resultType"] != "vector":
                return False, "expected a vector, got %s" % d["resultType"], expr
            got = [(tuple(sorted(x["metric"].items())),
                    x["histogram"][1] if "histogram" in x else float(x["value"][1])) for x in d["result"]]
            want = []
            for b in results:
                ser, toks = split_series_values(b)
                want.append((tuple(sorted(parse_series(ser).items())), expand(toks)[0]))
            if sorted(k for k, _ in got) != sorted(k for k, _ in want):
                return False, "series differ: got %d, expected %d" % (len(got), len(want)), expr
            gd, wd = dict(got), dict(want)
            for k in gd:
                ok, why = same_value(gd[k], wd[k])
                if not ok:
                    return False, "value of %s: %s" % (dict(k), why), expr
            if ordered and [k for k, _ in got] != [k for k, _ in want]:
                return False, "order differs", expr
            return True, "", expr
        # range queries, and instant queries of range vectors
        if rng_vec:
            rm = re.match(r"expect range vector from (\S+) to (\S+) step (\S+)", rng_vec[0])
            st, sp = dur(rm.group(1)), dur(rm.group(3))
        else:
            st, sp = dur(mr.group(2)), dur(mr.group(4))
        if d["resultType"] != "matrix":
            return False, "expected a matrix, got %s" % d["resultType"], expr
        got = {}
        for x in d["result"]:
            pts = {int(round(float(t) * 1000)): float(v) for t, v in x.get("values", [])}
            for t, h in x.get("histograms", []):
                pts[int(round(float(t) * 1000))] = h
            got[tuple(sorted(x["metric"].items()))] = pts
        want = {}
        for b in results:
            ser, toks = split_series_values(b)
            want[tuple(sorted(parse_series(ser).items()))] = {
                st + k * sp: v for k, v in enumerate(expand(toks)) if v is not None}
        if set(got) != set(want):
            return False, "series differ: got %d, expected %d" % (len(got), len(want)), expr
        for k in got:
            if set(got[k]) != set(want[k]):
                return False, "timestamps of %s differ" % (dict(k),), expr
            for t in got[k]:
                ok, why = same_value(got[k][t], want[k][t])
                if not ok:
                    return False, "value of %s at %d: %s" % (dict(k), t, why), expr
        return True, "", expr

    def run_file(self, path):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        self.fresh()
        histograms = set()
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            if not line or line.startswith("#"):
                i += 1
                continue
            block = []
            j = i + 1
            while j < len(lines) and lines[j].strip() and not lines[j].strip().startswith("#"):
                first = lines[j].split()[0].lower()
                if first == "clear" or first.startswith("load") or first.startswith("eval"):
                    break  # the next command, without a blank line before it
                block.append(lines[j].strip())
                j += 1
            word = line.split()[0].lower()
            if word.startswith("load"):
                self.load(dur(line.split()[1]), block, histograms, word == "load_with_nhcb")
            elif word == "clear":
                self.fresh()
                histograms = set()
            elif word.startswith("eval"):
                ok, why, expr = self.check(line, block, histograms)
                if not ok and any(h and h in expr for h in histograms):
                    why = "native histograms: %s" % why
                self.results[(name, i + 1)] = (ok, why, expr)
            else:
                self.results[(name, i + 1)] = (False, "unknown command %r" % word, line)
            i = j


def read_known():
    known = {}
    if os.path.exists(KNOWN):
        for ln in open(KNOWN, encoding="utf-8"):
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            key, _, why = ln.partition(" # ")
            f, _, n = key.rpartition(":")
            known[(f, int(n))] = why
    return known


def write_reports(results):
    files = sorted({f for f, _ in results})
    with open(KNOWN, "w", encoding="utf-8") as out:
        out.write("# PromQL conformance statements Strata fails today, as file:line # reason.\n"
                  "# Generated by STRATA_CONFORMANCE_UPDATE=1; a statement leaves this list only by passing.\n")
        for (f, n), (ok, why, _) in sorted(results.items()):
            if not ok:
                out.write("%s:%d # %s\n" % (f, n, why.replace("\n", " ")[:160]))
    reasons = {}
    for (f, n), (ok, why, expr) in results.items():
        if not ok:
            key = re.sub(r"\d+(\.\d+)?", "N", why)[:80]
            reasons.setdefault(key, []).append("%s:%d" % (f, n))
    total = len(results)
    passed = sum(1 for v in results.values() if v[0])
    with open(COMPAT, "w", encoding="utf-8") as out:
        out.write("# PromQL compatibility\n\n"
                  "Prometheus' own PromQL test files (`../shared/conformance/promql/*.test`, Prometheus 3.x\n"
                  "semantics) run against `strata serve` by `tests/integration/test_promql_conformance.py`\n"
                  "in `make test`. Every eval statement counts; the failing ones are listed in\n"
                  "`tests/integration/promql_known_failures.txt` with the reason, and a failure that is not\n"
                  "listed fails the suite.\n\n"
                  "Native-histogram results are compared through the API's JSON, as a client sees them:\n"
                  "count, sum and every populated bucket with its bounds, boundary rule and count (same\n"
                  "1e-6 tolerance as floats). Prometheus' own runner also compares the schema, the width of\n"
                  "an empty zero bucket and explicitly set counter-reset hints, which the JSON does not\n"
                  "carry. `load_with_nhcb` blocks also store each classic histogram as a native histogram\n"
                  "with custom buckets, as Prometheus' loader does.\n\n")
        out.write("**%d of %d eval statements pass (%.1f%%).**\n\n" % (passed, total, 100.0 * passed / total))
        out.write("| file | passed | failed |\n|---|---:|---:|\n")
        for f in files:
            p = sum(1 for (ff, _), v in results.items() if ff == f and v[0])
            t = sum(1 for (ff, _) in results if ff == f)
            out.write("| %s | %d | %d |\n" % (f, p, t - p))
        out.write("\n## Why statements fail (grouped)\n\n| reason | count | examples |\n|---|---:|---|\n")
        for why, where in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            out.write("| %s | %d | %s |\n" % (why.replace("|", "\\|"), len(where), ", ".join(where[:4])))


@unittest.skipUnless(os.path.isdir(CONF_DIR), "conformance files not found at " + CONF_DIR)
class PromqlConformanceTest(unittest.TestCase):
    def test_prometheus_test_files(self):
        runner = Runner()
        try:
            for f in sorted(os.listdir(CONF_DIR)):
                if f.endswith(".test"):
                    runner.run_file(os.path.join(CONF_DIR, f))
        finally:
            runner.close()
        res = runner.results
        for f in sorted({f for f, _ in res}):
            p = sum(1 for (ff, _), v in res.items() if ff == f and v[0])
            t = sum(1 for (ff, _) in res if ff == f)
            print("%s: %d/%d passed" % (f, p, t))
        passed = sum(1 for v in res.values() if v[0])
        print("conformance: %d passed, %d failed" % (passed, len(res) - passed))
        if os.environ.get("STRATA_CONFORMANCE_UPDATE") == "1":
            write_reports(res)
            return
        known = read_known()
        new_failures = ["%s:%d %s -> %s" % (f, n, v[2][:80], v[1]) for (f, n), v in sorted(res.items())
                        if not v[0] and (f, n) not in known]
        fixed = ["%s:%d" % k for k, v in sorted(res.items()) if v[0] and k in known]
        if fixed:
            print("now passing, remove from promql_known_failures.txt: " + ", ".join(fixed[:50]))
        self.assertEqual(new_failures, [], "PromQL statements that used to pass or are not listed fail")


if __name__ == "__main__":
    import warnings
    warnings.simplefilter("ignore", ResourceWarning)  # thousands of short-lived HTTP requests
    unittest.main(verbosity=2)
