#!/usr/bin/python3
"""Bytes per sample VictoriaMetrics (Debian's victoria-metrics) needs for a dataset dump, measured
as anchorbench measures it: import, /internal/force_flush, /internal/force_merge, wait for merges,
then the apparent size of data/ and indexdb/ under -storageDataPath.

    python3 bench/vm_compare.py /tmp/ds.hard.bin [/tmp/ds.gen.bin ...]

Dumps come from bench/anchorbench_dump.py or `bench_codecs --dump PREFIX` (layout in the former).
Values go over the wire in JSON with Python's shortest round-trip float repr, so VictoriaMetrics
receives every double exactly; what it keeps is its own (lossy past ~12 significant digits).
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


def read_dump(path):
    with open(path, "rb") as f:
        assert f.read(4) == b"SDS1"
        n, steps = struct.unpack("<II", f.read(8))
        for _ in range(n):
            (nl,) = struct.unpack("<I", f.read(4))
            labels = {}
            for _ in range(nl):
                (kl,) = struct.unpack("<H", f.read(2))
                k = f.read(kl).decode()
                (vl,) = struct.unpack("<H", f.read(2))
                labels[k] = f.read(vl).decode()
            raw = f.read(16 * steps)
            pairs = [struct.unpack_from("<qd", raw, 16 * i) for i in range(steps)]
            yield labels, pairs, n, steps


def apparent(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=600):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def measure(dump):
    work = tempfile.mkdtemp(prefix="vmcmp-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [shutil.which("victoria-metrics") or "victoria-metrics", f"-storageDataPath={work}/vm",
         f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                get(base + "/health", 2)
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        total = 0
        batch = []
        for labels, pairs, n, steps in read_dump(dump):
            batch.append(json.dumps({"metric": labels, "values": [v for _, v in pairs],
                                     "timestamps": [t for t, _ in pairs]}))
            total += len(pairs)
            if len(batch) == 100:
                urllib.request.urlopen(base + "/api/v1/import", data="\n".join(batch).encode(),
                                       timeout=600).read()
                batch = []
        if batch:
            urllib.request.urlopen(base + "/api/v1/import", data="\n".join(batch).encode(),
                                   timeout=600).read()
        get(base + "/internal/force_flush")
        time.sleep(2)
        get(base + "/internal/force_merge")
        last, stable = -1, 0
        for _ in range(600):
            size = apparent(f"{work}/vm")
            stable = stable + 1 if size == last else 0
            if stable >= 6:
                break
            last = size
            time.sleep(0.5)
        data = apparent(f"{work}/vm/data")
        index = apparent(f"{work}/vm/indexdb")
        print(f"{os.path.basename(dump)}: {total} samples; VictoriaMetrics data/ "
              f"{data / total:.3f} B/sample, data/ + indexdb/ {(data + index) / total:.3f} B/sample")
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        measure(path)
