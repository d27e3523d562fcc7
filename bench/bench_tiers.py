"""Storage tiers benchmark: bytes per sample on disk per tier (WAL, warm XOR block, warm adaptive
block, cold block) and query latency per tier (head, warm, cold), on the load generator's data
(`strata bench ingest`, node_exporter-like, 15 s interval).

    /usr/bin/python3 bench/bench_tiers.py [--series N] [--hours H] [--runs R] [--skip-adaptive]
                                          [--range-query-step S]

Two servers ingest the same deterministic data with `--block-range` longer than --hours, so the
whole span stays in the head (WAL bytes measured), then one flush writes it as one block: XOR in
the first (default), adaptive in the second (`--warm-codec adaptive`). The first server is then
restarted with `--cold-dir` and a short `--cold-after`, and one sample of a separate series an
hour after the data makes the day's block old enough: it moves to the cold tier. The same queries
run against head, warm and cold (medians of R runs: the machine is shared). Prints one JSON
object."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../tests/integration"))
from bench_blocks import dir_bytes, time_queries  # noqa: E402
from strata_harness import STRATA_BIN, Strata  # noqa: E402


def ingest(srv, a, end_ms):
    subprocess.run([STRATA_BIN, "bench", "ingest", "--url", srv.url + "/api/v1/write",
                    "--series", str(a.series), "--hours", str(a.hours), "--end-ms", str(end_ms),
                    "--json"], check=True, capture_output=True)


def flush(srv):
    t0 = time.perf_counter()
    r = srv.session.post(srv.url + "/api/v1/admin/tsdb/flush", timeout=3600)
    assert r.status_code == 200, r.text
    return time.perf_counter() - t0


def tiers(srv):
    return srv.get("/api/v1/status/tsdb").json()["data"]["tiers"]


def long_range(srv, end_s, hours, step_s, runs):
    q = "sum by (mode) (rate(node_cpu_seconds_total[5m]))"
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        body = srv.get("/api/v1/query_range", query=q, start="%.3f" % (end_s - hours * 3600),
                       end="%.3f" % end_s, step=str(step_s)).json()
        ts.append(time.perf_counter() - t0)
        assert body["status"] == "success", body
    return {"query": q, "range_h": hours, "step_s": step_s,
            "median_ms": round(statistics.median(ts) * 1000, 2),
            "series": len(body["data"]["result"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--skip-adaptive", action="store_true")
    ap.add_argument("--range-query-step", type=int, default=0,
                    help="also time a range query over all --hours at this step (s), per tier")
    a = ap.parse_args()
    block_range = "%dh" % (int(a.hours) * 2 + 2)
    end_ms = (int(time.time()) // 86400) * 86400 * 1000 - 1
    common = ["--self-scrape-interval", "0", "--wal-fsync", "none", "--block-range", block_range]
    out = {"series": a.series, "hours": a.hours}

    srv = Strata(extra_args=common)
    srv.start()
    cold = srv.data_dir + "-cold"
    try:
        ingest(srv, a, end_ms)
        wal = dir_bytes(os.path.join(srv.data_dir, "wal"))
        q_head = time_queries(srv, end_ms / 1000, a.runs, a.hours)
        r_head = long_range(srv, end_ms / 1000, a.hours, a.range_query_step, a.runs) \
            if a.range_query_step else None
        out["flush_xor_s"] = round(flush(srv), 2)
        t = tiers(srv)
        samples = t["warm"]["samples"]
        out["samples"] = samples
        out["wal_bytes"] = wal
        out["wal_bytes_per_sample"] = round(wal / samples, 3)
        out["warm_xor_bytes"] = t["warm"]["bytes"]
        out["warm_xor_bytes_per_sample"] = round(t["warm"]["bytes"] / samples, 3)
        q_warm = time_queries(srv, end_ms / 1000, a.runs, a.hours)
        r_warm = long_range(srv, end_ms / 1000, a.hours, a.range_query_step, a.runs) \
            if a.range_query_step else None
        srv.stop()
        srv.extra_args = common + ["--cold-dir", cold, "--cold-after", "30m"]
        srv.start()
        r = srv.write([({"__name__": "bench_tiers_marker"}, [(end_ms + 3600_000, 1.0)])])
        assert r.status_code == 204, r.text
        out["demote_s"] = round(flush(srv), 2)
        t = tiers(srv)
        assert t["cold"]["samples"] == samples, t
        out["cold_bytes"] = t["cold"]["bytes"]
        out["cold_bytes_per_sample"] = round(t["cold"]["bytes"] / samples, 3)
        cold_chunks = 0
        for b in os.listdir(cold):
            if len(b) == 26:
                cold_chunks += dir_bytes(os.path.join(cold, b, "chunks"))
        out["cold_chunk_bytes_per_sample"] = round(cold_chunks / samples, 3)
        m = srv.get("/metrics").text
        out["selector"] = [l for l in m.splitlines() if l.startswith("strata_chunk_codec_")]
        q_cold = time_queries(srv, end_ms / 1000, a.runs, a.hours)
        r_cold = long_range(srv, end_ms / 1000, a.hours, a.range_query_step, a.runs) \
            if a.range_query_step else None
        out["queries"] = {q: {"head_ms": q_head[q]["median_ms"], "warm_ms": q_warm[q]["median_ms"],
                              "cold_ms": q_cold[q]["median_ms"], "series": q_cold[q]["series"]}
                          for q in q_head}
        if r_head:
            out["long_range"] = {"head": r_head, "warm": r_warm, "cold": r_cold}
    finally:
        srv.cleanup()
        shutil.rmtree(cold, ignore_errors=True)

    if not a.skip_adaptive:
        srv = Strata(extra_args=common + ["--warm-codec", "adaptive"])
        srv.start()
        try:
            ingest(srv, a, end_ms)
            out["flush_adaptive_s"] = round(flush(srv), 2)
            t = tiers(srv)
            out["warm_adaptive_bytes"] = t["warm"]["bytes"]
            out["warm_adaptive_bytes_per_sample"] = round(t["warm"]["bytes"] / t["warm"]["samples"], 3)
        finally:
            srv.cleanup()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
