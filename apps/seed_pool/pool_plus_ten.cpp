// pool_plus_ten: seed 003, "parallelism with a process pool".
//
//   def f(x):                               |  int f(int x) { return x + 10; }
//       return x+10                         |  MPX_REGISTER(f);
//   pool = multiprocessing.Pool(processes=2)|  if (auto pool = mpx::Pool::serve({.processes = 2}))
//   pool_outputs = pool.map(f,[1,...,10])   |    auto pool_outputs = pool.map(f, {1, ..., 10});
//   pool.close(); pool.join()               |    pool.close(); pool.join();
//   print ('Pool      :', pool_outputs)     |    print
//
//   mpiexec -n 3 build/bin/pool_plus_ten    # Pool      : [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
#include <mpx/mpx.hpp>

#include <cstdio>
#include <vector>

#include "pylist.hpp"

int f(int x) { return x + 10; }
MPX_REGISTER(f);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto pool = mpx::Pool::serve({.processes = 2})) {
    auto pool_outputs = pool.map(f, std::vector{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    pool.close();
    pool.join();
    std::printf("Pool      : %s\n", seed_pool::pylist(pool_outputs).c_str());
  }
}
