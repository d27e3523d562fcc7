"""Shared helpers for Strata's integration tests: a real `strata serve` on a free loopback port,
a hand-written remote-write encoder (protobuf varints + snappy), and query helpers.

Run with Debian's /usr/bin/python3 (python3-requests and python3-snappy are Debian packages)."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import requests
import snappy

STRATA_BIN = os.environ.get("STRATA_BIN", os.path.join(os.path.dirname(__file__), "../../build/strata"))
TMP_BASE = os.environ.get("STRATA_TEST_TMP", tempfile.gettempdir())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field_bytes(num, payload):
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def encode_write_request(series):
    """series: list of (labels dict or list of (name, value) pairs, [(ts_ms, value), ...]).
    Labels are written in the order given (sorted when a dict), so tests can send bad orders."""
    out = bytearray()
    for labels, samples in series:
        pairs = sorted(labels.items()) if isinstance(labels, dict) else list(labels)
        ts = bytearray()
        for name, value in pairs:
            ts += _field_bytes(1, _field_bytes(1, name.encode() if isinstance(name, str) else name)
                               + _field_bytes(2, value.encode() if isinstance(value, str) else value))
        for t, v in samples:
            if isinstance(v, int) and not isinstance(v, bool):
                vb = struct.pack("<Q", v)  # raw bit pattern
            else:
                vb = struct.pack("<d", v)
            sample = b"\x09" + vb + _varint(0x10) + _varint(t)
            ts += _field_bytes(2, sample)
        out += _field_bytes(1, bytes(ts))
    return bytes(out)


def remote_write_body(series):
    return snappy.compress(encode_write_request(series))


RW_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


class Strata:
    """A strata server process on a free port and a data dir that outlives restarts."""

    def __init__(self, data_dir=None, extra_args=(), name="strata"):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix=name + "-", dir=_tmp_base())
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.grpc_port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.data_dir + ".log")
        self.session = requests.Session()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=20):
        log = open(self.log_path, "ab")
        args = [STRATA_BIN, "serve", "--data-dir", self.data_dir,
                "--listen", "127.0.0.1:%d" % self.port] + self.extra_args
        if "--grpc-listen" not in self.extra_args:
            args += ["--grpc-listen", "127.0.0.1:%d" % self.grpc_port]
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("strata exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("strata did not become ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise RuntimeError("strata did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        # A server that died on its own (a sanitizer report, a crash) leaves its log on stderr so
        # the failure can be read in CI's output.
        if self.proc and self.proc.poll() is not None and self.proc.returncode not in (0, -9):
            sys.stderr.write("strata exited with %s; its log:\n%s\n" % (self.proc.returncode, self.log()[-20000:]))
        try:
            self.kill9()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def write(self, series, session=None, timeout=30):
        s = session or self.session
        return s.post(self.url + "/api/v1/write", data=remote_write_body(series),
                      headers=RW_HEADERS, timeout=timeout)

    def get(self, path, **params):
        return self.session.get(self.url + path, params=params, timeout=30)

    def query(self, q, t=None):
        params = {"query": q}
        if t is not None:
            params["time"] = t
        r = self.get("/api/v1/query", **params)
        return r

    def raw_samples(self, selector, end_ms, range_s):
        """Raw samples of each series through a range selector: {labels tuple: [(ts_ms, 'v')]}"""
        r = self.query("%s[%ds]" % (selector, range_s), t="%.3f" % (end_ms / 1000.0))
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError("query failed: %s" % body)
        out = {}
        for s in body["data"]["result"]:
            key = tuple(sorted(s["metric"].items()))
            out[key] = [(int(round(float(t) * 1000)), v) for t, v in s["values"]]
        return out


def _tmp_base():
    os.makedirs(TMP_BASE, exist_ok=True)
    return TMP_BASE
