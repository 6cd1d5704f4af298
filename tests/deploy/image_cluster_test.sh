#!/bin/bash
# The container image as a cluster, configured the way the Helm chart
# configures its pods: the ConfigMap's ringmq.yaml rendered by `helm template`
# mounted at /etc/ringmq/config, the node id from the host name (the pod
# name), cluster.advertise and the admin token from the environment, the peers
# found through the headless Service's DNS name (cluster.dns), a read-only root
# file system with every capability dropped. Host networking puts the three
# containers on 127.77.0.1-3, so the binds are the one thing overridden.
#
# A message published on the first node reaches a subscriber on the third;
# `ringmq ctl pre-stop` (the chart's preStop hook) lets each node stop, and
# each container exits 0 on SIGTERM within the grace period.
#
# Usage: image_cluster_test.sh IMAGE HELM CHART_DIR [BUILD_LOG]
# Exit 77 (skipped, with the reason) when podman does not work here or the
# image was not built; 1 when its build failed (BUILD_LOG says why).
set -u

image="$1" helm="$2" chart="$3" build_log="${4:-}"
grace=30
token=image-test-token
headless=mq-ringmq-headless.iot.svc.cluster.local

if ! command -v podman >/dev/null || ! podman info >/dev/null 2>&1; then
  echo "skipped: podman does not work here (podman info fails)"
  exit 77
fi
if [ -n "$build_log" ] && [ -f "$build_log.skipped" ]; then
  echo "skipped: podman cannot run the base image here; the end of $build_log:"
  tail -5 "$build_log.skipped"
  exit 77
fi
if [ -n "$build_log" ] && [ -f "$build_log.failed" ]; then
  echo "FAIL: building $image failed; the end of $build_log:"
  tail -30 "$build_log"
  exit 1
fi
if ! podman image exists "$image"; then
  echo "skipped: no image $image (./dev test builds it where podman works; ./dev image builds the release one)"
  exit 77
fi

work=$(mktemp -d)
names=()
cleanup() {
  for n in "${names[@]}"; do podman rm -f "$n" >/dev/null 2>&1; done
  rm -rf "$work"
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

# The chart's configuration, as its ConfigMap holds it.
"$helm" template mq "$chart" --namespace iot --set replicaCount=3 \
  --show-only templates/configmap.yaml >"$work/configmap.yaml" || fail "helm template"
sed -n '/^  ringmq.yaml: |$/,$p' "$work/configmap.yaml" | tail -n +2 | sed 's/^    //' >"$work/ringmq.yaml"
grep -q "dns: $headless:7946" "$work/ringmq.yaml" || fail "the chart's config has no cluster.dns $headless:7946"

suffix=$$
for i in 0 1 2; do
  ip="127.77.0.$((i + 1))"
  name="mq-ringmq-$i-$suffix"
  names+=("$name")
  mkdir -p "$work/data-$i"
  chmod 0777 "$work/data-$i"
  # The headless Service's name answers with a pod's address (one reachable
  # peer is enough to learn every member).
  podman run -d --name "$name" --hostname "mq-ringmq-$i" --network host \
    --add-host "$headless:127.77.0.1" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -v "$work/ringmq.yaml:/etc/ringmq/config/ringmq.yaml:ro" \
    -v "$work/data-$i:/data" \
    -e RINGMQ_CLUSTER__ADVERTISE="$ip:7946" \
    -e RINGMQ_HTTP__ADMIN_TOKEN="$token" \
    -e RINGMQ_LISTENERS__0__BIND="$ip:1883" \
    -e RINGMQ_HTTP__BIND="$ip:8080" \
    -e RINGMQ_CLUSTER__BIND="$ip:7946" \
    "$image" -c /etc/ringmq/config/ringmq.yaml >/dev/null || fail "podman run $name"
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
members=$(curl -s -m 2 http://127.77.0.1:8080/api/v1/cluster | grep -o '"id":"mq-ringmq-[0-9]"' | sort -u | wc -l)
[ "$members" = 3 ] || fail "node 1 sees $members members (named by their host names), not 3"

out="$work/received"
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

for i in 0 1 2; do
  n="${names[$i]}"
  said=$(podman exec "$n" ringmq ctl --url "http://127.77.0.$((i + 1)):8080" pre-stop --timeout 20) ||
    fail "the preStop hook of $n failed: $said"
  podman stop -t "$grace" "$n" >/dev/null || fail "podman stop $n"
  code=$(podman inspect "$n" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || fail "$n exited $code after SIGTERM"
done
echo "ok: three containers configured as the chart's pods clustered, a message crossed them, each stopped with exit code 0"
