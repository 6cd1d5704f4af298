"""The broker under test as a child process: started with its settings, its ports read
from its log, stopped with SIGTERM, and what its log shows afterwards."""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import time

from ws_client import WS_PATH

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0       # above node.shutdown_timeout_ms (10 s)


def die_with_parent():
    """In the child before exec: a killed fuzzer must not leave a broker behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Broker:
    """The broker as a child process: an MQTT and a WebSocket listener on `host` (and with
    `http`, its HTTP server there too), each on a port the kernel picks, read from the log
    into `ports` ("tcp", "ws", "http", and "cluster" for a peer server that `settings`
    configure); `settings` are more "key=value" overrides (last wins)."""

    def __init__(self, binary, workdir, settings=(), node_id="wire-fuzz", host=HOST, http=False):
        self.binary = binary
        self.settings = list(settings)
        self.node_id = node_id
        self.host = host
        self.http = http
        self.log_path = os.path.join(workdir, "broker.log")
        self.data_dir = os.path.join(workdir, "data")
        self.proc = None
        self.ports = {}

    def start(self):
        overrides = ["listeners[0].type=mqtt", f"listeners[0].bind={self.host}:0",
                     "listeners[1].type=ws", f"listeners[1].bind={self.host}:0",
                     f"listeners[1].path={WS_PATH}", f"http.bind={self.host}:0" if self.http else "http.bind=",
                     f"node.id={self.node_id}", f"node.data_dir={self.data_dir}"] + self.settings
        shutil.rmtree(self.data_dir, ignore_errors=True)  # an earlier run's sessions would change this one
        argv = [self.binary]
        for override in overrides:
            argv += ["--set", override]
        # RINGMQ_* variables of the caller would configure this broker too.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RINGMQ_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, preexec_fn=die_with_parent)
        self.wait_started()

    def wait_started(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            log = self.log_text()
            if " started: " in log:
                for kind, port in re.findall(r"listening: listener=(\w+):\S+ address=\S+:(\d+)", log):
                    self.ports[{"mqtt": "tcp"}.get(kind, kind)] = int(port)  # keyed by transport
                for kind, pattern in (("http", r"http listening: address=\S+:(\d+)"),
                                      ("cluster", r"peer server listening: address=\S+ advertised=\S+:(\d+)")):
                    found = re.search(pattern, log)
                    if found:
                        self.ports[kind] = int(found.group(1))
                if {"tcp", "ws"} <= self.ports.keys():
                    return
                raise RuntimeError("broker started without both listeners:\n" + self.log_tail())
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited at start ({describe_status(self.proc.returncode)}):\n"
                                   + self.log_tail())
            time.sleep(0.02)
        raise RuntimeError("broker did not start in time:\n" + self.log_tail())

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit status (SIGKILL and None if it does not stop in time)."""
        if not self.alive():
            return self.proc.returncode
        self.proc.send_signal(signal.SIGCONT)  # a stopped process would never see the SIGTERM
        self.proc.terminate()
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def peak_memory(self):
        """VmHWM of the running broker: a claimed length it allocates up front shows up here."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith("VmHWM")), None)
        except OSError:
            return None

    def save_stacks(self, path):
        """Every thread's backtrace, when gdb is there: what a hang is waiting for."""
        gdb = shutil.which("gdb")
        if not gdb or not self.alive():
            return False
        try:
            with open(path, "wb") as out:
                subprocess.run([gdb, "-p", str(self.proc.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt"], stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT, timeout=60)
            return True
        except (OSError, subprocess.TimeoutExpired):
            return False


def save_batch(artifacts, jobs, what):
    """Writes a batch of jobs (one JSON object per line, as --replay reads them) to the artifacts
    directory; returns its path."""
    path = os.path.join(artifacts, f"{what}-batch-{jobs[0]['index']}-{jobs[-1]['index']}.jsonl")
    with open(path, "w") as f:
        for job in jobs:
            f.write(json.dumps(job) + "\n")
    return path


def describe_status(code):
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exit code {code}"


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z\s+(\w+)\s+\S+\s+(.*)$")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|"
                       r"runtime error:|terminate called|Assertion .* failed")


def log_findings(text):
    """What a clean run should not show: warn/error lines by message, sanitizer or abort
    reports, and lines outside the log format (a logged field holding a client's newline)."""
    notable, fatal, unframed = {}, [], []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            # Sanitizers and std::terminate write their own lines; only those are looked at,
            # so that a client id spelling "runtime error:" cannot fail the run.
            (fatal if SANITIZER.search(line) else unframed).append(line)
        elif m.group(1) in ("warn", "warning", "error", "critical"):
            key = m.group(1) + " " + m.group(2).split(":")[0]
            count, example = notable.get(key, (0, line))
            notable[key] = (count + 1, example)
    return notable, fatal, unframed

