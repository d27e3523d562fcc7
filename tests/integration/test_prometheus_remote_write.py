"""A real Prometheus (Debian's package) scrapes a target and remote-writes to Strata; Strata's
answers for the same selectors over the same range must equal Prometheus' own, sample for sample,
value string for value string."""

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(__file__))
from strata_harness import Strata, free_port, _tmp_base  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_SECONDS = 20


class Target(http.server.BaseHTTPRequestHandler):
    scrapes = 0
    lock = threading.Lock()

    def do_GET(self):
        with Target.lock:
            Target.scrapes += 1
            n = Target.scrapes
        buckets = [0.1, 0.5, 1.0]
        cum, lines = 0, []
        lines.append("# TYPE test_requests_total counter")
        lines.append('test_requests_total{path="/a",code="200"} %d' % (n * 7))
        lines.append('test_requests_total{path="/b",code="500"} %d' % (n // 3))
        lines.append("# TYPE test_temperature_celsius gauge")
        lines.append("test_temperature_celsius %.6f" % (20 + (n % 5) * 0.123456789))
        lines.append("# TYPE test_latency_seconds histogram")
        for i, b in enumerate(buckets):
            cum += n * (i + 1)
            lines.append('test_latency_seconds_bucket{le="%s"} %d' % (b, cum))
        lines.append('test_latency_seconds_bucket{le="+Inf"} %d' % (cum + n))
        lines.append("test_latency_seconds_sum %.3f" % (n * 1.25))
        lines.append("test_latency_seconds_count %d" % (cum + n))
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@unittest.skipUnless(os.path.exists(PROMETHEUS), "Debian's prometheus package is not installed")
class PrometheusRemoteWriteTest(unittest.TestCase):
    def setUp(self):
        self.strata = Strata(extra_args=["--self-scrape-interval", "0"], name="promrw").start()
        self.target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
        self.target_port = self.target.server_address[1]
        threading.Thread(target=self.target.serve_forever, daemon=True).start()
        self.prom_dir = tempfile.mkdtemp(prefix="prom-", dir=_tmp_base())
        self.prom_port = free_port()
        cfg = os.path.join(self.prom_dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: target
    static_configs:
      - targets: ['127.0.0.1:%d']
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
""" % (self.target_port, self.strata.url))
        self.prom_log = open(os.path.join(self.prom_dir, "log"), "wb")
        self.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(self.prom_dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.prom_port],
            stdout=self.prom_log, stderr=self.prom_log, start_new_session=True)
        self.prom_url = "http://127.0.0.1:%d" % self.prom_port
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(self.prom_url + "/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            self.fail("prometheus did not start")

    def tearDown(self):
        if self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(20)
            except subprocess.TimeoutExpired:
                self.prom.kill()
        self.prom_log.close()
        self.target.shutdown()
        self.strata.cleanup()
        shutil.rmtree(self.prom_dir, ignore_errors=True)

    def query(self, base, path, **params):
        r = requests.get(base + path, params=params, timeout=20)
        body = r.json()
        self.assertEqual(body.get("status"), "success", "%s%s %s: %s" % (base, path, params, body))
        return body["data"]

    @staticmethod
    def normalise(result):
        out = {}
        for s in result:
            key = tuple(sorted(s["metric"].items()))
            out[key] = s.get("values") or [s.get("value")]
        return out

    def both(self, path, **params):
        return (self.normalise(self.query(self.prom_url, path, **params)["result"]),
                self.normalise(self.query(self.strata.url, path, **params)["result"]))

    def test_same_answers_as_prometheus(self):
        start = time.time()
        time.sleep(SCRAPE_SECONDS)
        # Stop the target: the next scrapes fail, up turns 0 and stale markers are written.
        self.target.shutdown()
        self.target.server_close()
        time.sleep(4)
        # Compare at a time a few seconds back: a scrape's samples carry the scrape's start time
        # but appear when it ends (a failing scrape can take up to its timeout), so the newest
        # second is not final in Prometheus yet, let alone sent to Strata.
        t = "%.3f" % (time.time() - 5)
        span = int(time.time() - start) + 30
        selectors = ['{job="target"}', "test_requests_total", '{__name__=~"test_.*", code!="500"}',
                     "test_latency_seconds_bucket", "up", "scrape_duration_seconds"]

        def converge(path, **params):
            # Remote write lags behind by up to a few seconds: poll until both sides agree.
            deadline = time.time() + 40
            while True:
                prom, strata = self.both(path, **params)
                if prom == strata or time.time() > deadline:
                    return prom, strata
                time.sleep(1)

        prom, strata = converge("/api/v1/query", query='{job="target"}[%ds]' % span, time=t)
        self.assertGreater(len(prom), 8)
        n_series = len(prom)
        samples = sum(len(v) for v in prom.values())
        self.assertGreater(samples, 8 * (SCRAPE_SECONDS - 5))
        for sel in selectors:
            with self.subTest(selector=sel):
                prom, strata = converge("/api/v1/query", query="%s[%ds]" % (sel, span), time=t)
                self.assertTrue(prom, "prometheus returned nothing for " + sel)
                self.assertEqual(sorted(prom), sorted(strata), "label sets differ for " + sel)
                for k in prom:
                    self.assertEqual(prom[k], strata[k], "samples differ for %s %s" % (sel, k))
                # Instant vectors, evaluated every second over the range, with lookback and
                # staleness handling.
                pr, sr = converge("/api/v1/query_range", query=sel, start="%.3f" % (start + 1),
                                  end=t, step="1s")
                self.assertEqual(pr, sr, "query_range differs for " + sel)
        # Series and label APIs agree too.
        pj = self.query(self.prom_url, "/api/v1/series", **{"match[]": '{job="target"}', "start": str(start), "end": t})
        sj = self.query(self.strata.url, "/api/v1/series", **{"match[]": '{job="target"}', "start": str(start), "end": t})
        self.assertEqual(sorted(map(lambda d: sorted(d.items()), pj)), sorted(map(lambda d: sorted(d.items()), sj)))
        print("compared %d series, %d samples with Prometheus" % (n_series, samples))


if __name__ == "__main__":
    unittest.main(verbosity=2)
