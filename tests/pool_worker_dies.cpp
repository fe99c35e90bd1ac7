// A Pool task that crashes its worker must end the whole job with a line naming the worker,
// never leave the driver waiting. Run under mpiexec by tests/CMakeLists.txt, which expects
// that line (the job itself fails, as it must).
#include <mpx/mpx.hpp>

#include <csignal>
#include <cstdio>
#include <ranges>

namespace {
int crash_on_7(int x) {
  if (x == 7) std::raise(SIGSEGV);
  return x;
}
MPX_REGISTER(crash_on_7);
}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto pool = mpx::Pool::serve()) {
    auto out = pool.map(crash_on_7, std::views::iota(0, 20), {.chunksize = 1});
    std::printf("not reached: the driver got %zu results\n", out.size());
  }
  return 0;
}
