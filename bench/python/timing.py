"""Shared by the Python baselines: how a measurement is repeated and reported.

The C++ side (bench/common/harness.hpp) reports the median of its timed rounds, so the
baselines do the same: the median of ROUNDS runs, never the best one. (Best-of-N picks
outliers: a contended lock run in which one process happened to hold the lock for its
whole loop while the other slept reads 4-5x faster than a typical run.)
"""
import statistics

ROUNDS = 5


def report(measure, n, rounds=ROUNDS):
    """Runs measure(n) `rounds` times and prints the median: the last line printed is the
    number bench/common/harness.hpp run_python() reads."""
    print(statistics.median(measure(n) for _ in range(rounds)))
