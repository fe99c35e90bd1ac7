// Seed 002, "How to spawn a process": five processes, each started and joined in turn.
//
//   Python (seed 002)                                  mpx
//   def foo(i):                                        void foo(int i) { ... }
//       print('called function in process: %s' %i)     MPX_REGISTER(foo);
//   p = multiprocessing.Process(target=foo, args=(i,)) mpx::Process p(foo, i);
//   p.start(); p.join()                                p.start(); p.join();
//
// Run: mpiexec -n 2 spawn (rank 0 is the main process, rank 1 the process slot that runs
// foo); alone, foo runs in a thread of the main process.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <vector>

void foo(int i) {
  std::printf("called function in process: %d\n", i);
  std::fflush(stdout);
}
MPX_REGISTER(foo);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<mpx::Process> process_jobs;
    for (int i = 0; i < 5; ++i) {
      auto& p = process_jobs.emplace_back(foo, i);
      p.start();
      p.join();
    }
  }
}
