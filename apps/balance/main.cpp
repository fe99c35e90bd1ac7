// balance: the bank-balance race of seed 004 (Italian notebook), with and without a Lock.
//
//   Python (seed 004)                          C++ (every rank runs main)
//   balance = mp.Value("i", 100)               a shared int (see SharedBalance below)
//   lock = mp.Lock()                           mpx::Lock lock;
//   p1: withdraw 10,000 times                  even ranks withdraw 10,000 times
//   p2: deposit 10,000 times                   odd ranks deposit 10,000 times
//     lock.acquire(); balance.value -= 1;        std::lock_guard g(lock); balance -= 1;
//     lock.release()
//   print(f"Balance={balance.value} con lock={lock_bool}")
//
// With the lock the balance ends at exactly 100 every time; without it the read-modify-write
// of different ranks interleaves and updates are lost ("races show").
//   mpiexec -n 2 build/bin/balance                 # 10 rounds without the lock, 10 with it
//   mpiexec -n 4 build/bin/balance --json          # {"lock": false, ...} {"lock": true, ...}
//   mpiexec -n 2 build/bin/balance --rounds 3 --iterations 100000 --only-lock
#include <mpx/mpx.hpp>
#include <mpx/detail/shared_segment.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

/// Python's mp.Value("i", 100) without its lock: a plain int every rank reads and writes.
/// `balance -= 1` is a load and a store, two steps another rank can slip between, exactly
/// like Python's `balance.value -= 1`. (The bytes are node-local shared memory.)
class SharedBalance {
 public:
  explicit SharedBalance(const mpx::Communicator& comm)
      : segment_(mpx::detail::SharedSegment::create(comm, sizeof(int), "balance")) {
    if (!segment_)
      throw mpx::UsageError(
          "balance: the ranks are not on one node (or MPX_NO_SHARED_MEMORY is set); this demo "
          "keeps the balance in node-local shared memory");
  }
  [[nodiscard]] int get() const { return ref().load(std::memory_order_relaxed); }
  void set(int v) { ref().store(v, std::memory_order_relaxed); }
  void add(int delta) { set(get() + delta); }  // not atomic: that is the point

 private:
  [[nodiscard]] std::atomic_ref<int> ref() const {
    return std::atomic_ref<int>(*static_cast<int*>(segment_->data()));
  }
  std::unique_ptr<mpx::detail::SharedSegment> segment_;
};

int run_round(const mpx::Communicator& world, SharedBalance& balance, bool use_lock, long long n) {
  mpx::Lock lock;  // Python: lock = mp.Lock(), a new one each round
  if (world.rank() == 0) balance.set(100);
  world.barrier();
  // Even ranks withdraw, odd ranks deposit; with an odd number of ranks the last one watches.
  const bool takes_part = world.rank() < (world.size() / 2) * 2;
  const int delta = world.rank() % 2 == 0 ? -1 : +1;
  if (takes_part) {
    for (long long i = 0; i < n; ++i) {
      if (use_lock) {
        std::lock_guard guard(lock);  // Python: lock.acquire() ... lock.release()
        balance.add(delta);
      } else {
        balance.add(delta);
      }
    }
  }
  world.barrier();
  const int result = balance.get();
  world.barrier();  // everyone has read it before the next round resets it
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "balance",
                     "[--rounds N] [--iterations N] [--only-lock | --only-no-lock] [--json]");
  const long long rounds = cli.integer("--rounds", 10);
  const long long iterations = cli.integer("--iterations", 10000);
  const bool only_lock = cli.flag("--only-lock");
  const bool only_no_lock = cli.flag("--only-no-lock");
  const bool json = cli.flag("--json");
  cli.done();
  const auto& world = mpx::Communicator::world();
  if (world.size() < 2) {
    if (world.rank() == 0)
      std::fprintf(stderr, "balance: run it with at least 2 ranks: mpiexec -n 2 balance\n");
    return 2;
  }

  SharedBalance balance(world);
  std::vector<bool> modes;
  if (!only_lock) modes.push_back(false);  // Python: loop(10, lock_bool=False)
  if (!only_no_lock) modes.push_back(true);  // Python: loop(10, lock_bool=True)
  for (const bool use_lock : modes) {
    std::vector<int> results;
    for (long long r = 0; r < rounds; ++r) {
      const int b = run_round(world, balance, use_lock, iterations);
      results.push_back(b);
      if (!json && world.rank() == 0) {
        std::printf("Balance=%d con lock=%s\n", b, use_lock ? "True" : "False");
        std::fflush(stdout);
      }
    }
    if (json && world.rank() == 0) {
      std::string line = std::string("{\"lock\": ") + (use_lock ? "true" : "false") +
                         ", \"ranks\": " + std::to_string(world.size()) +
                         ", \"iterations\": " + std::to_string(iterations) + ", \"balances\": [";
      for (std::size_t i = 0; i < results.size(); ++i)
        line += (i ? ", " : "") + std::to_string(results[i]);
      line += "]}";
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
