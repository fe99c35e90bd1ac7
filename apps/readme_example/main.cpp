// The README's ten-line example, built and checked by the test suite.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <ranges>

int square(int x) { return x * x; }
MPX_REGISTER(square);  // functions travel to other ranks by name

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);         // MPI_Init ... MPI_Finalize
  if (auto pool = mpx::Pool::serve()) {     // rank 0 drives; the other ranks work until it ends
    for (int s : pool.map(square, std::views::iota(0, 10))) std::printf("%d ", s);
    std::printf("(computed by %d worker(s))\n", std::max(1, mpx::this_process().size() - 1));
  }
}
