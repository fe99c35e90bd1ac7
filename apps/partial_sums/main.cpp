// The two exercises of seed 000 ("Programação em sistemas de memória distribuída"):
//   1. How do we get the partial value computed by each thread and by each process?
//   2. What are the run times if each process receives only the part of the list it sums?
//
// A list of N numbers (1..N, default N = 10^7) lives on rank 0. Two ways to hand it out:
//   whole  - rank 0 broadcasts the whole list; every process sums only its own slice of it
//            (what Python's Process(target=soma, args=(lista, ...)) does: each child gets the
//            whole list pickled, or a fork copy of it);
//   slice  - rank 0 scatters the list (MPI_Scatterv): every process receives only its slice.
// Each process computes its partial value; rank 0 gathers them (answer to exercise 1: the
// partial values come back by a gather, or a Queue/Pipe in Python) and adds them up. Both
// timings cover distributing the list, summing and gathering; the best of --repeat runs is
// printed. With threads (--threads T, on rank 0) the partial values come back through
// std::future, the C++ counterpart of a thread writing into a shared list.
//
// Run: mpiexec -n 4 partial_sums [--n 10000000] [--repeat 3] [--threads 4]
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Number = std::int64_t;

struct Slice {
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// The slice of process `r` of `p`: sizes differ by at most one, lower ranks get the larger
/// ones (the split Communicator::scatterv uses).
Slice slice_of(std::size_t n, int r, int p) {
  const std::size_t base = n / static_cast<std::size_t>(p);
  const std::size_t extra = n % static_cast<std::size_t>(p);
  const auto ur = static_cast<std::size_t>(r);
  const std::size_t begin = ur * base + std::min(ur, extra);
  return {begin, begin + base + (ur < extra ? 1 : 0)};
}

Number sum(std::span<const Number> values) {
  return std::accumulate(values.begin(), values.end(), Number{0});
}

struct Run {
  double seconds = 0;
  std::vector<Number> partials;  // rank 0 only
};

Run whole_list(const mpx::Communicator& world, std::vector<Number>& numbers) {
  world.barrier();
  const auto t0 = Clock::now();
  numbers = world.bcast(std::move(numbers), 0);  // no copy on rank 0
  const Slice s = slice_of(numbers.size(), world.rank(), world.size());
  const Number partial = sum(std::span<const Number>(numbers).subspan(s.begin, s.end - s.begin));
  Run run;
  run.partials = world.gather(partial, 0);
  run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (world.rank() != 0) std::vector<Number>().swap(numbers);
  return run;
}

Run only_slice(const mpx::Communicator& world, const std::vector<Number>& numbers) {
  world.barrier();
  const auto t0 = Clock::now();
  const std::vector<Number> mine = world.scatterv(std::span<const Number>(numbers), 0);
  const Number partial = sum(mine);
  Run run;
  run.partials = world.gather(partial, 0);
  run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "partial_sums", "[--n N] [--repeat R] [--threads T]");
  const auto n = static_cast<std::size_t>(cli.integer("--n", 10000000));
  const int repeat = static_cast<int>(cli.integer("--repeat", 3));
  const int threads = static_cast<int>(cli.integer("--threads", 4));
  cli.done();
  const auto& world = mpx::Communicator::world();
  const int p = world.size();

  std::vector<Number> numbers;
  if (world.rank() == 0) {
    numbers.resize(n);
    std::iota(numbers.begin(), numbers.end(), Number{1});
  }

  Run whole, slice;
  for (int i = 0; i < repeat; ++i) {
    Run w = whole_list(world, numbers);
    Run s = only_slice(world, numbers);
    if (i == 0 || w.seconds < whole.seconds) whole = std::move(w);
    if (i == 0 || s.seconds < slice.seconds) slice = std::move(s);
  }
  if (world.rank() != 0) return 0;

  const double mb_whole = static_cast<double>(n * sizeof(Number)) / 1e6;
  const double mb_slice = static_cast<double>(slice_of(n, 0, p).end * sizeof(Number)) / 1e6;
  std::printf("list of %zu numbers (1..%zu), %d processes\n", n, n, p);
  std::printf("whole list to every process: %.4f s (each process receives %.1f MB)\n",
              whole.seconds, mb_whole);
  std::printf("only its slice (scatterv):   %.4f s (each process receives up to %.1f MB)\n",
              slice.seconds, mb_slice);
  if (slice.seconds > 0) std::printf("whole / slice time: %.2f\n", whole.seconds / slice.seconds);

  bool ok = whole.partials == slice.partials;
  Number total = 0;
  for (int r = 0; r < p; ++r) {
    const Slice s = slice_of(n, r, p);
    const auto value = slice.partials[static_cast<std::size_t>(r)];
    std::printf("partial value of process %d: %lld (numbers %zu..%zu)\n", r,
                static_cast<long long>(value), s.begin + 1, s.end);
    total += value;
  }

  // Exercise 1 with threads: each thread returns its partial value through a future.
  std::vector<std::future<Number>> parts;
  for (int t = 0; t < threads; ++t) {
    const Slice s = slice_of(n, t, threads);
    parts.push_back(std::async(std::launch::async, [&numbers, s] {
      return sum(std::span<const Number>(numbers).subspan(s.begin, s.end - s.begin));
    }));
  }
  Number thread_total = 0;
  for (int t = 0; t < threads; ++t) {
    const Number value = parts[static_cast<std::size_t>(t)].get();
    std::printf("partial value of thread %d: %lld\n", t, static_cast<long long>(value));
    thread_total += value;
  }

  const auto un = static_cast<unsigned long long>(n);
  const auto expected = static_cast<long long>(un * (un + 1) / 2);
  ok = ok && total == expected && thread_total == expected;
  std::printf("total: %lld (expected %lld) %s\n", static_cast<long long>(total), expected,
              ok ? "OK" : "WRONG");
  return ok ? 0 : 1;
}
