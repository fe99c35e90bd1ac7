// Seed 001, "A classe Process": Process(target=f, args=('bob',)), and info() printing the
// parent's and the process's ids.
//
//   Python (seed 001)                      mpx
//   os.getppid()                           mpx::current_process().parent_pid
//   os.getpid()                            mpx::current_process().pid
//   p = Process(target=f, args=('bob',))   mpx::Process p(f, "bob");
//
// Inside a target, the parent is the main process (rank 0), as in Python. On the main
// process itself the parent is the OS parent: the mpiexec launcher (or your shell when run
// alone). Run: mpiexec -n 2 process_info.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <string>

void info(const std::string& title) {
  const auto me = mpx::current_process();
  std::printf("%s\nparent process: %d\nprocess id: %d\n", title.c_str(),
              static_cast<int>(me.parent_pid), static_cast<int>(me.pid));
}

void f(std::string name) {
  info("function f");
  std::printf("hello %s\n", name.c_str());
  std::fflush(stdout);
}
MPX_REGISTER(f);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    info("main line");
    std::fflush(stdout);
    mpx::Process p(f, "bob");
    p.start();
    p.join();
  }
}
