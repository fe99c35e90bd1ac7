// pool_squares: seeds 002 and 003, "multiply a list element by element".
//
//   def function_square(data):            |  int function_square(int data) { ... }
//       result = data*data                 |  MPX_REGISTER(function_square);
//       return result                      |
//   inputs = list(range(0,100))            |  std::vector<int> inputs(100); iota(...)
//   pool = multiprocessing.Pool(processes=4)| if (auto pool = mpx::Pool::serve({.processes = 4}))
//   pool_outputs = pool.map(function_square, inputs)
//   pool.close(); pool.join()
//   print ('Pool :', pool_outputs)
//
//   mpiexec -n 5 build/bin/pool_squares          # Pool : [0, 1, 4, ..., 9801]   (seed 002)
//   build/bin/pool_squares --seed 003            # Pool      : [0, 1, ...]        (seed 003)
#include <mpx/mpx.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

#include "cli.hpp"
#include "pylist.hpp"

int function_square(int data) {
  int result = data * data;
  return result;
}
MPX_REGISTER(function_square);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "pool_squares", "[--seed 002|003]");
  const std::string seed = cli.text("--seed", "002");
  cli.done();
  if (auto pool = mpx::Pool::serve({.processes = 4})) {
    std::vector<int> inputs(100);
    std::iota(inputs.begin(), inputs.end(), 0);
    auto pool_outputs = pool.map(function_square, inputs);
    pool.close();
    pool.join();
    std::printf("%s %s\n",
                seed == "003" ? "Pool      :" : "Pool :", seed_pool::pylist(pool_outputs).c_str());
  }
}
