"""Baseline for bench_shared: Python's multiprocessing.Value updated under its own lock.

  python3 shared_baseline.py value N            -> increments per second of one process doing
                                                   `with v.get_lock(): v.value += 1` N times
  python3 shared_baseline.py value_contended N  -> increments per second of two processes doing
                                                   it N times each on the same Value (total)
The last line printed is the number (bench/common/harness.hpp run_python reads it).
"""
import multiprocessing as mp
import sys
import time

from timing import report


def add_loop(v, n, start):
    start.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_alone(n):
    v = mp.Value('l', 0)
    t0 = time.perf_counter()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    t = time.perf_counter() - t0
    assert v.value == n
    return n / t


def value_contended(n):
    v = mp.Value('l', 0)
    start = mp.Barrier(3)
    procs = [mp.Process(target=add_loop, args=(v, n, start)) for _ in range(2)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    t = time.perf_counter() - t0
    assert v.value == 2 * n
    return 2 * n / t


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "value"
    n = int(float(sys.argv[2])) if len(sys.argv) > 2 else 200000
    report(value_alone if mode == "value" else value_contended, n)
