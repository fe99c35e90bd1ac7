"""Baselines for bench_pool: Python's multiprocessing.Pool and mpi4py's futures executor.

  python3 pool_baseline.py mp N PROCS            -> items per second of
        multiprocessing.Pool(PROCS).map(square, range(N)), default chunksize
  mpiexec -n 3 python3 pool_baseline.py mpi4py N CHUNK
                                                 -> items per second of the mpi4py.futures
        executor map(square, range(N), chunksize=CHUNK) over the ranks of the job
        (MPICommExecutor: the SPMD form of MPIPoolExecutor, same machinery, no spawn)
The last line printed is the number (bench/common/harness.hpp run_python reads it).
"""
import multiprocessing as mp
import sys
import time


def square(x):
    return x * x


def with_multiprocessing(n, procs):
    with mp.Pool(procs) as pool:
        pool.map(square, range(1000))  # warm up: workers started, code paths hot
        t0 = time.perf_counter()
        out = pool.map(square, range(n))
        t = time.perf_counter() - t0
    assert out[-1] == (n - 1) * (n - 1)
    print(n / t)


def with_mpi4py(n, chunk):
    from mpi4py import MPI
    from mpi4py.futures import MPICommExecutor

    with MPICommExecutor(MPI.COMM_WORLD, root=0) as executor:
        if executor is not None:
            list(executor.map(square, range(1000), chunksize=100))  # warm up
            t0 = time.perf_counter()
            out = list(executor.map(square, range(n), chunksize=chunk))
            t = time.perf_counter() - t0
            assert out[-1] == (n - 1) * (n - 1)
            print(n / t)


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "mp":
        with_multiprocessing(int(sys.argv[2]), int(sys.argv[3]))
    elif kind == "mpi4py":
        with_mpi4py(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: pool_baseline.py mp N PROCS | mpi4py N CHUNK")
