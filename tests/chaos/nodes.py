"""The chaos harness's cluster: real ringmq processes inside the network
namespace the harness runs in, each on 127.0.0.(10+i) with fixed ports, its own
user (so nft can cut its packets by owner), its own small tmpfs as data
directory (so its disk can be filled) and the power-loss disk preloaded (so
unsynced writes can be dropped after a crash; see power_loss_disk.c)."""

import os
import signal
import subprocess
import time
import urllib.request

MQTT_PORT, HTTP_PORT, CLUSTER_PORT = 1883, 8080, 7070
ADMIN_TOKEN = "chaos-token"
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def run(command, check=True):
    result = subprocess.run(command, shell=True, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{command}: {result.stderr.strip()}")
    return result


class Node:
    def __init__(self, index, root, binary, shim, disk_lies, clock):
        self.index = index
        self.id = f"n{index}"
        self.ip = f"127.0.0.{10 + index}"
        self.uid = 41000 + index
        self.binary, self.shim, self.disk_lies, self.clock = binary, shim, disk_lies, clock
        self.data_dir = os.path.join(root, self.id)
        self.journal = os.path.join(root, f"{self.id}.synced")
        self.clock_file = os.path.join(root, f"{self.id}.clock")
        self.log_path = os.path.join(root, f"{self.id}.log")
        self.process = None
        self.paused = False
        os.makedirs(self.data_dir, exist_ok=True)
        # A small disk of its own: "full disk" fills this one only.
        run(f"mount -t tmpfs -o size=2g,mode=0755 chaos-{self.id} {self.data_dir}")
        os.chown(self.data_dir, self.uid, self.uid)
        open(self.journal, "a").close()
        os.chown(self.journal, self.uid, self.uid)
        self.set_clock(0)

    @property
    def mqtt(self):
        return (self.ip, MQTT_PORT)

    def cluster_address(self):
        return f"{self.ip}:{CLUSTER_PORT}"

    def set_clock(self, offset_s):
        """Moves this node's wall clock (libfaketime re-reads the file every second)."""
        with open(self.clock_file, "w") as f:
            f.write(f"{offset_s:+d}s\n")

    def start(self, seeds):
        sets = [
            f"node.id={self.id}", f"node.data_dir={self.data_dir}",
            f"listeners[0].bind={self.ip}:{MQTT_PORT}", f"http.bind={self.ip}:{HTTP_PORT}",
            f"cluster.bind={self.ip}:{CLUSTER_PORT}",
            "cluster.heartbeat_interval_ms=100", "cluster.suspect_timeout_ms=600",
            "cluster.dead_timeout_ms=1500", "cluster.digest_interval_ms=1000",
            "mqtt.sys_interval_s=0", f"http.admin_token={ADMIN_TOKEN}",
            "storage.durability=sync",
            f"log.level={os.environ.get('CHAOS_NODE_LOG_LEVEL', 'info')}",
            # The run tests failures, not limits: no offline queue fills up in it.
            "mqtt.max_queued_messages=100000",
        ]
        if seeds:
            sets.append("cluster.seeds=[" + ",".join(seeds) + "]")
        env = dict(os.environ)
        preload = [self.shim]
        if self.clock:
            # Only the wall clock moves (the HLC reads it); steady clocks never jump.
            preload.append(FAKETIME)
            env.update(FAKETIME_TIMESTAMP_FILE=self.clock_file, FAKETIME_CACHE_DURATION="1",
                       DONT_FAKE_MONOTONIC="1", FAKETIME_DISABLE_SHM="1")
        # Preloaded into the node only (by env after setpriv), not into setpriv.
        argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "env", "LD_PRELOAD=" + " ".join(preload), self.binary]
        for s in sets:
            argv += ["--set", s]
        env["CHAOS_DISK_JOURNAL"] = self.journal
        # A sanitizer build would refuse a library preloaded ahead of its runtime.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
        if self.disk_lies:
            env["CHAOS_DISK_LIES"] = "1"
        log = open(self.log_path, "ab")
        log.write(f"==== start {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        log.close()
        self.paused = False

    def running(self):
        return self.process is not None and self.process.poll() is None

    def exited_by_itself(self):
        return self.process is not None and self.process.poll() is not None

    def kill(self):
        if self.running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.paused = False

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.running():
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout=30):
        """SIGTERM and the exit code (None when it had to be killed)."""
        if not self.running():
            return self.process.returncode if self.process else 0
        self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{HTTP_PORT}/readyz", timeout=0.5) as r:
                return r.status == 200
        except OSError:
            return False

    def lose_unsynced_writes(self):
        """After a kill: each write-ahead log keeps only what an fsync covered."""
        synced = {}
        if os.path.exists(self.journal):
            with open(self.journal) as f:
                for line in f:
                    size, _, path = line.rstrip("\n").partition(" ")
                    if size.isdigit():
                        synced[path] = max(synced.get(path, 0), int(size))
        dropped = 0
        for name in os.listdir(self.data_dir):
            path = os.path.join(self.data_dir, name)
            if not name.endswith(".log") or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            keep = min(synced.get(path, 0), size)
            if keep < size:
                os.truncate(path, keep)
                dropped += size - keep
        return dropped

    def unmount(self):
        run(f"umount -l {self.data_dir}", check=False)


class Cluster:
    def __init__(self, size, root, binary, shim, disk_lies=False, clock=True):
        self.nodes = [Node(i, root, binary, shim, disk_lies, clock) for i in range(1, size + 1)]
        self.cut_rules = False

    def seeds_for(self, node):
        return [n.cluster_address() for n in self.nodes if n is not node]

    def start(self, timeout=60):
        first, rest = self.nodes[0], self.nodes[1:]
        first.start([])
        self.wait_ready([first], timeout)
        for n in rest:
            n.start([first.cluster_address()])
        self.wait_ready(self.nodes, timeout)

    def restart(self, node):
        node.start(self.seeds_for(node))

    def wait_ready(self, nodes=None, timeout=60):
        nodes = self.nodes if nodes is None else nodes
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in nodes:
                if n.exited_by_itself():
                    raise RuntimeError(f"{n.id} exited with {n.process.returncode}; see {n.log_path}")
            if all(n.ready() for n in nodes):
                return True
            time.sleep(0.1)
        return False

    # Partitions: packets a node's processes send to another node are dropped
    # by owner and destination (every outbound connection leaves from the same
    # loopback source, so only the owner tells nodes apart).
    def cut(self, pairs):
        """Drops what a sends to b for each (a, b) in pairs (one direction)."""
        if not self.cut_rules:
            run("nft add table inet chaos_cut")
            run("nft add chain inet chaos_cut out '{ type filter hook output priority 0; policy accept; }'")
            self.cut_rules = True
        for a, b in pairs:
            run(f"nft add rule inet chaos_cut out meta skuid {a.uid} ip daddr {b.ip} drop")

    def heal(self):
        if self.cut_rules:
            run("nft delete table inet chaos_cut", check=False)
            self.cut_rules = False

    def isolate(self, side):
        """A symmetric partition between `side` and every other node."""
        other = [n for n in self.nodes if n not in side]
        self.cut([(a, b) for a in side for b in other] + [(b, a) for a in side for b in other])
