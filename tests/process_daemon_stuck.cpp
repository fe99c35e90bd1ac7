// A daemon whose target never calls mpx cannot be terminated; at the end of the main process
// mpx must still end the program (after MPX_DAEMON_GRACE) instead of waiting for ever.
// Registered as a smoke test: it passes when the job ends on its own with exit code 0.
#include <mpx/mpx.hpp>

#include <cstdio>

void spin_for_ever() {
  volatile unsigned long x = 0;
  for (;;) x = x + 1;
}
MPX_REGISTER(spin_for_ever);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    mpx::Process daemon({.name = "stuck", .daemon = true}, spin_for_ever);
    daemon.start();
    std::printf("main process done\n");
    std::fflush(stdout);
  }
}
