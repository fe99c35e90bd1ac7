#!/usr/bin/env bash
# mpx benchmarks: configure a Release build, build every benchmark, run each one with its
# rank count, and print their tables (ratio = mpx / baseline measured in the same run).
#
#   scripts/bench.sh                     # every benchmark, full length
#   scripts/bench.sh --quick             # short smoke run of every benchmark
#   scripts/bench.sh pipe launch         # only bench_pipe and bench_launch
#   scripts/bench.sh --json > out.jsonl  # one JSON document per benchmark on stdout
#
# Options starting with -- go to every benchmark: --quick, --json, --min-time S, --rounds N,
# --filter TEXT (see bench/README.md). Benchmarks report, they do not fail: the script exits
# non-zero only when a benchmark could not be built or crashed.
#
# Rank counts: a benchmark's source bench/bench_<name>.cpp says how many ranks it wants in a
# line "// mpx-bench: ranks=N" (0 = run it directly, without mpiexec); the table `ranks_of`
# below overrides it; otherwise 2.
#
# Environment knobs:
#   MPX_BENCH_BUILD_DIR  build directory (default: build-release)
#   MPX_JOBS             parallel build jobs (default: number of cores)
#   MPX_BENCH_TIMEOUT    seconds before mpiexec ends a stuck benchmark (default: 900)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MPX_BENCH_BUILD_DIR:-$root/build-release}"
cores="$(nproc 2>/dev/null || echo 2)"
jobs="${MPX_JOBS:-$cores}"
timeout="${MPX_BENCH_TIMEOUT:-900}"

# Rank counts that override the "// mpx-bench: ranks=N" line of a source (name -> ranks).
declare -A ranks_of=(
  # [bench_example]=4
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bench_args=()
only=()
for a in "$@"; do
  case "$a" in
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    --min-time|--rounds|--filter) bench_args+=("$a"); expect_value=1; continue ;;
    --*) bench_args+=("$a") ;;
    *)
      if [ "${expect_value:-0}" = 1 ]; then bench_args+=("$a"); expect_value=0; continue; fi
      only+=("bench_${a#bench_}") ;;
  esac
done

# ---- which benchmarks ----------------------------------------------------------------------
all=()
for src in "$root"/bench/bench_*.cpp; do
  [ -e "$src" ] || continue
  all+=("$(basename "$src" .cpp)")
done
if ((${#only[@]})); then
  for name in "${only[@]}"; do
    [ -e "$root/bench/$name.cpp" ] || { echo "no benchmark $name (bench/$name.cpp); have: ${all[*]}" >&2; exit 2; }
  done
  names=("${only[@]}")
else
  names=("${all[@]}")
fi

ranks_for() {
  local name="$1" line
  if [ -n "${ranks_of[$name]:-}" ]; then echo "${ranks_of[$name]}"; return; fi
  line="$(grep -m1 -oE 'mpx-bench: *ranks *= *[0-9]+' "$root/bench/$name.cpp" || true)"
  if [ -n "$line" ]; then echo "${line##*=}" | tr -d ' '; else echo 2; fi
}

# ---- build ---------------------------------------------------------------------------------
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DMPX_BUILD_BENCH=ON)
command -v ninja >/dev/null 2>&1 || cmake_args=(-DCMAKE_BUILD_TYPE=Release -DMPX_BUILD_BENCH=ON)
command -v ccache >/dev/null 2>&1 && cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ -f "$build/CMakeCache.txt" ]; then
  say "configuring $build (Release, existing)"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMPX_BUILD_BENCH=ON >/dev/null
else
  say "configuring $build (Release)"
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
fi
say "building ${names[*]} with $jobs jobs"
cmake --build "$build" -j "$jobs" --target "${names[@]}" >&2

# ---- run -----------------------------------------------------------------------------------
mpiexec_base=(mpiexec --timeout "$timeout")
if [ "$(id -u)" -eq 0 ]; then
  say "running as root: passing --allow-run-as-root to mpiexec"
  mpiexec_base+=(--allow-run-as-root)
fi

failed=()
for name in "${names[@]}"; do
  ranks="$(ranks_for "$name")"
  exe="$build/bin/$name"
  if [ "$ranks" = 0 ]; then
    cmd=("$exe" "${bench_args[@]}")
  else
    cmd=("${mpiexec_base[@]}" -n "$ranks")
    if [ "$ranks" -gt "$cores" ]; then cmd+=(--oversubscribe); fi
    cmd+=("$exe" "${bench_args[@]}")
  fi
  say "$name: ${cmd[*]}"
  if ! "${cmd[@]}"; then
    echo "$name FAILED (exit code $?)" >&2
    failed+=("$name")
  fi
done

if ((${#failed[@]})); then
  say "benchmarks that did not complete: ${failed[*]}"
  exit 1
fi
say "done: ${#names[@]} benchmark(s); ratios are mpx / baseline, MISS lines list targets not met"
