"""Baseline for bench_sync: Python's multiprocessing.Lock and Barrier.

  python3 sync_baseline.py lock N          -> lock acquire/release pairs per second, one
                                              process looping alone (uncontended)
  python3 sync_baseline.py lock_contended N -> pairs per second of two processes looping on
                                              the same lock at once (total of both)
  python3 sync_baseline.py barrier N       -> microseconds per Barrier(2).wait() of two
                                              processes meeting N times
The last line printed is the number (bench/common/harness.hpp run_python reads it).
"""
import multiprocessing as mp
import sys
import time

from timing import report


def lock_loop(lock, n, start):
    start.wait()
    for _ in range(n):
        lock.acquire()
        lock.release()


def lock_alone(n):
    lock = mp.Lock()
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return n / (time.perf_counter() - t0)


def lock_contended(n):
    lock = mp.Lock()
    start = mp.Barrier(3)
    procs = [mp.Process(target=lock_loop, args=(lock, n, start)) for _ in range(2)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    return 2 * n / (time.perf_counter() - t0)


def barrier_loop(barrier, n):
    for _ in range(n):
        barrier.wait()


def barrier_time(n):
    barrier = mp.Barrier(2)
    p = mp.Process(target=barrier_loop, args=(barrier, n + 10))
    p.start()
    for _ in range(10):  # warm up
        barrier.wait()
    t0 = time.perf_counter()
    for _ in range(n):
        barrier.wait()
    t = time.perf_counter() - t0
    p.join()
    return t / n * 1e6


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "lock"
    n = int(float(sys.argv[2])) if len(sys.argv) > 2 else 200000
    report({"lock": lock_alone, "lock_contended": lock_contended}.get(mode, barrier_time), n)
