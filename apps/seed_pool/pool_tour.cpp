// pool_tour: seed 001, the tour of Pool from Python's documentation: map, imap_unordered,
// apply_async, get(timeout) and the TimeoutError, then the end of the `with` block.
//
//   with Pool(processes=4) as pool:           ->  if (auto pool = Pool::serve({.processes = 4}))
//       print(pool.map(f, range(10)))         ->    pool.map(f, std::views::iota(0, 10))
//       for i in pool.imap_unordered(f, ...)  ->    for (int i : pool.imap_unordered(f, ...))
//       res = pool.apply_async(f, (20,))      ->    auto res = pool.apply_async(f, std::tuple{20});
//       print(res.get(timeout=1))             ->    res.get(1s)
//       pool.apply_async(os.getpid, ())       ->    pool.apply_async(getpid)
//   (leaving the with block)                  ->  } (the pool ends: terminate)
//
// The seed sleeps 10 s in the task that times out; here 2 s (--sleep S), because ending the
// pool waits for the task a worker is running (an MPI rank cannot be killed alone).
//   mpiexec -n 5 build/bin/pool_tour
#include <unistd.h>
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include <ranges>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "pylist.hpp"

using namespace std::chrono_literals;

int f(int x) { return x * x; }
MPX_REGISTER(f);
MPX_REGISTER(getpid);

int sleep_seconds(int s) {
  std::this_thread::sleep_for(std::chrono::seconds(s));
  return s;
}
MPX_REGISTER(sleep_seconds);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "pool_tour", "[--sleep S]");
  const int sleep_s = static_cast<int>(cli.integer("--sleep", 2));
  cli.done();
  // start 4 worker processes
  if (auto pool = mpx::Pool::serve({.processes = 4})) {
    // print "[0, 1, 4,..., 81]"
    std::printf("%s\n", seed_pool::pylist(pool.map(f, std::views::iota(0, 10))).c_str());
    // print same numbers in arbitrary order
    for (int i : pool.imap_unordered(f, std::views::iota(0, 10), {.chunksize = 1}))
      std::printf("%d\n", i);
    // evaluate "f(20)" asynchronously
    auto res = pool.apply_async(f, std::tuple{20});  // runs in *only* one process
    std::printf("%d\n", res.get(1s));                // prints "400"
    // evaluate "getpid()" asynchronously
    auto pid = pool.apply_async(getpid);  // runs in *only* one process
    std::printf("%d\n", pid.get(1s));     // prints the PID of that process
    // launching multiple evaluations asynchronously *may* use more processes
    std::vector<mpx::AsyncResult<pid_t>> multiple_results;
    for (int i = 0; i < 4; ++i) multiple_results.push_back(pool.apply_async(getpid));
    std::vector<pid_t> pids;
    for (auto& r : multiple_results) pids.push_back(r.get(1s));
    std::printf("%s\n", seed_pool::pylist(pids).c_str());
    // make a single worker sleep for a while
    auto sleeping = pool.apply_async(sleep_seconds, std::tuple{sleep_s});
    try {
      std::printf("%d\n", sleeping.get(1s));
    } catch (const mpx::TimeoutError&) {
      std::printf("We lacked patience and got an mpx::TimeoutError\n");
    }
    std::printf("For the moment, the pool remains available for more work\n");
  }
  // exiting the block has stopped the pool
  mpx::print0("Now the pool is closed and no longer available");
}
