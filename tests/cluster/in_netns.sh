#!/usr/bin/env bash
# Runs a test program inside a network namespace of its own, with a
# resolv.conf that points at 127.0.0.53 in that namespace (where the test
# starts its own DNS server). Nothing it does reaches the host's network.
# Exits 77 (ctest: skipped) when namespaces cannot be made here.
set -u
ns="ringmq-test-$$"
if ! ip netns add "$ns" 2>/dev/null; then
  echo "cannot create a network namespace (needs root and iproute2): skipped" >&2
  exit 77
fi
cleanup() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "/etc/netns/$ns"
}
trap cleanup EXIT
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.53" > "/etc/netns/$ns/resolv.conf"
ip -n "$ns" link set lo up
ip netns exec "$ns" "$@"
