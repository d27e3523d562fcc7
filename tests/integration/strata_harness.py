"""Shared helpers for Strata's integration tests: a real `strata serve` on a free loopback port,
a hand-written remote-write encoder (protobuf varints + snappy), query helpers, and the way
Prometheus formats numbers in its JSON answers.

Run with Debian's /usr/bin/python3 (python3-requests and python3-snappy are Debian packages)."""

import atexit
import decimal
import math
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

STALE_NAN = 0x7FF0000000000002  # Prometheus' staleness marker, as a raw bit pattern
NORMAL_NAN = 0x7FF8000000000001  # the NaN Prometheus writes for a NaN value (math.NaN())


# ---- processes ---------------------------------------------------------------------------------

_LIVE = set()  # process groups started by the tests: killed at exit whatever happened


def spawn(args, log_path, **kw):
    """Starts a process in its own process group, output appended to log_path; it is killed at
    interpreter exit if the test did not end it."""
    with open(log_path, "ab") as log:
        p = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True, **kw)
    _LIVE.add(p)
    return p


def kill_group(p, sig=signal.SIGKILL, timeout=20):
    """Signals p's process group (p leads it) and reaps p. Returns its exit status."""
    if p is None:
        return None
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    _LIVE.discard(p)
    return p.returncode


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        try:
            kill_group(p, signal.SIGKILL, 5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- remote write 1.0 encoding ----------------------------------------------------------------

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


def _bytes(x):
    return x.encode() if isinstance(x, str) else x


def encode_sample(t, v):
    """Sample{value=1 (double), timestamp=2 (int64)}. An int v is a raw IEEE-754 bit pattern
    (for NaN payloads such as the staleness marker)."""
    if isinstance(v, int) and not isinstance(v, bool):
        vb = struct.pack("<Q", v)
    else:
        vb = struct.pack("<d", v)
    return b"\x09" + vb + b"\x10" + _varint(t)


def encode_write_request(series):
    """series: list of (labels dict or list of (name, value) pairs, [(ts_ms, value), ...]).
    Labels are written in the order given (sorted when a dict), so tests can send bad orders;
    names and values may be bytes (for invalid UTF-8)."""
    out = bytearray()
    for labels, samples in series:
        pairs = sorted(labels.items()) if isinstance(labels, dict) else list(labels)
        ts = bytearray()
        for name, value in pairs:
            ts += _field_bytes(1, _field_bytes(1, _bytes(name)) + _field_bytes(2, _bytes(value)))
        for t, v in samples:
            ts += _field_bytes(2, encode_sample(t, v))
        out += _field_bytes(1, bytes(ts))
    return bytes(out)


def remote_write_body(series):
    return snappy.compress(encode_write_request(series))


RW_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "strata-integration-test",
}


# ---- Prometheus' number formatting -------------------------------------------------------------

def prom_float(v):
    """A sample value as Prometheus' JSON API writes it (jsonutil.MarshalFloat): Go's
    strconv.FormatFloat(v, 'f', -1, 64), switching to 'e' when |v| < 1e-6 or |v| >= 1e21;
    NaN, +Inf, -Inf spelled so. An int is a raw bit pattern."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = struct.unpack("<d", struct.pack("<Q", v))[0]
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    d = decimal.Decimal(repr(v))  # repr: the shortest digits that round-trip, as Go's -1
    if abs(v) < 1e-6 or abs(v) >= 1e21:
        sign, digits, exp = d.normalize().as_tuple()
        ds = "".join(map(str, digits))
        e = exp + len(ds) - 1
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return "%s%se%s%02d" % ("-" if sign else "", mant, "-" if e < 0 else "+", abs(e))
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def prom_ts(ms):
    """A timestamp as Prometheus' JSON writes it (jsonutil.MarshalTimestamp): seconds, and when
    there are milliseconds a point and exactly three digits (1700000000.120)."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return sign + ("%d" % (ms // 1000)) + ((".%03d" % (ms % 1000)) if ms % 1000 else "")


# ---- the server --------------------------------------------------------------------------------

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

    def start(self, timeout=30):
        args = [STRATA_BIN, "serve", "--data-dir", self.data_dir,
                "--listen", "127.0.0.1:%d" % self.port] + self.extra_args
        if "--grpc-listen" not in self.extra_args:
            args += ["--grpc-listen", "127.0.0.1:%d" % self.grpc_port]
        self.proc = spawn(args, self.log_path)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                _LIVE.discard(self.proc)
                raise RuntimeError("strata exited with %s:\n%s" % (self.proc.returncode, self.log()[-20000:]))
            try:
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        kill_group(self.proc)
        raise RuntimeError("strata did not become ready in %ds:\n%s" % (timeout, self.log()[-20000:]))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def kill9(self):
        if self.proc:
            kill_group(self.proc, signal.SIGKILL)

    def stop(self, timeout=30):
        """SIGTERM and wait; a server that does not exit in time is killed and this raises."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise RuntimeError("strata did not stop on SIGTERM within %ds" % timeout)
            _LIVE.discard(self.proc)
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        # A server that died on its own (a sanitizer report, a crash) leaves its log on stderr so
        # the failure can be read in CI's output.
        if self.proc and self.proc.poll() is not None and self.proc.returncode not in (0, -9):
            sys.stderr.write("strata exited with %s; its log:\n%s\n" % (self.proc.returncode, self.log()[-20000:]))
        try:
            self.kill9()
        finally:
            self.session.close()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            try:
                os.unlink(self.log_path)
            except OSError:
                pass

    def write(self, series, session=None, timeout=30):
        s = session or self.session
        return s.post(self.url + "/api/v1/write", data=remote_write_body(series),
                      headers=RW_HEADERS, timeout=timeout)

    def post_write_body(self, body, headers=None, timeout=30):
        return self.session.post(self.url + "/api/v1/write", data=body,
                                 headers=headers or RW_HEADERS, timeout=timeout)

    def get(self, path, **params):
        return self.session.get(self.url + path, params=params, timeout=30)

    def query(self, q, t=None):
        params = {"query": q}
        if t is not None:
            params["time"] = t
        return self.get("/api/v1/query", **params)

    def raw_samples(self, selector, end_ms, range_s):
        """Raw samples of each series through a range selector: {labels tuple: [(ts_ms, 'v')]}"""
        return raw_samples(self.session, self.url, selector, end_ms, range_s)


def raw_samples(session, url, selector, end_ms, range_s):
    """Raw samples through `selector[range_s s]` evaluated at end_ms, from any Prometheus-API
    server: {sorted labels tuple: [(ts_ms, 'value string')]}."""
    r = session.get(url + "/api/v1/query", params={"query": "%s[%ds]" % (selector, range_s),
                                                   "time": "%.3f" % (end_ms / 1000.0)}, timeout=60)
    try:
        body = r.json()
    except ValueError:
        raise AssertionError("query %s[%ds]: HTTP %d, not JSON: %r" % (selector, range_s, r.status_code, r.text[:500]))
    if body.get("status") != "success":
        raise AssertionError("query %s[%ds] failed: %s" % (selector, range_s, body))
    out = {}
    for s in body["data"]["result"]:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(int(round(float(t) * 1000)), v) for t, v in s["values"]]
    return out


def _tmp_base():
    os.makedirs(TMP_BASE, exist_ok=True)
    return TMP_BASE
