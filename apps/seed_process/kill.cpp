// Seed 002, "How to kill a process": is_alive() before and after start, terminate(), join(),
// and the exit code -15 (Python's -SIGTERM).
//
//   Python (seed 002)                             mpx
//   print('...:', p, p.is_alive())                std::cout << "...: " << p << ' ' << p.is_alive()
//   p.terminate()                                 p.terminate();
//   p.exitcode                                    p.exitcode()   // std::optional<int>
//
// terminate() reaches the slot through its progress thread; the target is unwound at its
// next mpx wait or mpx::sleep_for (here, before it even started or during its 0.1 s sleep),
// so it usually prints nothing, as in the seed. Run: mpiexec -n 2 kill.
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

void foo() {
  std::printf("Starting function\n");
  std::fflush(stdout);
  mpx::sleep_for(std::chrono::milliseconds(100));
  std::printf("Finished function\n");
  std::fflush(stdout);
}
MPX_REGISTER(foo);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::cout << std::boolalpha;
    auto py = [](bool b) { return b ? "True" : "False"; };
    mpx::Process p(foo);
    std::cout << "Process before execution: " << p << ' ' << py(p.is_alive()) << std::endl;
    p.start();
    std::cout << "Process running: " << p << ' ' << py(p.is_alive()) << std::endl;
    p.terminate();
    std::cout << "Process terminated: " << p << ' ' << py(p.is_alive()) << std::endl;
    p.join();
    std::cout << "Process joined: " << p << ' ' << py(p.is_alive()) << std::endl;
    std::cout << "Process exit code: " << p.exitcode().value() << std::endl;
  }
}
