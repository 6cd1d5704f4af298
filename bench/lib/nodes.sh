# Starting and stopping local ringmq clusters for the benchmark scripts
# (sourced by bench/cluster and bench/replication). Node i listens on
# $NODE_NET.i: MQTT 1883, HTTP 8080, gRPC 7946; its data and log go to
# $work/data/n$i and $work/n$i.log. The caller sets `bin` and `work`.
#
#   NODE_NET=127.0.91 NODE_PIN=1 start_nodes COUNT [ringmq --set arguments...]
#   stop_nodes
#
# NODE_PIN, when set, pins every node to that list of cores (taskset -c).

NODE_NET=${NODE_NET:-127.0.91}
node_pids=()

wait_log() {  # FILE TEXT: the node logged TEXT (at most 20 s)
  for _ in $(seq 1 400); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "not in $1: $2" >&2
  tail -5 "$1" >&2
  return 1
}

node_addr() { echo "$NODE_NET.$1"; }

# "127.0.91.1:1883,127.0.91.2:1883,..." for ringmq-bench --hosts
node_hosts() {
  local i out=""
  for ((i = 1; i <= $1; i++)); do out+="${out:+,}$(node_addr "$i"):1883"; done
  echo "$out"
}

start_nodes() {
  local count="$1" i
  shift
  node_pids=()
  rm -rf "$work/data"
  for ((i = 1; i <= count; i++)); do
    local cluster=()
    if ((count > 1)); then
      cluster=(--set "cluster.bind=$(node_addr "$i"):7946")
      ((i > 1)) && cluster+=(--set "cluster.seeds=[$(node_addr 1):7946]")
    fi
    local pin=()
    [ -n "${NODE_PIN:-}" ] && pin=(taskset -c "$NODE_PIN")
    "${pin[@]}" "$bin/ringmq" --set "node.id=n$i" --set "node.data_dir=$work/data/n$i" \
      --set "listeners[0].bind=$(node_addr "$i"):1883" --set "http.bind=$(node_addr "$i"):8080" \
      "${cluster[@]}" --set log.level=info --set mqtt.sys_interval_s=0 "$@" \
      2>"$work/n$i.log" &
    node_pids+=($!)
    wait_log "$work/n$i.log" "ringmq started" || return 1
  done
  for ((i = 1; i <= count; i++)); do
    ((count > 1)) && { wait_log "$work/n$i.log" "member set changed: epoch=$count" || true; }
    local ready=0
    for _ in $(seq 1 400); do
      curl -sf "http://$(node_addr "$i"):8080/readyz" >/dev/null 2>&1 && { ready=1; break; }
      sleep 0.05
    done
    ((ready)) || { echo "node $i not ready" >&2; tail -5 "$work/n$i.log" >&2; return 1; }
  done
}

stop_nodes() {
  ((${#node_pids[@]})) || return 0
  kill "${node_pids[@]}" 2>/dev/null || true
  wait "${node_pids[@]}" 2>/dev/null || true
  node_pids=()
}

# CPU seconds (user + system) used so far by the given processes together.
cpu_seconds() {
  local tck total=0 pid
  tck=$(getconf CLK_TCK)
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields 14 and 15 after the command name, which may contain spaces.
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  awk -v t="$total" -v k="$tck" 'BEGIN { printf "%.3f", t / k }'
}

# A metric from a node's /metrics, summed over the series whose labels
# contain LABELS (all of them without it): metric NODE NAME [LABELS]
metric() {
  curl -sf "http://$(node_addr "$1"):8080/metrics" |
    awk -v name="$2" -v labels="${3:-}" '
      ($1 == name || index($1, name "{") == 1) && index($1, labels) > 0 { sum += $2 }
      END { printf "%.0f", sum }'
}
