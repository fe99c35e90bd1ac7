// Seeds 002 and 003, "How to run a process in the background": a daemon process and a
// normal one run the same function; both are joined, so both finish.
//
//   Python (seed 003)                                   mpx
//   background_process.daemon = True                    background_process.set_daemon(true);
//   NO_background_process.daemon = False                (the default)
//   time.sleep(1)                                       mpx::sleep_for(1s);
//
// A daemon differs only at the end of the main process: one still running is terminated
// instead of joined (see the naming example). Run: mpiexec -n 3 background (two slots, so
// both run at once; with -n 2 the second waits for the first).
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>

#include "cli.hpp"

void foo(int step_ms) {
  const auto name = mpx::current_process().name;
  std::printf("Starting %s \n", name.c_str());
  std::fflush(stdout);
  const int first = name == "background_process" ? 0 : 5;
  for (int i = first; i < first + 5; ++i) {
    std::printf("---> %d \n", i);
    std::fflush(stdout);
    mpx::sleep_for(std::chrono::milliseconds(step_ms));
  }
  std::printf("Exiting %s \n", name.c_str());
  std::fflush(stdout);
}
MPX_REGISTER(foo);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "background", "[--step-ms MS]");
  const int step_ms = static_cast<int>(cli.integer("--step-ms", 1000));
  cli.done();
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process background_process({.name = "background_process"}, foo, step_ms);
    background_process.set_daemon(true);
    mpx::Process NO_background_process({.name = "NO_background_process"}, foo, step_ms);
    NO_background_process.set_daemon(false);
    background_process.start();
    NO_background_process.start();
    background_process.join();
    NO_background_process.join();
  }
}
