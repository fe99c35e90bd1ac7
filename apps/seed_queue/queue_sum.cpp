// queue_sum: seed 004's "parallel sum through a Queue": every worker computes num + 2 for
// its numbers and puts the results in one queue; rank 0 collects them. As in the seed, the
// order of the results depends on who finishes first, and the parallel version is not
// faster: the work per item is tiny next to the cost of moving it.
//
//   mpiexec -n 4 build/bin/queue_sum [--n 100]
#include <algorithm>

#include "cli.hpp"
#include "common.hpp"

namespace {
void somma_2(int num, mpx::Queue<int>& queue) { queue.put(num + 2); }

std::string as_list(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "queue_sum", "[--n N]");
  const int n = static_cast<int>(cli.integer("--n", 100));
  cli.done();
  const auto& world = mpx::Communicator::world();
  mpx::Queue<int> queue;

  // parallel_sum(): every rank takes the numbers i with i % size == rank.
  world.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int num = world.rank(); num < n; num += world.size()) somma_2(num, queue);
  std::vector<int> results;
  if (world.rank() == 0) {
    for (int i = 0; i < n; ++i) results.push_back(queue.get());
    seed::say(as_list(results));
    seed::say("Time for parallel version: " +
              std::to_string(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    // serial_sum(): the same on one rank.
    t0 = std::chrono::steady_clock::now();
    for (int num = 0; num < n; ++num) somma_2(num, queue);
    std::vector<int> serial;
    for (int i = 0; i < n; ++i) serial.push_back(queue.get());
    seed::say(as_list(serial));
    seed::say("Time for serial version: " +
              std::to_string(
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    std::sort(results.begin(), results.end());
    seed::say(results == serial ? "same numbers in both versions"
                                : "MISMATCH between the versions");
  }
  world.barrier();
  return 0;
}
