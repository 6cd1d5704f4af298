"""The chaos harness's faults. Each kind is applied to the cluster, held for a
while, then healed; which kind, which nodes and how long all come from one
seeded random generator, so a seed names a schedule (the broker's own timing
still varies from run to run).

  kill          SIGKILL one node, restart it after 0.2-3 s
  pause         SIGSTOP one node for 0.5-4 s (past the 1.5 s failure detector
                or not), then SIGCONT
  isolate       cut one node off from the others, both ways
  split         cut the cluster in two (2|1 on 3 nodes, 3|2 on 5)
  asymmetric    drop only what one node sends to the others
  flapping      isolate one node and heal it again 4-8 times, 0.2-0.8 s apart
  slow          delay every sendmsg of one node by 5-40 ms (strace syscall
                delay injection) for 2-5 s
  fsync-eio     every fsync/fdatasync of one node fails with EIO for 1-3 s
                (strace error injection)
  disk-full     fill one node's data disk for 1-4 s
  clock-jump    move one node's wall clock by -60..+120 s for 2-5 s
                (libfaketime; steady clocks do not move)
  power-loss    SIGKILL every node at once and drop what no fsync covered
                (power_loss_disk.c), then start them all again
"""

import os
import signal
import subprocess
import time

KINDS = ["kill", "pause", "isolate", "split", "asymmetric", "flapping", "slow", "fsync-eio",
         "disk-full", "clock-jump", "power-loss"]
# How often each kind is drawn, relative to the others. A power loss costs the
# most time (every node recovers), so it comes less often.
WEIGHTS = {"kill": 3, "pause": 3, "isolate": 2, "split": 2, "asymmetric": 2, "flapping": 1,
           "slow": 2, "fsync-eio": 2, "disk-full": 2, "clock-jump": 2, "power-loss": 1}


class Injector:
    def __init__(self, cluster, rng, log):
        self.cluster, self.rng, self.log = cluster, rng, log
        self.tracers = []

    def draw(self, kinds):
        weights = [WEIGHTS[k] for k in kinds]
        return self.rng.choices(kinds, weights)[0]

    def inject(self, kind):
        """Applies, holds and heals one fault; returns a line describing it."""
        nodes = self.cluster.nodes
        node = self.rng.choice(nodes)
        hold = None
        if kind == "kill":
            hold = self.rng.uniform(0.2, 3)
            node.kill()
            time.sleep(hold)
            self.cluster.restart(node)
        elif kind == "pause":
            hold = self.rng.uniform(0.5, 4)
            node.pause()
            time.sleep(hold)
            node.resume()
        elif kind in ("isolate", "split", "asymmetric"):
            hold = self.rng.uniform(1, 5)
            if kind == "asymmetric":
                self.cluster.cut([(node, b) for b in nodes if b is not node])
            elif kind == "split":
                side = self.rng.sample(nodes, len(nodes) // 2)
                node = side[0]
                self.cluster.isolate(side)
            else:
                self.cluster.isolate([node])
            time.sleep(hold)
            self.cluster.heal()
        elif kind == "flapping":
            flips = self.rng.randint(4, 8)
            for _ in range(flips):
                self.cluster.isolate([node])
                time.sleep(self.rng.uniform(0.2, 0.8))
                self.cluster.heal()
                time.sleep(self.rng.uniform(0.2, 0.8))
            hold = flips
        elif kind == "slow":
            hold = self.rng.uniform(2, 5)
            delay_us = self.rng.randint(5, 40) * 1000
            self.trace(node, ["-e", "trace=sendmsg", "-e", f"inject=sendmsg:delay_enter={delay_us}"], hold)
        elif kind == "fsync-eio":
            hold = self.rng.uniform(1, 3)
            self.trace(node, ["-e", "trace=fsync,fdatasync", "-e", "inject=fsync:error=EIO",
                              "-e", "inject=fdatasync:error=EIO"], hold)
        elif kind == "disk-full":
            hold = self.rng.uniform(1, 4)
            filler = os.path.join(node.data_dir, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "status=none"],
                           stderr=subprocess.DEVNULL)
            time.sleep(hold)
            os.unlink(filler)
        elif kind == "clock-jump":
            hold = self.rng.uniform(2, 5)
            offset = self.rng.choice([-1, 1]) * self.rng.randint(5, 120)
            offset = max(offset, -60)
            node.set_clock(offset)
            time.sleep(hold)
            node.set_clock(0)
            return f"{kind} {node.id} {offset:+d}s for {hold:.1f}s"
        elif kind == "power-loss":
            for n in nodes:
                n.kill()
            dropped = sum(n.lose_unsynced_writes() for n in nodes)
            for n in nodes:
                self.cluster.restart(n)
            return f"{kind} (all nodes, {dropped} unsynced bytes dropped)"
        else:
            raise ValueError(f"unknown fault kind {kind}")
        return f"{kind} {node.id} for {hold:.1f}s"

    def trace(self, node, args, hold):
        """strace attached to every thread of a node for `hold` seconds."""
        if not node.running():
            return
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-p", str(node.process.pid)] + args,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(hold)
        tracer.send_signal(signal.SIGINT)
        try:
            tracer.wait(10)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()

    def heal_all(self):
        """Everything back to normal: no cut, clocks right, every node running."""
        self.cluster.heal()
        for n in self.cluster.nodes:
            n.set_clock(0)
            if n.paused:
                n.resume()
            filler = os.path.join(n.data_dir, "filler")
            if os.path.exists(filler):
                os.unlink(filler)
            if not n.running():
                self.log(f"{n.id} had stopped (exit {n.process.returncode}); restarting it")
                self.cluster.restart(n)
