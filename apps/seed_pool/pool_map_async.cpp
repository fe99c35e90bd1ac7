// pool_map_async: seed 000, "Process Pool - exemplo": map, then map_async and wait().
//
//   inputs = list(range(0,100))
//   pool = multiprocessing.Pool(processes=4)
//   pool_outputs = pool.map(function_square, inputs)
//   print ('Pool :', pool_outputs)
//   inputs2 = list(range(100,200))
//   pool2 = multiprocessing.Pool(processes=4)
//   x = pool2.map_async(function_square, inputs2)
//   #some work ....
//   x.wait()
//   print ('Pool :', x.get())
//
//   mpiexec -n 5 build/bin/pool_map_async
#include <mpx/mpx.hpp>

#include <cstdio>
#include <ranges>
#include <vector>

#include "pylist.hpp"

int function_square(int data) {
  int result = data * data;
  return result;
}
MPX_REGISTER(function_square);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto pool = mpx::Pool::serve({.processes = 4})) {
    auto pool_outputs = pool.map(function_square, std::views::iota(0, 100));
    std::printf("Pool : %s\n", seed_pool::pylist(pool_outputs).c_str());
  }
  if (auto pool2 = mpx::Pool::serve({.processes = 4})) {
    auto x = pool2.map_async(function_square, std::views::iota(100, 200));
    // some work ....
    x.wait();
    std::printf("Pool : %s\n", seed_pool::pylist(x.get()).c_str());
  }
}
