// Seed 001, "Sincronização entre Processos": ten processes print under a shared Lock.
//
//   Python (seed 001)                          mpx
//   lock = Lock()                              mpx::Lock lock;       // every rank, before serve()
//   Process(target=f, args=(lock, num))        mpx::Process(f, num)  // f uses a global lock
//   l.acquire(); try: ... finally: l.release()
//                                              std::lock_guard guard(*g_lock);
//
// The seed never joins its processes; neither does this program: the main process joins
// them when it ends, as Python does at exit. Run: mpiexec -n 4 lock_hello.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <mutex>
#include <vector>

namespace {
mpx::Lock* g_lock = nullptr;
}

void f(int i) {
  std::lock_guard guard(*g_lock);
  std::printf("hello world %d\n", i);
  std::fflush(stdout);
}
MPX_REGISTER(f);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::Lock lock;  // collective
  g_lock = &lock;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<mpx::Process> processes;
    for (int num = 0; num < 10; ++num) processes.emplace_back(f, num).start();
  }  // joined here
}
