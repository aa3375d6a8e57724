# Sourced by `bench/guard redis` (see bench/guard for what it measures):
# the guard with the local store against the guard with a shared store
# in Redis, on the hello app, then bench/fleetops against the same Redis.
# Uses run, start_corral, median, ratio, pct, verdict and joined from
# bench/guard.

APPDIR=examples/hello
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
	sleep 0.1
done
STORE=redis://127.0.0.1:$REDIS_PORT/0

redis_cpu() { awk '{print $14 + $15}' "/proc/$REDIS_PID/stat"; } # clock ticks
redis_scripts() {
	redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
		awk -F'[=,]' '/^cmdstat_evalsha:/ {print $2; found=1} END {if (!found) print 0}'
}

LOCAL=() REDIS=() LLIM=() RLIM=() R_REDIS=() R_RLIM=() SCRIPTS=() CPU=()
for r in $(seq "$REPEAT"); do
	CONF=$WORK/corral.toml
	run local "$r" 0
	LOCAL+=("$RPS")
	LOCAL_CMD=$CMD
	run redis "$r" 0 --guard-store "$STORE"
	REDIS+=("$RPS")
	REDIS_CMD=${CMD//$STORE/redis://127.0.0.1:PORT/0}
	CONF=$WORK/corral-limits.toml
	run local-limits "$r" 0
	LLIM+=("$RPS")
	LLIM_CMD=$CMD
	s0=$(redis_scripts) c0=$(redis_cpu) t0=$(date +%s.%N)
	run redis-limits "$r" 0 --guard-store "$STORE"
	s1=$(redis_scripts) c1=$(redis_cpu) t1=$(date +%s.%N)
	RLIM+=("$RPS")
	RLIM_CMD=${CMD//$STORE/redis://127.0.0.1:PORT/0}
	SCRIPTS+=("$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / (t1 - t0) }')")
	CPU+=("$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.1f%%", (b - a) / (t1 - t0) }')")
	R_REDIS+=("$(ratio "${REDIS[-1]}" "${LOCAL[-1]}")")
	R_RLIM+=("$(ratio "${RLIM[-1]}" "${LLIM[-1]}")")
done
log "fleetops: the store driven as 4 instances would"
FLEETOPS=$("$WORK/fleetops" -url "$STORE" -instances 4 -batch 16 -clients 100000 -d "${DURATION}s")
FLEETOPS1=$("$WORK/fleetops" -url "$STORE" -instances 4 -batch 1 -clients 100000 -d "${DURATION}s")
kill "$REDIS_PID" 2>/dev/null || true
wait "$REDIS_PID" 2>/dev/null || true
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
RR=$(median "${R_REDIS[@]}") RRL=$(median "${R_RLIM[@]}")

out=$RESULTS/guard-redis.md
{
	echo "# Guard benchmark: the fleet's shared store (Redis) against the local store"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -sr), $("$PY" --version 2>&1), $(redis-server --version | cut -d' ' -f1-3)."
	echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s (after ${WARMUP}s of warm-up) on GET / of examples/hello, 2 workers,"
	echo "guard on with 10,000 bans in force; $REPEAT repetitions, rows interleaved (each repetition runs every row once)."
	echo "Requests/s: median [every run]. Each target is judged on the median of the per-repetition ratios."
	echo "Load average at the end: $LOAD."
	echo
	echo "| row | requests/s | ratio (median of per-repetition ratios) | target |"
	echo "|---|---|---|---|"
	echo "| local store (SQLite) | $(median "${LOCAL[@]}") [$(joined "${LOCAL[@]}")] | | |"
	echo "| shared store (Redis) | $(median "${REDIS[@]}") [$(joined "${REDIS[@]}")] | $(pct "$RR") of local [$(joined "${R_REDIS[@]}")] | >= 95%: $(verdict "$RR" 95) |"
	echo "| local store, rate limits that never refuse | $(median "${LLIM[@]}") [$(joined "${LLIM[@]}")] | | |"
	echo "| shared store, the same rate limits (every request reported) | $(median "${RLIM[@]}") [$(joined "${RLIM[@]}")] | $(pct "$RRL") of local [$(joined "${R_RLIM[@]}")] | >= 95%: $(verdict "$RRL" 95) |"
	echo
	echo "During the last row's runs Redis ran [$(joined "${SCRIPTS[@]}")] scripts/s at [$(joined "${CPU[@]}")] of a core"
	echo "(over each run's start, warm-up and measurement): one client, so the guard folds its requests into"
	echo "one report per limit per batch."
	echo
	echo "What one Redis serves (bench/fleetops: 4 simulated instances reporting rate-limited requests of"
	echo "100,000 distinct clients, 5% jail events, as fast as Redis answers, on the same 2 CPUs):"
	echo
	echo "- batches of 16: $FLEETOPS"
	echo "- batches of 1: $FLEETOPS1"
	echo
	echo "Command: \`bench/guard redis\` (BENCH_DURATION=$DURATION BENCH_WARMUP=$WARMUP BENCH_CONNECTIONS=$CONNECTIONS BENCH_REPEAT=$REPEAT). Servers:"
	echo
	echo "- local: \`$LOCAL_CMD\`"
	echo "- shared: \`$REDIS_CMD\`"
	echo "- local, limits: \`$LLIM_CMD\`"
	echo "- shared, limits: \`$RLIM_CMD\`"
	echo
	echo "corral.toml is \`[guard] allow = []\`; corral-limits.toml adds \`rate\`, \`burst\`, \`global_rate\` and"
	echo "\`global_burst\` of 1,000,000. STATE holds a copy of a ban store with 10,000 bans in force; the"
	echo "shared-store instances push them to Redis when they connect."
} >"$out"
cat "$out"
