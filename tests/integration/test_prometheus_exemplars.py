"""Exemplars from a real Prometheus (Debian's 2.42, with --enable-feature=exemplar-storage): it
scrapes an OpenMetrics target whose counter and histogram buckets carry exemplars (some with their
own timestamps, some stamped by the scrape, some repeated unchanged, one with labels at the
128-character limit) and remote-writes them with send_exemplars: true to Strata. Then
/api/v1/query_exemplars must answer the same on both: the same series, the same exemplars with the
same labels, value strings and timestamps."""

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
from strata_harness import Strata, _tmp_base, free_port, kill_group, spawn  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
JOB = "exemplar-target"
SCRAPE_SECONDS = 12
SYNC_TIMEOUT = 40


class Target(http.server.BaseHTTPRequestHandler):
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        with Target.lock:
            Target.scrapes += 1
            n = Target.scrapes
        now = time.time()
        lines = [
            "# TYPE test_requests counter",
            # An exemplar with its own timestamp, new on every scrape.
            'test_requests_total{path="/a"} %d # {trace_id="a-%d",span_id="s%d"} %d %.3f' % (n * 7, n, n, n, now - 0.5),
            # No timestamp: Prometheus stamps it with the scrape time.
            'test_requests_total{path="/b"} %d # {trace_id="b-%d"} 0.5' % (n, n // 2),
            # Unchanged exemplar repeated by every scrape: stored once.
            'test_requests_total{path="/c"} %d # {trace_id="fixed"} 1 1700000000.000' % n,
            # 8 + 120 characters of labels: the limit, accepted.
            'test_requests_total{path="/d"} %d # {trace_id="%s"} 2 %.3f' % (n, "x" * 120, now - 0.25),
            "# TYPE test_latency_seconds histogram",
        ]
        cum = 0
        for i, b in enumerate(["0.1", "0.5", "1"]):
            cum += n * (i + 1)
            ex = ' # {trace_id="lat-%s-%d"} %s %.3f' % (b, n, float(b) / 2, now - 0.1) if n % 2 else ""
            lines.append('test_latency_seconds_bucket{le="%s"} %d%s' % (b, cum, ex))
        lines.append('test_latency_seconds_bucket{le="+Inf"} %d # {trace_id="inf-%d"} 7.5' % (cum + n, n))
        lines.append("test_latency_seconds_sum %s" % repr(n * 1.25))
        lines.append("test_latency_seconds_count %d" % (cum + n))
        lines.append("# EOF")
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def canonical(data):
    """query_exemplars data, order-independent: Prometheus returns series in map order."""
    return sorted((tuple(sorted(d["seriesLabels"].items())),
                   tuple((tuple(sorted(e["labels"].items())), e["value"], e["timestamp"])
                         for e in d["exemplars"])) for d in data)


@unittest.skipUnless(os.path.exists(PROMETHEUS), "%s is missing (Debian package prometheus)" % PROMETHEUS)
class PrometheusExemplarTest(unittest.TestCase):
    def setUp(self):
        self.http = requests.Session()
        self.addCleanup(self.http.close)
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="promex")
        self.addCleanup(self.strata.cleanup)
        self.strata.start()
        self.target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
        instance = "127.0.0.1:%d" % self.target.server_address[1]
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.addCleanup(self.target.server_close)
        self.addCleanup(self.target.shutdown)
        self.prom_dir = tempfile.mkdtemp(prefix="promex-", dir=_tmp_base())
        self.addCleanup(shutil.rmtree, self.prom_dir, True)
        self.prom_log = os.path.join(self.prom_dir, "prometheus.log")
        self.prom_url = "http://127.0.0.1:%d" % free_port()
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
    send_exemplars: true
    queue_config:
      batch_send_deadline: 1s
""" % (JOB, instance, self.strata.url))
        self.prom = spawn([PROMETHEUS, "--config.file=" + cfg, "--enable-feature=exemplar-storage",
                           "--storage.tsdb.path=" + os.path.join(self.prom_dir, "data"),
                           "--web.listen-address=" + self.prom_url[len("http://"):]], self.prom_log)
        self.addCleanup(lambda: kill_group(self.prom, 15, timeout=30))
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

    def exemplars(self, base, query, start, end):
        r = self.http.get(base + "/api/v1/query_exemplars",
                          params={"query": query, "start": "%.3f" % start, "end": "%.3f" % end}, timeout=30)
        body = r.json()
        self.assertEqual(body.get("status"), "success", "%s: %s" % (base, body))
        return body["data"]

    def test_same_exemplars_as_prometheus(self):
        deadline = time.time() + 30
        while Target.scrapes == 0 and time.time() < deadline:
            time.sleep(0.2)
        self.assertGreater(Target.scrapes, 0, "prometheus does not scrape the target:\n" + self.prom_log_text())
        time.sleep(SCRAPE_SECONDS)
        start, end = 1699999999.0, time.time() - 2
        queries = ["test_requests_total", "test_latency_seconds_bucket",
                   'test_requests_total{path=~"/a|/c"} + on(path) test_latency_seconds_bucket']
        deadline = time.time() + SYNC_TIMEOUT
        while True:
            got = {q: (canonical(self.exemplars(self.prom_url, q, start, end)),
                       canonical(self.exemplars(self.strata.url, q, start, end))) for q in queries}
            if all(p == s for p, s in got.values()) or time.time() > deadline:
                break
            time.sleep(1)
        for q, (p, s) in got.items():
            with self.subTest(q):
                self.assertTrue(p, "prometheus has no exemplars for %s:\n%s" % (q, self.prom_log_text()))
                self.assertEqual(p, s, "%s: Prometheus and Strata differ" % q)
        # The unchanged exemplar was stored once, the 128-character one kept.
        p = {dict(k)["path"]: v for k, v in canonical(self.exemplars(self.strata.url, "test_requests_total", start, end))}
        self.assertEqual(len(p["/c"]), 1)
        self.assertGreater(len(p["/d"]), 3)
        self.assertGreater(len(p["/a"]), 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
