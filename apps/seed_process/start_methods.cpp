// Seed 001, "Contexto e métodos de início": set_start_method('spawn') and get_context('spawn'),
// then a process puts 'hello' into a Queue that the main process prints.
//
//   Python (seed 001)                        mpx
//   mp.set_start_method('spawn')             (nothing to choose: see below)
//   ctx = mp.get_context('spawn')            (same)
//   q = ctx.Queue()                          mpx::Queue<std::string> q;  // every rank, first
//   p = ctx.Process(target=foo, args=(q,))   mpx::Process p(foo);  // foo uses q through a global
//   print(q.get())                           std::printf("%s\n", q.get().c_str());
//
// Start methods: Python creates a child per Process by fork (copy of the parent), spawn (a
// fresh interpreter that imports the main module) or forkserver (forks from a clean server
// process). mpx never creates processes: mpiexec starts every rank as a fresh copy of the
// same program, which is closest to 'spawn' (nothing of the parent's memory is inherited;
// what the target needs travels as its arguments, or lives in objects every rank created
// collectively before serve()). Run: mpiexec -n 2 start_methods.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <string>

namespace {
mpx::Queue<std::string>* g_queue = nullptr;  // every rank's handle of the same queue
}

void foo() { g_queue->put("hello"); }
MPX_REGISTER(foo);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::Queue<std::string> q;  // collective: before the slots start serving
  g_queue = &q;
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process p(foo);
    p.start();
    std::printf("%s\n", q.get().c_str());
    p.join();
  }
}
