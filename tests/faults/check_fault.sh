#!/bin/sh
# check_fault.sh: runs an MPI job that fails on purpose and checks that the whole job ends,
# fast, with a non-zero exit and a message that names what failed.
#
#   check_fault.sh --within 3 --expect 'rank 2 .*signal 9' [--expect RE]... \
#                  [--cluster [--cut-link HOST_INDEX]] [--env VAR=VALUE]... \
#                  -- MPIEXEC_ARGS... PROGRAM ARGS...
#
# The clock starts when the job prints "FAULT NOW" (the program says so right before its
# fault) or, with --cut-link, when this script cuts host HOST_INDEX off the network after the
# job printed "exchanging". The job must end within --within seconds of that; its exit code
# must be non-zero (and not 110, mpiexec's own --timeout); every --expect regex (grep -E) must
# match its combined output. --cluster runs the job on 3 namespace hosts (scripts/cluster.sh);
# where namespaces are not allowed the test is skipped (exit 77).
set -u

here=$(cd "$(dirname "$0")" && pwd)
cluster_sh=$here/../../scripts/cluster.sh
within=3
cluster=0
cut_link=""
expects=""
nl='
'
envs=""
while [ $# -gt 0 ]; do
  case $1 in
    --within) within=$2; shift 2 ;;
    --expect) expects="$expects$2$nl"; shift 2 ;;
    --cluster) cluster=1; shift ;;
    --cut-link) cut_link=$2; shift 2 ;;
    --env) envs="$envs $2"; shift 2 ;;
    --) shift; break ;;
    *) echo "check_fault.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "check_fault.sh: no command" >&2; exit 2; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

out=$(mktemp "${TMPDIR:-/tmp}/mpx-fault.XXXXXX")
job=""
trap 'rm -f "$out" "$out.missing"' EXIT
trap '[ -n "$job" ] && kill -TERM $job 2>/dev/null; exit 143' TERM INT
name=mpxf$$

# The mpiexec flags that make failures end fast (the same the cluster script uses).
fast="--mca odls_base_sigkill_timeout 0"
if [ $cluster = 1 ]; then
  # shellcheck disable=SC2086
  env $envs sh "$cluster_sh" --name "$name" --hosts 3 run --map-by node --timeout 90 \
    -x GTEST_COLOR=no "$@" >"$out" 2>&1 &
else
  # shellcheck disable=SC2086
  env $envs "${MPIEXEC:-mpiexec}" --oversubscribe --mca pml ob1 $fast --timeout 90 "$@" >"$out" 2>&1 &
fi
job=$!
start=$(now)
fault_at=""
hung=0
marker="FAULT NOW"
[ -n "$cut_link" ] && marker="exchanging"
# Watch the output for the marker while the job runs.
while kill -0 $job 2>/dev/null; do
  if [ -z "$fault_at" ] && grep -q "$marker" "$out" 2>/dev/null; then
    if [ -n "$cut_link" ]; then
      sh "$cluster_sh" --name "$name" link "$name-h$cut_link" down
      echo "check_fault.sh: cut host $name-h$cut_link off the network"
    fi
    fault_at=$(now)
  fi
  # Watchdog: mpiexec itself can hang (seen in PMIx_server_finalize); end it well after the
  # bound so the test fails with a reason instead of a ctest timeout.
  t=$(now)
  limit=$(awk -v s="${fault_at:-$start}" -v w="$within" -v f="${fault_at:+1}" \
              'BEGIN { printf "%.2f", f ? s + w + 20 : s + 100 }')
  if awk -v t="$t" -v l="$limit" 'BEGIN { exit !(t > l) }'; then
    echo "check_fault.sh: the job is still running long after the fault; killing it" >>"$out"
    hung=1
    kill -TERM $job 2>/dev/null
    sleep 2
    kill -KILL $job 2>/dev/null
    break
  fi
  sleep 0.05
done
wait $job
rc=$?
end=$(now)
# The job may end between two looks (within 50 ms of the marker): time it from its end.
if [ -z "$fault_at" ] && grep -q "$marker" "$out" && [ -z "$cut_link" ]; then fault_at=$end; fi
cat "$out"
echo "----"
if [ $rc = 77 ] && grep -q "^SKIP:" "$out"; then
  echo "check_fault.sh: skipped: $(grep '^SKIP:' "$out")"
  exit 77
fi
problems=""
if [ -z "$fault_at" ]; then
  problems="${problems}the job never printed '$marker' (it failed before its fault?)$nl"
  fault_at=$start
fi
took=$(elapsed "$fault_at" "$end")
echo "check_fault.sh: exit code $rc, the job ended $took s after the fault (bound: $within s)"
[ $rc != 0 ] || problems="${problems}the job exited 0 after a fault$nl"
[ $rc != 110 ] || problems="${problems}the job hung until mpiexec's --timeout$nl"
[ $hung = 0 ] || problems="${problems}the job hung and was killed by this script$nl"
if awk -v t="$took" -v w="$within" 'BEGIN { exit !(t > w) }'; then
  problems="${problems}the job took $took s to end after the fault, more than $within s$nl"
fi
printf '%s' "$expects" | while IFS= read -r re; do
  [ -n "$re" ] || continue
  grep -Eq -- "$re" "$out" || echo "the output does not match: $re"
done >"$out.missing"
if [ -s "$out.missing" ]; then problems="$problems$(cat "$out.missing")$nl"; fi
rm -f "$out.missing"
if [ -n "$problems" ]; then
  printf 'check_fault.sh: FAILED:\n%s' "$problems"
  exit 1
fi
echo "check_fault.sh: passed"
