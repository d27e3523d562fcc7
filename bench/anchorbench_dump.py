#!/usr/bin/python3
"""Dumps anchorbench's workload (its workload.py, the data the anchor runs ingest) for
bench_codecs --load: the same series, labels, timestamps and values, in a flat binary file.

    python3 bench/anchorbench_dump.py ../shared/anchorbench /tmp/anchor.bin [--series 10000]

Layout (little-endian): b"SDS1", u32 series, u32 steps; per series: u32 label count, per label
u16 name length, name, u16 value length, value; then steps x (i64 timestamp ms, f64 value).
"""
import argparse
import struct
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("anchorbench_dir")
    ap.add_argument("out")
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end-ms", type=int, default=1764040500000)
    a = ap.parse_args()
    sys.path.insert(0, a.anchorbench_dir)
    import workload  # noqa: E402  (anchorbench's own module)

    wl = workload.generate(a.seed, a.series, a.hours, a.end_ms)
    with open(a.out, "wb") as f:
        f.write(b"SDS1" + struct.pack("<II", len(wl.series), wl.steps))
        for s in wl.series:
            f.write(struct.pack("<I", len(s.labels)))
            for k, v in s.labels:
                kb, vb = k.encode(), v.encode()
                f.write(struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb)
            ts = [wl.timestamp(s.host, k) for k in range(wl.steps)]
            f.write(b"".join(struct.pack("<qd", t, float(v)) for t, v in zip(ts, s.values)))


if __name__ == "__main__":
    main()
