// apps/seed_queue/common.hpp: what the seed Queue examples share: roles, names, the pause.
#pragma once

#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace seed {

/// Prints one line at once (ranks' lines interleave as the seeds' processes do).
inline void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

/// The seeds' time.sleep(seconds), scaled by --delay-ms (the seed's 1 s = `unit`).
inline void sleep_units(double units, std::chrono::milliseconds unit) {
  std::this_thread::sleep_for(
      std::chrono::duration<double, std::milli>(units * static_cast<double>(unit.count())));
}

/// The seeds run one producer process and one consumer process: here rank 0 (which also
/// hosts the queue) produces and rank 1 consumes. Returns false, with a message, when the
/// job has fewer than 2 ranks.
inline bool two_ranks(const char* program) {
  if (mpx::Communicator::world().size() >= 2) return true;
  std::fprintf(stderr, "%s: needs 2 ranks (a producer and a consumer): mpiexec -n 2 %s\n", program,
               program);
  return false;
}

}  // namespace seed
