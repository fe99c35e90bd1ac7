// pool_somma: seed 004, map and map_async with a pool of two processes.
//
//   nums=[i for i in range(10)]
//   p=mp.Pool(2)
//   def somma_2_2(num):
//       time.sleep(0.5)
//       return num+2
//   results=p.map(somma_2_2,nums)
//   print("Sincrono"); print(results)
//   results=p.map_async(somma_2_2,nums)
//   print("Asincrono"); print(results.get())
//
//   mpiexec -n 3 build/bin/pool_somma [--sleep-ms 500]
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "pylist.hpp"

int somma_2_2(int num, int sleep_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return num + 2;
}
MPX_REGISTER(somma_2_2);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "pool_somma", "[--sleep-ms 500]");
  const int sleep_ms = static_cast<int>(cli.integer("--sleep-ms", 500));
  cli.done();
  std::vector<std::tuple<int, int>> nums;
  for (int i = 0; i < 10; ++i) nums.emplace_back(i, sleep_ms);
  if (auto p = mpx::Pool::serve({.processes = 2})) {
    auto results = p.starmap(somma_2_2, nums);
    std::printf("Sincrono\n%s\n", seed_pool::pylist(results).c_str());
    auto async_results = p.starmap_async(somma_2_2, nums);
    std::printf("Asincrono\n%s\n", seed_pool::pylist(async_results.get()).c_str());
  }
}
