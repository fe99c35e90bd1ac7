// manager_dict: the Manager().dict() example of seed 002, one worker per key.
//
//   Python (seed 002)                              C++ (every rank runs main)
//   mgr = multiprocessing.Manager()                (rank 0 hosts the dictionary)
//   dictionary = mgr.dict()                        mpx::Dict<int, int> dictionary;
//   def worker(dictionary, key, item):             worker(dictionary, key, item):
//     dictionary[key] = item                         dictionary[key] = item;
//     print("key = ", key, "value = ", item)         std::printf("key =  %d value =  %d\n", ...)
//   jobs = [Process(target=worker,                 job i runs on rank i % size
//           args=(dictionary, i, i*2))
//           for i in range(10)]
//   start / join                                   barrier
//   print("Results:", dictionary)                  rank 0 prints dictionary.items()
//
//   mpiexec -n 4 build/bin/manager_dict                 # rank 0 prints the workers' lines in key
//   order mpiexec -n 4 build/bin/manager_dict --as-they-come  # each worker prints at once, like
//   Python; the
//                                                       # lines (and Results) arrive in any order
//   mpiexec -n 4 build/bin/manager_dict --jobs 20
#include <mpx/mpx.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"

namespace {

/// Python's print("key = ", key, "value = ", item): print separates its arguments by spaces.
std::string key_line(int key, int item) {
  return "key =  " + std::to_string(key) + " value =  " + std::to_string(item);
}

/// Python's repr of a dict of ints: {0: 0, 1: 2}.
std::string repr(const std::map<int, int>& d) {
  std::string out = "{";
  for (const auto& [k, v] : d) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(k) + ": " + std::to_string(v);
  }
  return out + "}";
}

/// The worker of the seed: stores one item and says so (remote: a request to rank 0).
void worker(mpx::Dict<int, int>& dictionary, int key, int item, bool print_now) {
  dictionary[key] = item;
  if (print_now) {
    std::printf("%s\n", key_line(key, item).c_str());
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "manager_dict", "[--jobs N] [--as-they-come]");
  const int jobs = static_cast<int>(cli.integer("--jobs", 10));
  const bool ordered = !cli.flag("--as-they-come");
  cli.done();

  const auto& world = mpx::Communicator::world();
  mpx::Dict<int, int> dictionary;  // Python: mgr.dict()

  std::vector<std::pair<int, int>> done;  // (key, item) of the jobs this rank ran
  for (int i = world.rank(); i < jobs; i += world.size()) {
    worker(dictionary, i, i * 2, !ordered);
    done.emplace_back(i, i * 2);
  }
  if (ordered) {  // rank 0 prints every worker's line, in key order
    auto all = world.gather(done, 0);
    if (world.rank() == 0) {
      std::vector<std::pair<int, int>> lines;
      for (auto& part : all) lines.insert(lines.end(), part.begin(), part.end());
      std::sort(lines.begin(), lines.end());
      for (const auto& [key, item] : lines) std::printf("%s\n", key_line(key, item).c_str());
    }
  }
  world.barrier();  // Python: for j in jobs: j.join()
  if (world.rank() == 0) {
    std::printf("Results: %s\n", repr(dictionary.items()).c_str());
    std::fflush(stdout);
  }
  world.barrier();  // nobody destroys the dictionary while rank 0 still reads it
}
