// Seed 002, "How to name a process": one process named foo_process (a daemon), one with the
// default name Process-N; each prints current_process().name.
//
//   Python (seed 002)                                      mpx
//   multiprocessing.current_process().name                 mpx::current_process().name
//   Process(name='foo_process', target=foo)                mpx::Process p({.name = "foo_process"},
//                                                                         foo);
//   process_with_name.daemon = True                        p.set_daemon(true);
//   time.sleep(3)                                          mpx::sleep_for(3s);  // interruptible
//
// The main process ends right after starting both, as in the seed: the daemon is terminated
// then (so it never prints "Exiting"), the other process is joined. The seed's second print
// has a bug (`"Exiting %s \n %name"` inside the string); this prints the name. Needs two
// process slots to run both at once: mpiexec -n 3 naming.
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include "cli.hpp"

void foo(double seconds) {
  const auto name = mpx::current_process().name;
  std::printf("Starting %s \n", name.c_str());
  std::fflush(stdout);
  mpx::sleep_for(std::chrono::duration<double>(seconds));
  std::printf("Exiting %s \n", name.c_str());
  std::fflush(stdout);
}
MPX_REGISTER(foo);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "naming", "[--milliseconds MS]");
  const double seconds = static_cast<double>(cli.integer("--milliseconds", 3000)) / 1000.0;
  cli.done();
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process process_with_name({.name = "foo_process"}, foo, seconds);
    process_with_name.set_daemon(true);
    mpx::Process process_with_default_name(foo, seconds);
    process_with_name.start();
    process_with_default_name.start();
  }  // end of the main process: the daemon is terminated, the other one joined
}
