"""Baseline for bench_queue: Python's multiprocessing.Queue between two processes.

  python3 queue_baseline.py throughput N   -> prints items per second (one producer process
                                              puts N small ints, the main process gets them)
  python3 queue_baseline.py latency N      -> prints one-way put-to-get latency in
                                              microseconds (N round trips through two queues)
The last line printed is the number (bench/common/harness.hpp run_python reads it).
"""
import multiprocessing as mp
import sys
import time

from timing import report


def produce(q, n):
    for i in range(n):
        q.put(i)


def echo(inbox, outbox, n):
    for _ in range(n):
        outbox.put(inbox.get())


def throughput(n):
    q = mp.Queue()
    p = mp.Process(target=produce, args=(q, n))
    t0 = time.perf_counter()
    p.start()
    for _ in range(n):
        q.get()
    t = time.perf_counter() - t0
    p.join()
    return n / t


def latency(n):
    a, b = mp.Queue(), mp.Queue()
    p = mp.Process(target=echo, args=(a, b, n + 100))
    p.start()
    for i in range(100):  # warm up
        a.put(i)
        b.get()
    t0 = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    t = time.perf_counter() - t0
    p.join()
    return t / n / 2 * 1e6


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "throughput"
    n = int(float(sys.argv[2])) if len(sys.argv) > 2 else 200000
    if mode == "throughput":
        report(throughput, n)
    else:
        report(latency, n)
