#!/bin/bash
# The container image as a cluster: three containers of localhost/ringmq:latest
# (./dev image) with host networking on 127.77.0.1-3, configured the way a
# Kubernetes pod is -- the config file mounted at /etc/ringmq/ringmq.yaml,
# node id, bind and advertise addresses from RINGMQ_* variables, and the
# first pod's DNS-style name as the seed. A message published on the first
# node reaches a subscriber on the third; each container stops on SIGTERM
# with exit code 0 well within a 30 s grace period.
#
# Exit 77 (skipped, with the reason) when podman or the image is missing.
set -u

image=localhost/ringmq:latest
config="$1"  # the config file to mount (deploy/ringmq.yaml)
grace=30

if ! command -v podman >/dev/null || ! podman info >/dev/null 2>&1; then
  echo "skipped: podman does not work here"
  exit 77
fi
if ! podman image exists "$image"; then
  echo "skipped: no image $image (./dev image builds it)"
  exit 77
fi

names=()
cleanup() {
  for n in "${names[@]}"; do podman rm -f "$n" >/dev/null 2>&1; done
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for n in "${names[@]}"; do
    echo "--- $n"
    podman logs "$n" 2>&1 | tail -20
  done
  exit 1
}

suffix=$$
for i in 0 1 2; do
  ip="127.77.0.$((i + 1))"
  name="ringmq-$i-$suffix"
  names+=("$name")
  podman run -d --name "$name" --network host \
    --add-host "ringmq-0.ringmq-headless:127.77.0.1" \
    -v "$config:/etc/ringmq/ringmq.yaml:ro" \
    -e RINGMQ_NODE__ID="ringmq-$i" \
    -e RINGMQ_LISTENERS__0__BIND="$ip:1883" \
    -e RINGMQ_HTTP__BIND="$ip:8080" \
    -e RINGMQ_CLUSTER__BIND="$ip:7946" \
    -e RINGMQ_CLUSTER__ADVERTISE="$ip:7946" \
    -e RINGMQ_CLUSTER__SEEDS="ringmq-0.ringmq-headless:7946" \
    "$image" -c /etc/ringmq/ringmq.yaml >/dev/null || fail "podman run $name"
done

# Ready means clustered too: every peer's routes synced.
for i in 1 2 3; do
  ready=""
  for _ in $(seq 1 150); do
    if curl -sf -m 1 "http://127.77.0.$i:8080/readyz" >/dev/null; then
      ready=1
      break
    fi
    sleep 0.2
  done
  [ -n "$ready" ] || fail "node 127.77.0.$i not ready in 30 s"
done
members=$(curl -s -m 2 http://127.77.0.1:8080/api/v1/cluster | grep -o '"id":"ringmq-[0-9]"' | sort -u | wc -l)
[ "$members" = 3 ] || fail "node 1 sees $members members, not 3"

out=$(mktemp)
timeout 20 mosquitto_sub -h 127.77.0.3 -p 1883 -t image/test -q 1 -C 1 -i image-sub >"$out" &
sub=$!
# The subscription reaches node 1 (SUBACK waits for the peers): publish until it lands.
for _ in $(seq 1 50); do
  mosquitto_pub -h 127.77.0.1 -p 1883 -t image/test -q 1 -m "across the containers"
  if ! kill -0 "$sub" 2>/dev/null; then break; fi
  sleep 0.2
done
wait "$sub"
grep -q "across the containers" "$out" || fail "the subscriber on node 3 got nothing"
rm -f "$out"

for n in "${names[@]}"; do
  podman stop -t "$grace" "$n" >/dev/null || fail "podman stop $n"
  code=$(podman inspect "$n" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || fail "$n exited $code after SIGTERM"
done
echo "ok: three containers clustered, a message crossed them, each stopped with exit code 0"
