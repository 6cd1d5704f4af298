"""The cluster the gRPC fuzzer runs: three ringmq nodes on loopback addresses of their
own, and which of them the fake peer speaks to and as."""

import json
import os
import time
import urllib.error
import urllib.request

from broker_process import Broker, describe_status

CLUSTER_NAME = "grpc-fuzz"
FAKE = "n3"          # the member the fake peer speaks as
TARGET = "n1"        # the node it speaks to
START_TIMEOUT_S = 60.0
NODE_SETTINGS = [
    f"cluster.name={CLUSTER_NAME}", "cluster.heartbeat_interval_ms=100",
    "cluster.suspect_timeout_ms=1000", "cluster.dead_timeout_ms=3000",
    "cluster.digest_interval_ms=1000", "cluster.dns_interval_ms=500", "mqtt.sys_interval_s=0",
    "node.workers=2",
]


def loopback_prefix():
    """127.A.B. from this process's id, as tests/support/cluster_support.cpp picks its own."""
    pid = os.getpid()
    return f"127.{1 + (pid // 250) % 250}.{pid % 250}."


class Node(Broker):
    """One cluster node: MQTT, WebSocket, HTTP and the peer server on its own loopback address."""

    def __init__(self, binary, workdir, node_id, ip):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(binary, workdir, [f"cluster.bind={ip}:0"] + NODE_SETTINGS, node_id=node_id,
                         host=ip, http=True)
        self.ip = ip

    @property
    def mqtt_port(self):
        return self.ports["tcp"]

    @property
    def peer_address(self):
        return f"{self.ip}:{self.ports['cluster']}"

    def http_get(self, path, timeout=1.0):
        """(status, body) of a GET, or (None, reason) when nothing answered in time."""
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{self.ports['http']}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (OSError, ValueError) as e:
            return None, str(e)

    def cluster_view(self):
        status, body = self.http_get("/api/v1/cluster", timeout=2.0)
        return json.loads(body) if status == 200 else None


class Cluster:
    def __init__(self, binary, root):
        prefix = loopback_prefix()
        self.nodes = {}
        for i in (1, 2, 3):
            node_id = f"n{i}"
            self.nodes[node_id] = Node(binary, os.path.join(root, node_id), node_id, prefix + str(i))

    def __getitem__(self, node_id):
        return self.nodes[node_id]

    def start(self):
        """n1, then n2 and n3 with n1 as their seed; the view of n1 once all agree and are ready."""
        first = self.nodes["n1"]
        first.start()
        for node_id in ("n2", "n3"):
            node = self.nodes[node_id]
            node.settings.append(f"cluster.seeds=[{first.peer_address}]")
            node.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            views = [n.cluster_view() for n in self.nodes.values()]
            if all(v and v["ready"] and len(v["members"]) == 3 and v["epoch"] == views[0]["epoch"]
                   for v in views):
                return views[0]
            for n in self.nodes.values():
                if not n.alive():
                    raise RuntimeError(f"{n.node_id} exited at start ({describe_status(n.proc.returncode)}):\n"
                                       + n.log_tail())
            time.sleep(0.05)
        raise RuntimeError("the cluster did not converge in time:\n" +
                           "\n".join(f"--- {n.node_id}\n{n.log_tail(15)}" for n in self.nodes.values()))

    def started(self):
        """The nodes whose process was started (all of them, unless the start failed)."""
        return [n for n in self.nodes.values() if n.proc is not None]

    def dead(self):
        return [n for n in self.started() if not n.alive()]

    def stop(self):
        """SIGTERM to every started node; their exit statuses by id."""
        return {n.node_id: n.stop() for n in self.started()}

