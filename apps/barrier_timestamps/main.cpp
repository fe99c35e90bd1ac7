// barrier_timestamps: process synchronisation with a Barrier and a Lock (seeds 003 and 000).
//
//   Python (seed 003)                             C++ (rank r plays process p(r+1))
//   synchronizer = Barrier(2)                     mpx::Barrier synchronizer(2);
//   serializer = Lock()                           mpx::Lock serializer;
//   p1, p2: test_with_barrier                     ranks 0, 1: test_with_barrier
//     print("process %s arrives at ----> %s")       (p1 arrives 2 s late, p2 1 s)
//     synchronizer.wait()                           synchronizer.wait();
//     now = time.time()
//     with serializer: print("process %s ----> %s") { std::lock_guard g(serializer); ... }
//   p3, p4: test_without_barrier                  ranks 2, 3 (and any further rank)
//
// p1 and p2 leave the barrier together (same timestamp to a few milliseconds); p3 and p4 do
// not wait and print about two seconds earlier. Only 2 of the ranks take part in the barrier:
// mpx barriers count the parties that call wait(), as Python's do.
//   mpiexec -n 4 build/bin/barrier_timestamps
//   mpiexec -n 4 build/bin/barrier_timestamps --check    # verifies the timing, prints "check: ok"
//   mpiexec -n 4 build/bin/barrier_timestamps --json
#include <mpx/mpx.hpp>

#include <sys/time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"

namespace {

double now_seconds() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

/// Python's str(datetime.fromtimestamp(t)): "2018-04-01 19:27:49.878603".
std::string timestamp(double t) {
  const auto secs = static_cast<time_t>(std::floor(t));
  const auto micros = static_cast<long>(std::lround((t - static_cast<double>(secs)) * 1e6));
  std::tm local{};
  localtime_r(&secs, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  char out[96];
  std::snprintf(out, sizeof out, "%s.%06ld", buf, micros > 999999 ? 999999L : micros);
  return out;
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "barrier_timestamps", "[--check] [--json] [--late SECONDS]");
  const bool check = cli.flag("--check");
  const bool json = cli.flag("--json");
  const long long late = cli.integer("--late", 2);
  cli.done();
  const auto& world = mpx::Communicator::world();
  if (world.size() < 2) {
    std::fprintf(stderr,
                 "barrier_timestamps: needs at least 2 ranks: mpiexec -n 4 barrier_timestamps\n");
    return 2;
  }

  mpx::Barrier synchronizer(2);  // Python: Barrier(2)
  mpx::Lock serializer;          // Python: Lock()
  const int p = world.rank() + 1;
  const bool with_barrier = p <= 2;
  const std::string name =
      "p" + std::to_string(p) + (with_barrier ? " - test_with_barrier" : " - test_without_barrier");
  mpx::this_process().set_name(name);

  double left = 0;
  if (with_barrier) {  // Python: test_with_barrier(synchronizer, serializer)
    const double arrive = now_seconds();
    if (!json) say("process " + name + " arrives at ----> " + timestamp(arrive));
    std::this_thread::sleep_for(std::chrono::seconds(p == 1 ? late : late / 2));
    synchronizer.wait();
    left = now_seconds();
    if (!json) {
      std::lock_guard with(serializer);  // Python: with serializer:
      say("process " + name + " ----> " + timestamp(left));
    }
  } else {  // Python: test_without_barrier()
    left = now_seconds();
    if (!json) say("process " + name + " ----> " + timestamp(left));
  }

  const auto all = world.gather(left, 0);
  if (world.rank() == 0) {
    if (json) {
      std::string line = "{\"processes\": [";
      for (std::size_t r = 0; r < all.size(); ++r)
        line += std::string(r ? ", " : "") + "{\"name\": \"p" + std::to_string(r + 1) +
                "\", \"barrier\": " + (r < 2 ? "true" : "false") + ", \"time\": \"" +
                timestamp(all[r]) + "\"}";
      say(line + "]}");
    }
    if (check) {
      const double together = std::fabs(all[0] - all[1]);
      bool ok = together < 0.25;
      for (std::size_t r = 2; r < all.size(); ++r)
        ok = ok && all[r] < all[0] - 0.5 * static_cast<double>(late);
      char line[160];
      std::snprintf(line, sizeof line,
                    "check: p1 and p2 left %.1f ms apart; p3.. left before them: %s",
                    together * 1e3, ok ? "ok" : "FAILED");
      say(line);
      if (!ok) return 1;
    }
  }
  return 0;
}
