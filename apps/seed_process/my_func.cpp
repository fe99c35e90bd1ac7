// Seed 003, "Paralelismo basado en procesos": six processes, started and joined in turn,
// each printing its number and a count.
//
//   Python (seed 003)                                   mpx
//   process = multiprocessing.Process(target=myFunc,    mpx::Process process(myFunc, i);
//                                     args=(i,))
//
// Run: mpiexec -n 2 my_func.
#include <mpx/mpx.hpp>

#include <cstdio>

void myFunc(int i) {
  std::printf("calling myFunc from process n\u00b0: %d\n", i);
  for (int j = 0; j < i; ++j) std::printf("output from myFunc is :%d\n", j);
  std::fflush(stdout);
}
MPX_REGISTER(myFunc);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    for (int i = 0; i < 6; ++i) {
      mpx::Process process(myFunc, i);
      process.start();
      process.join();
    }
  }
}
