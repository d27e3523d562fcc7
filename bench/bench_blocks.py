"""Blocks benchmark: bytes per sample in the WAL and in blocks cut from the head, and query
latency from the head vs from blocks, on data from the load generator (`strata bench ingest`).

    /usr/bin/python3 bench/bench_blocks.py [--series N] [--hours H] [--runs R]

Prints one JSON object. The same data is queried before the flush (head) and after it (blocks);
the median of R runs of each query is reported (the machine is shared: medians, not means)."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from strata_harness import STRATA_BIN, Strata  # noqa: E402

QUERIES = [
    'node_cpu_seconds_total{instance="host-00001:9100",mode="idle"}[1h]',
    'rate(node_cpu_seconds_total{mode="user"}[5m])',
    'sum by (instance) (node_memory_MemAvailable_bytes)',
]


def dir_bytes(path, pred=lambda name: True):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            if pred(os.path.relpath(os.path.join(root, f), path)):
                total += os.path.getsize(os.path.join(root, f))
    return total


def time_queries(srv, end_s, runs, hours):
    out = {}
    ts = []
    q = "sum by (mode) (rate(node_cpu_seconds_total[5m]))"
    for _ in range(runs):
        t0 = time.perf_counter()
        body = srv.get("/api/v1/query_range", query=q, start="%.3f" % (end_s - hours * 3600),
                       end="%.3f" % end_s, step="600").json()
        ts.append(time.perf_counter() - t0)
        assert body["status"] == "success", body
    out["range %gh step 10m: %s" % (hours, q)] = {"median_ms": round(statistics.median(ts) * 1000, 2),
                                                   "series": len(body["data"]["result"])}
    for q in QUERIES:
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r = srv.get("/api/v1/query", query=q, time="%.3f" % end_s)
            ts.append(time.perf_counter() - t0)
            body = r.json()
            assert body["status"] == "success", body
        out[q] = {"median_ms": round(statistics.median(ts) * 1000, 2),
                  "series": len(body["data"]["result"])}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=4)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--block-range", default="24h",
                    help="longer than --hours keeps everything in the head until the flush")
    a = ap.parse_args()
    srv = Strata(extra_args=["--self-scrape-interval", "0", "--wal-fsync", "none",
                             "--block-range", a.block_range])
    srv.start()
    try:
        end_ms = (int(time.time()) // 86400) * 86400 * 1000 - 1
        subprocess.run([STRATA_BIN, "bench", "ingest", "--url", srv.url + "/api/v1/write",
                        "--series", str(a.series), "--hours", str(a.hours), "--end-ms", str(end_ms),
                        "--json"], check=True, capture_output=True)
        status = srv.get("/api/v1/status/tsdb").json()["data"]["headStats"]
        samples = int(round(a.hours * 3600 / 15)) * a.series
        wal = dir_bytes(os.path.join(srv.data_dir, "wal"))
        head_q = time_queries(srv, end_ms / 1000, a.runs, a.hours)
        t0 = time.perf_counter()
        r = srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=600)
        flush_s = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        blocks = [d for d in os.listdir(srv.data_dir) if len(d) == 26]
        stored = 0
        for b in blocks:
            with open(os.path.join(srv.data_dir, b, "meta.json")) as f:
                stored += json.load(f)["stats"]["numSamples"]
        block_bytes = sum(dir_bytes(os.path.join(srv.data_dir, b)) for b in blocks)
        chunk_bytes = sum(dir_bytes(os.path.join(srv.data_dir, b, "chunks")) for b in blocks)
        index_bytes = sum(os.path.getsize(os.path.join(srv.data_dir, b, "index")) for b in blocks)
        block_q = time_queries(srv, end_ms / 1000, a.runs, a.hours)
        levels = []
        for b in blocks:
            with open(os.path.join(srv.data_dir, b, "meta.json")) as f:
                levels.append(json.load(f)["compaction"]["level"])
        print(json.dumps({
            "series": a.series, "hours": a.hours, "samples": stored, "head_series": status["numSeries"],
            "wal_bytes": wal, "wal_bytes_per_sample": round(wal / stored, 3),
            "block_range": a.block_range, "blocks": len(blocks), "block_levels": sorted(levels),
            "block_bytes": block_bytes,
            "block_bytes_per_sample": round(block_bytes / stored, 3),
            "chunk_bytes_per_sample": round(chunk_bytes / stored, 3),
            "index_bytes": index_bytes, "flush_seconds": round(flush_s, 2),
            "expected_samples": samples,
            "query_head": head_q, "query_blocks": block_q,
        }, indent=1))
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
