"""The peer protocol's messages for the gRPC fuzzer: Python modules of
proto/ringmq/cluster/v1/cluster.proto and proto/ringmq/replication/v1/session.proto,
generated with protoc into a temporary directory when this module is first imported
(nothing generated is kept), and the names of the calls.

Debian's protoc (protobuf-compiler) writes them: the protoc inside Debian's
python3-grpc-tools (1.14) predates proto3 `optional`, which cluster.proto uses. No
service stubs are needed: the calls go through gRPC's generic multi-callables with raw
bytes, so that malformed messages reach the node as they are."""

import atexit
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

PROTO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "proto")
SERVICE = "/ringmq.cluster.v1.Peer/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def quiet_protobuf():
    """The C++ protobuf under Python logs every string with invalid UTF-8 it refuses to stderr,
    and the guard parses thousands of them: its log handler is set to none. Where that cannot be
    done, the pure-Python implementation (slower, and quiet) is used instead."""
    try:
        lib = ctypes.CDLL("libprotobuf.so.32")
        set_handler = getattr(lib, "_ZN6google8protobuf13SetLogHandlerEPFvNS0_8LogLevelEPKciRKNSt7__cxx11"
                                   "12basic_stringIcSt11char_traitsIcESaIcEEEE")
        set_handler.restype, set_handler.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        set_handler(None)
    except (OSError, AttributeError):
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"


def generate(out_dir):
    """(cluster_pb2, session_pb2), generated into out_dir."""
    quiet_protobuf()
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    result = subprocess.run([protoc, f"-I{PROTO_DIR}", f"--python_out={out_dir}",
                             "ringmq/cluster/v1/cluster.proto", "ringmq/replication/v1/session.proto"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"protoc failed: {result.stderr.strip()}")
    sys.path.insert(0, out_dir)
    from ringmq.cluster.v1 import cluster_pb2
    from ringmq.replication.v1 import session_pb2
    return cluster_pb2, session_pb2


_generated = tempfile.mkdtemp(prefix="ringmq-grpc-fuzz-proto-")
atexit.register(shutil.rmtree, _generated, True)
pb, rp = generate(_generated)  # ringmq.cluster.v1, ringmq.replication.v1


def member_number(node_id, incarnation):
    """cluster/replication: member_number() (fnv1a64, then SplitMix64's finalizer)."""
    mask = (1 << 64) - 1

    def mix64(x):
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    h = 0xCBF29CE484222325
    for c in node_id.encode():
        h = ((h ^ c) * 0x100000001B3) & mask
    n = mix64(h ^ mix64(incarnation))
    return n or 1

