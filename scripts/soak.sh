#!/usr/bin/env bash
# Soak run (not part of the test suite): 10^6 items through a Queue and 10^6 tasks through a
# Pool, checking that nothing is lost or duplicated and that the ranks' memory stays flat.
#
#   scripts/soak.sh                 # Release build in build-release/, then both runs
#   MPX_SOAK_ITEMS=2000000 scripts/soak.sh
#
# Memory: the resident set of the ranks that keep no record of the items (the queue's host and
# producers; the pool's workers) is sampled every 0.2 s; the run passes when their total at the
# end (90% of the run) is at most 10% (and 16 MiB) above the total once the run has warmed up
# (after a third of its samples). The consumer and the pool's driver are left out: the apps keep every item or
# partial value they receive, on purpose, to check exactly-once delivery. Prints one verdict
# line per run and exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MPX_BUILD_DIR:-$root/build-release}"
items="${MPX_SOAK_ITEMS:-1000000}"
cores="$(nproc 2>/dev/null || echo 2)"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target producer_consumer pi >/dev/null

mpiexec_args=(--oversubscribe --mca pml ob1)
if [ "$(id -u)" -eq 0 ]; then
  echo "note: running as root, so mpiexec gets --allow-run-as-root"
  mpiexec_args+=(--allow-run-as-root)
fi

# rss_of_ranks PID RANKS...: total resident KiB of the job's processes whose
# OMPI_COMM_WORLD_RANK is one of RANKS.
rss_of_ranks() {
  local job="$1"; shift
  local total=0 pid rank
  for pid in $(pgrep -P "$job" 2>/dev/null); do
    rank=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
    [ -n "$rank" ] || continue
    for r in "$@"; do
      if [ "$r" = "$rank" ]; then
        total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
      fi
    done
  done
  echo "$total"
}

failures=0
# soak NAME CHECK_REGEX "RANKS" COMMAND...: runs the job, samples the memory of RANKS,
# checks output and memory.
soak() {
  local name="$1" check="$2" ranks="$3"; shift 3
  local out; out="$(mktemp)"
  local t0; t0=$(date +%s.%N)
  mpiexec "${mpiexec_args[@]}" "$@" >"$out" 2>&1 &
  local job=$! samples=()
  while kill -0 "$job" 2>/dev/null; do
    local s; s=$(rss_of_ranks "$job" $ranks); [ "$s" -gt 0 ] && samples+=("$s")
    sleep 0.2
  done
  local rc=0; wait "$job" || rc=$?
  local t1; t1=$(date +%s.%N)
  local n=${#samples[@]} warm=0 last=0 verdict="PASS"
  # "end": the sample at 90% of the run, before the apps gather their records on rank 0 for the
  # final exactly-once check (that gather is the app's, not the library's).
  if [ "$n" -ge 3 ]; then warm=${samples[$((n / 3))]}; last=${samples[$((n * 9 / 10))]}; fi
  if [ "$rc" -ne 0 ] || ! grep -Eq "$check" "$out"; then verdict="FAIL (exit $rc or output check)"; fi
  if [ "$n" -ge 3 ] && [ "$last" -gt $((warm + warm / 10)) ] && [ "$last" -gt $((warm + 16384)) ]; then
    verdict="FAIL (memory grew from $warm KiB to $last KiB)"
  fi
  [ "$verdict" = PASS ] || failures=$((failures + 1))
  printf '%s: %s in %.1f s; memory of ranks %s: %s KiB after warm-up, %s KiB at the end (%d samples)\n' \
    "$name" "$verdict" "$(echo "$t1 - $t0" | bc)" "$ranks" "$warm" "$last" "$n"
  [ "$verdict" = PASS ] || tail -c 2000 "$out"
  rm -f "$out"
}

per_producer=$((items / 2))
soak "queue: 2 producers x $per_producer items, 1 consumer, maxsize 1000" \
  "\"total_consumed\": $items, \"lost\": 0, \"duplicated\": 0, \"reordered\": 0" "0 1 2" \
  -n 4 "$build/bin/producer_consumer" --producers 2 --consumers 1 --items "$per_producer" \
  --maxsize 1000 --delay-ms 0 --json
soak "pool: pi with $items tasks on $((cores)) workers" \
  "error: (0|[0-9.]+e-(1[3-9]|[2-9][0-9])) " "$(seq -s ' ' 1 "$cores")" \
  -n $((cores + 1)) "$build/bin/pi" --mode pool --steps $((items * 1000)) --tasks "$items"
exit "$failures"
