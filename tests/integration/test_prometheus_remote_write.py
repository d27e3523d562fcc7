"""A real Prometheus (Debian's 2.42 package) scrapes a target served by this test every second
and remote-writes to Strata. Once Strata has everything Prometheus has, the answers of both for
the same selectors over the same range must be identical: the same label sets in the same
order, the same timestamps, the same value strings. That covers the scraped counters, gauges
(with values that need exponent form, NaN, label values with escapes and UTF-8) and a classic
histogram, Prometheus' own per-target series (up, scrape_duration_seconds, ...), and the
staleness markers Prometheus writes when the target goes away."""

import http.server
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, _tmp_base, free_port, kill_group, raw_samples, spawn  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
JOB = "target"
SCRAPE_SECONDS = 25
SYNC_TIMEOUT = 40


class Target(http.server.BaseHTTPRequestHandler):
    """Text exposition whose values change with every scrape."""
    scrapes = 0
    lock = threading.Lock()
    extreme = True  # gauges whose values Prometheus' JSON writes in exponent form

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        with Target.lock:
            Target.scrapes += 1
            n = Target.scrapes
        lines = [
            "# HELP test_requests_total Requests served.",
            "# TYPE test_requests_total counter",
            'test_requests_total{path="/a",code="200"} %d' % (n * 7),
            'test_requests_total{path="/b",code="500"} %d' % (n // 3),
            'test_requests_total{path="/c\\"q\\\\x",code="200"} %s' % repr(n * 0.1),
            "# TYPE test_bytes_total counter",
            "test_bytes_total %d" % (n * 1234567),
            "# TYPE test_temperature_celsius gauge",
            "test_temperature_celsius %.6f" % (20 + (n % 5) * 0.123456789),
            "# TYPE test_balance gauge",
            "test_balance %s" % repr(-1.5 * n + 0.25),
            "# TYPE test_nan gauge",
            "test_nan %s" % ("NaN" if n % 2 else "1"),
            "# TYPE test_info gauge",
            'test_info{name="\u00fcmlaut \u2713",msg="line1\\nline2",empty=""} 1',
        ]
        if Target.extreme:
            lines += ["# TYPE test_tiny gauge", "test_tiny %s" % repr(n * 1.1e-9),
                      "# TYPE test_huge gauge", "test_huge %s" % repr(n * 3.3e22)]
        lines += [
            "# HELP test_latency_seconds Latency.",
            "# TYPE test_latency_seconds histogram",
        ]
        cum = 0
        for i, b in enumerate(["0.1", "0.5", "1"]):
            cum += n * (i + 1)
            lines.append('test_latency_seconds_bucket{le="%s"} %d' % (b, cum))
        lines.append('test_latency_seconds_bucket{le="+Inf"} %d' % (cum + n))
        lines.append("test_latency_seconds_sum %s" % repr(n * 1.25))
        lines.append("test_latency_seconds_count %d" % (cum + n))
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def key(metric):
    return tuple(sorted(metric.items()))


@unittest.skipUnless(os.path.exists(PROMETHEUS), "%s is missing (Debian package prometheus)" % PROMETHEUS)
class PrometheusRemoteWriteTest(unittest.TestCase):
    def setUp(self):
        self.http = requests.Session()
        self.addCleanup(self.http.close)
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="promrw")
        self.addCleanup(self.strata.cleanup)
        self.strata.start()

        self.target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
        self.target_serving = True
        self.instance = "127.0.0.1:%d" % self.target.server_address[1]
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.addCleanup(self.stop_target)

        self.prom_dir = tempfile.mkdtemp(prefix="prom-", dir=_tmp_base())
        self.addCleanup(shutil.rmtree, self.prom_dir, True)
        self.prom_log = os.path.join(self.prom_dir, "prometheus.log")
        self.prom_port = free_port()
        self.prom_url = "http://127.0.0.1:%d" % self.prom_port
        cfg = os.path.join(self.prom_dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: ['%s']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
""" % (JOB, self.instance, self.strata.url))
        self.prom = spawn([PROMETHEUS, "--config.file=" + cfg,
                           "--storage.tsdb.path=" + os.path.join(self.prom_dir, "data"),
                           "--web.listen-address=127.0.0.1:%d" % self.prom_port],
                          self.prom_log)
        self.addCleanup(self.stop_prometheus)
        deadline = time.time() + 60
        while True:
            if self.prom.poll() is not None:
                self.fail("prometheus exited with %s:\n%s" % (self.prom.returncode, self.prom_log_text()))
            try:
                if self.http.get(self.prom_url + "/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                self.fail("prometheus was not ready in 60 s:\n" + self.prom_log_text())
            time.sleep(0.2)

    def prom_log_text(self):
        try:
            with open(self.prom_log, "rb") as f:
                return f.read().decode(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop_target(self):
        if self.target_serving:
            self.target_serving = False
            self.target.shutdown()
            self.target.server_close()

    def stop_prometheus(self):
        import signal
        kill_group(self.prom, signal.SIGTERM, timeout=30)

    # ---- queries ------------------------------------------------------------------------------

    def api(self, base, path, params):
        r = self.http.get(base + path, params=params, timeout=60)
        try:
            body = r.json()
        except ValueError:
            self.fail("%s%s %s: HTTP %d, not JSON: %r" % (base, path, params, r.status_code, r.text[:300]))
        self.assertEqual(body.get("status"), "success", "%s%s %s: %s" % (base, path, params, body))
        return body["data"]

    def both(self, path, **params):
        return self.api(self.prom_url, path, params), self.api(self.strata.url, path, params)

    def assertSameResult(self, prom, strata, what):
        """Identical results: label sets in the same order, the same points as strings."""
        self.assertEqual(prom["resultType"], strata["resultType"], what)
        p, s = prom["result"], strata["result"]
        pk, sk = [key(x["metric"]) for x in p], [key(x["metric"]) for x in s]
        if sorted(pk) != sorted(sk):
            self.fail("%s: label sets differ\n only in Prometheus: %s\n only in Strata: %s"
                      % (what, sorted(set(pk) - set(sk)), sorted(set(sk) - set(pk))))
        self.assertEqual(pk, sk, "%s: the same series in a different order" % what)
        field = "values" if prom["resultType"] == "matrix" else "value"
        problems = []
        for a, b in zip(p, s):
            if a[field] == b[field]:
                continue
            if field == "value":
                problems.append("%s: Prometheus %s, Strata %s" % (a["metric"], a[field], b[field]))
                continue
            pa, pb = {t: v for t, v in a[field]}, {t: v for t, v in b[field]}
            diffs = ["    at %s: Prometheus %s, Strata %s" % (t, pa.get(t), (pb.get(t) or "")[:40] or None)
                     for t in sorted(set(pa) | set(pb)) if pa.get(t) != pb.get(t)]
            problems.append("%s: %d of %d points differ, first 3:\n%s"
                            % (a["metric"], len(diffs), len(pa), "\n".join(diffs[:3])))
        if problems:
            self.fail("%s: %d series differ:\n  %s" % (what, len(problems), "\n  ".join(problems)))

    # ---- the test -----------------------------------------------------------------------------

    def test_same_answers_as_prometheus(self):
        started = time.time()
        # Prometheus' first scrape comes a few seconds after it starts (target discovery is
        # throttled): wait for it, so that the target is scraped for SCRAPE_SECONDS.
        deadline = time.time() + 30
        while True:
            up = self.api(self.prom_url, "/api/v1/query", {"query": 'up{job="%s"}' % JOB})["result"]
            if up or time.time() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual([x["value"][1] for x in up], ["1"], "prometheus does not scrape the target:\n"
                         + self.prom_log_text())
        start = time.time()
        time.sleep(SCRAPE_SECONDS)
        # The target goes away: the scrapes fail, up turns 0, stale markers are written.
        self.stop_target()
        time.sleep(5)
        # Two seconds back: every scrape stamped before `end` is committed in Prometheus by now
        # (the scrape timeout is 900 ms), so its answers up to `end` no longer change.
        end = time.time() - 2
        end_ms = int(end * 1000)
        span = int(end - start) + 60

        # Wait until Strata has every sample Prometheus has up to `end`: counts per series.
        sel_all = '{job="%s"}' % JOB
        deadline = time.time() + SYNC_TIMEOUT
        while True:
            prom = raw_samples(self.http, self.prom_url, sel_all, end_ms, span)
            strata = raw_samples(self.http, self.strata.url, sel_all, end_ms, span)
            pc = {k: len(v) for k, v in prom.items()}
            sc = {k: len(v) for k, v in strata.items()}
            if pc == sc or time.time() > deadline:
                break
            time.sleep(1)
        if pc != sc:
            diff = {dict(k).get("__name__", "?") + str(dict(k)): (pc.get(k), sc.get(k))
                    for k in set(pc) | set(sc) if pc.get(k) != sc.get(k)}
            self.fail("Strata did not catch up with Prometheus in %d s; samples per series "
                      "(Prometheus, Strata) where they differ: %s\nstrata log:\n%s\nprometheus log:\n%s"
                      % (SYNC_TIMEOUT, diff, self.strata.log()[-3000:], self.prom_log_text()))
        n_series, n_samples = len(prom), sum(pc.values())
        names = {dict(k)["__name__"] for k in prom}
        for want in ("up", "scrape_duration_seconds", "scrape_samples_scraped", "test_requests_total",
                     "test_latency_seconds_bucket", "test_info") + (("test_huge",) if Target.extreme else ()):
            self.assertIn(want, names, "prometheus has no %s" % want)
        self.assertGreater(n_samples, 15 * (SCRAPE_SECONDS - 5), "too few samples scraped")

        selectors = [
            sel_all,
            "test_requests_total",
            '{__name__=~"test_.*", instance="%s"}' % self.instance,
            "test_latency_seconds_bucket",
            'test_latency_seconds_bucket{le="0.5"}',
            'test_latency_seconds_bucket{le=~"0.1|\\\\+Inf"}',
            '{__name__=~"test_latency_seconds_(sum|count)"}',
            "test_info",
            '{__name__=~"test_(tiny|huge|balance|nan)"}',
            "up",
            "scrape_duration_seconds",
            '{__name__=~"scrape_.*", job="%s"}' % JOB,
        ]
        t_end = "%.3f" % end
        mid = "%.3f" % (start + SCRAPE_SECONDS / 2)
        after_stop = "%.3f" % (end - 2)
        compared = 0
        for sel in selectors:
            with self.subTest(selector=sel):
                # Raw samples through a range selector.
                p, s = self.both("/api/v1/query", query="%s[%ds]" % (sel, span), time=t_end)
                self.assertTrue(p["result"], "prometheus returned nothing for " + sel)
                self.assertSameResult(p, s, "%s[%ds] at %s" % (sel, span, t_end))
                compared += sum(len(x["values"]) for x in p["result"])
                # Instant vectors over the range: lookback and staleness.
                for step in ("1s", "7s"):
                    p, s = self.both("/api/v1/query_range", query=sel, start="%.3f" % (start + 1),
                                     end=t_end, step=step)
                    self.assertSameResult(p, s, "query_range %s step %s" % (sel, step))
                for t in (mid, after_stop, t_end):
                    p, s = self.both("/api/v1/query", query=sel, time=t)
                    self.assertSameResult(p, s, "instant %s at %s" % (sel, t))
        # The metadata APIs agree too.
        rng = {"start": "%.3f" % start, "end": t_end}
        p, s = self.both("/api/v1/series", **{"match[]": sel_all}, **rng)
        self.assertEqual(sorted(map(key, p)), sorted(map(key, s)), "series differ")
        p, s = self.both("/api/v1/labels", **{"match[]": sel_all}, **rng)
        self.assertEqual(p, s, "label names differ")
        p, s = self.both("/api/v1/label/__name__/values", **{"match[]": sel_all}, **rng)
        self.assertEqual(p, s, "metric names differ")
        print("compared %d series, %d raw samples with Prometheus (%d selectors); %.1f s"
              % (n_series, compared, len(selectors), time.time() - started), flush=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
