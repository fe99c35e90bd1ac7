#!/usr/bin/env bash
# mpx quick start: installs what is missing, builds, then runs the demo or the test suite.
#
#   scripts/quickstart.sh          # set up, build, run the main demo on all local cores
#   scripts/quickstart.sh test     # set up, build, run the whole test suite
#
# Set-up installs only the Debian/Ubuntu packages that are missing (with sudo when not
# root). The build is incremental (build/ is reused). Environment knobs:
#   MPX_BUILD_DIR   build directory (default: build)
#   MPX_BUILD_TYPE  CMake build type (default: Release)
#   MPX_JOBS        parallel build/test jobs (default: number of cores)
set -euo pipefail

mode="${1:-demo}"
case "$mode" in
  demo|test) ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MPX_BUILD_DIR:-$root/build}"
build_type="${MPX_BUILD_TYPE:-Release}"
cores="$(nproc 2>/dev/null || echo 2)"
jobs="${MPX_JOBS:-$cores}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# ---- 1. packages -----------------------------------------------------------------------
packages=(g++ cmake ninja-build openmpi-bin libopenmpi-dev libboost-serialization-dev
          libboost-mpi-dev libgtest-dev libgmock-dev libbenchmark-dev iproute2)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing missing packages: ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
      sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "all packages present"
  fi
else
  echo "not a Debian/Ubuntu system: install ${packages[*]} (or your system's equivalents) yourself" >&2
fi

# ---- 2. build ----------------------------------------------------------------------------
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE="$build_type")
command -v ccache >/dev/null 2>&1 && cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
[ "${CI:-}" = "true" ] && cmake_args+=(-DMPX_WARNINGS_AS_ERRORS=ON)
# Open MPI refuses to run as root; the test suite (and only it) says explicitly that it may.
if [ "$mode" = test ] && [ "$(id -u)" -eq 0 ]; then
  cmake_args+=(-DMPX_TESTS_AS_ROOT=ON)
fi
say "configuring $build ($build_type)"
cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
say "building with $jobs jobs"
cmake --build "$build" -j "$jobs"

# ---- 3. run ------------------------------------------------------------------------------
if [ "$mode" = test ]; then
  say "running the test suite"
  # Tests declare how many ranks they use (PROCESSORS); oversubscribed jobs are fine here.
  exec ctest --test-dir "$build" --output-on-failure -j "$((jobs * 2))"
fi

mpiexec_args=(-n "$cores")
if [ "$(id -u)" -eq 0 ]; then
  echo "note: running as root, so this demo passes --allow-run-as-root to mpiexec"
  mpiexec_args+=(--allow-run-as-root)
fi
if [ -x "$build/bin/pi" ]; then
  say "demo: distributed pi on $cores ranks (mpiexec -n $cores $build/bin/pi --compare)"
  exec mpiexec "${mpiexec_args[@]}" "$build/bin/pi" --compare
fi
say "demo: hello on $cores ranks"
exec mpiexec "${mpiexec_args[@]}" "$build/bin/hello" --ordered
