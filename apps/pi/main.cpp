// pi: seed 003's parallel pi by the midpoint rule, on the ranks of an MPI job.
//
//   mpiexec -n 4 build/bin/pi --steps 1e9                  # each rank its share + a reduction
//   mpiexec -n 4 build/bin/pi --steps 1e9 --mode pool      # the seed's Pool.starmap
//   mpiexec -n 4 build/bin/pi --steps 1e8 --compare        # serial vs parallel and speedup
//   build/bin/pi --steps 1e7 --mode serial --json          # alone, machine-readable
//
// It prints pi, its error against M_PI, the time, and the partial value each rank (or each
// pool task) computed: the exercise of seed 000 ("how do we get the partial value each
// process computed?"). Modes:
//   serial  rank 0 sums every step (other ranks wait);
//   reduce  rank r sums the steps r, r + size, r + 2 size, ... and an MPI reduction adds the
//           partial sums (every rank computes);
//   pool    rank 0 drives an mpx::Pool and starmaps calc_partial_pi(part, nparts, nsteps, dx)
//           over the workers, as the seed does with multiprocessing.Pool (rank 0 only
//           coordinates, so start one rank more than you have cores).
#include <mpx/mpx.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "cli.hpp"
#include "pi_kernel.hpp"

namespace {

using Clock = std::chrono::steady_clock;

/// What one slice of the sum produced, and where.
struct Partial {
  double value = 0;
  double seconds = 0;
  std::int32_t rank = 0;
  std::int32_t part = 0;
};

/// The seed's calc_partial_pi, as a Pool task: the slice `part` of `nparts`.
Partial calc_partial_pi(int part, int nparts, long long nsteps, double dx) {
  const auto t0 = Clock::now();
  Partial p;
  p.value = pi_app::calc_partial_pi(part, nparts, nsteps, dx);
  p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  p.rank = mpx::this_process().rank();
  p.part = part;
  return p;
}
MPX_REGISTER(calc_partial_pi);

/// Shortest decimal that reads back as the same double, as Python prints floats.
std::string repr(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos && s.find("inf") == std::string::npos) s += ".0";
  return s;
}

struct Run {
  std::string mode;
  double pi = 0;
  double seconds = 0;
  std::vector<Partial> partials;  // rank 0 only
  int workers = 0;
};

/// serial: rank 0 does everything.
Run run_serial(long long nsteps) {
  const auto& world = mpx::Communicator::world();
  Run run;
  run.mode = "serial";
  world.barrier();
  if (world.rank() == 0) {
    const auto t0 = Clock::now();
    const double dx = 1.0 / static_cast<double>(nsteps);
    run.pi = pi_app::calc_partial_pi(0, 1, nsteps, dx);
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    run.partials.push_back({run.pi, run.seconds, 0, 0});
  }
  run.workers = 1;
  world.barrier();
  return run;
}

/// reduce: every rank its strided share, partial sums gathered (to print them) and added.
Run run_reduce(long long nsteps) {
  const auto& world = mpx::Communicator::world();
  Run run;
  run.mode = "reduce";
  world.barrier();
  const auto t0 = Clock::now();
  const double dx = 1.0 / static_cast<double>(nsteps);
  Partial mine;
  mine.value = pi_app::calc_partial_pi(world.rank(), world.size(), nsteps, dx);
  mine.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  mine.rank = world.rank();
  mine.part = world.rank();
  // The reduction itself (what an MPI program would write); the gather only shows the parts.
  const double total = world.reduce(mine.value, std::plus<>{}, 0);
  run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  run.partials = world.gather(mine, 0);
  run.pi = total;
  run.workers = world.size();
  return run;
}

/// pool: the seed's pi_parallel: starmap over (part, nparts, nsteps, dx), then sum.
Run run_pool(long long nsteps, int tasks) {
  Run run;
  run.mode = "pool";
  if (auto pool = mpx::Pool::serve()) {
    const auto t0 = Clock::now();
    const int nparts = tasks > 0 ? tasks : pool.processes();
    const double dx = 1.0 / static_cast<double>(nsteps);
    std::vector<std::tuple<int, int, long long, double>> inputs;
    for (int part = 0; part < nparts; ++part) inputs.emplace_back(part, nparts, nsteps, dx);
    run.partials = pool.starmap(calc_partial_pi, inputs, {.chunksize = 1});
    pi_app::Compensated sum;
    for (const auto& p : run.partials) sum.add(p.value);
    run.pi = sum.value();
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    run.workers = pool.processes();
  }
  return run;
}

Run run_mode(const std::string& mode, long long nsteps, int tasks) {
  if (mode == "serial") return run_serial(nsteps);
  if (mode == "pool") return run_pool(nsteps, tasks);
  return run_reduce(nsteps);
}

std::string partial_label(const Run& run, const Partial& p) {
  if (run.mode == "pool")
    return "task " + std::to_string(p.part) + " on rank " + std::to_string(p.rank);
  return "rank " + std::to_string(p.rank);
}

void print_text(const Run& run, long long nsteps, int ranks, const std::string& time_label) {
  std::printf("pi: %s\n", repr(run.pi).c_str());
  std::printf("error: %.3g (vs M_PI = %s)\n", std::fabs(run.pi - M_PI), repr(M_PI).c_str());
  std::printf("time %s: %.6f seconds (%s, %lld steps, %d rank%s)\n", time_label.c_str(),
              run.seconds, run.mode.c_str(), nsteps, ranks, ranks == 1 ? "" : "s");
  std::printf("partial values:\n");
  for (const auto& p : run.partials)
    std::printf("  %s: %s (%.6f s)\n", partial_label(run, p).c_str(), repr(p.value).c_str(),
                p.seconds);
}

std::string json_run(const Run& run) {
  std::string s = "{\"mode\": \"" + run.mode + "\", \"pi\": " + repr(run.pi) +
                  ", \"error\": " + repr(std::fabs(run.pi - M_PI)) +
                  ", \"time\": " + repr(run.seconds) +
                  ", \"workers\": " + std::to_string(run.workers) + ", \"partials\": [";
  for (std::size_t i = 0; i < run.partials.size(); ++i) {
    const auto& p = run.partials[i];
    s += std::string(i ? ", " : "") + "{\"rank\": " + std::to_string(p.rank) +
         ", \"part\": " + std::to_string(p.part) + ", \"value\": " + repr(p.value) +
         ", \"time\": " + repr(p.seconds) + "}";
  }
  return s + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "pi",
                     "[--steps N] [--mode serial|reduce|pool] [--tasks N] [--compare] [--json]");
  const long long nsteps = cli.integer("--steps", 10000000);
  const std::string mode = cli.text("--mode", "reduce");
  const int tasks = static_cast<int>(cli.integer("--tasks", 0));
  const bool compare = cli.flag("--compare");
  const bool json = cli.flag("--json");
  cli.done();
  const auto& world = mpx::Communicator::world();
  if (mode != "serial" && mode != "reduce" && mode != "pool") {
    if (world.rank() == 0)
      std::fprintf(stderr, "pi: --mode must be serial, reduce or pool (got '%s')\n", mode.c_str());
    return 2;
  }
  if (nsteps <= 0 || nsteps > 4'000'000'000'000'000LL) {
    if (world.rank() == 0) std::fprintf(stderr, "pi: --steps must be between 1 and 4e15\n");
    return 2;
  }
  const bool root = world.rank() == 0;

  if (!compare) {
    const Run run = run_mode(mode, nsteps, tasks);
    if (!root) return 0;
    if (json) {
      std::printf("{\"steps\": %lld, \"ranks\": %d, \"run\": %s}\n", nsteps, world.size(),
                  json_run(run).c_str());
    } else {
      print_text(run, nsteps, world.size(), mode == "serial" ? "serial" : "parallel");
    }
    return 0;
  }

  // --compare: the seed's experiment: serial, then parallel, then the speedup.
  const Run serial = run_serial(nsteps);
  const Run parallel = run_mode(mode == "serial" ? "reduce" : mode, nsteps, tasks);
  if (!root) return 0;
  const double speedup = parallel.seconds > 0 ? serial.seconds / parallel.seconds : 0;
  const int cores = parallel.workers;
  if (json) {
    std::printf(
        "{\"steps\": %lld, \"ranks\": %d, \"serial\": %s, \"parallel\": %s, \"speedup\": %s, "
        "\"efficiency\": %s}\n",
        nsteps, world.size(), json_run(serial).c_str(), json_run(parallel).c_str(),
        repr(speedup).c_str(), repr(cores > 0 ? speedup / cores : 0).c_str());
    return 0;
  }
  std::printf("pi: %s\n", repr(serial.pi).c_str());
  std::printf("time serial: %.6f seconds\n", serial.seconds);
  std::printf("number of %s: %d\n", parallel.mode == "pool" ? "pool workers" : "ranks", cores);
  std::printf("pi: %s\n", repr(parallel.pi).c_str());
  std::printf("time parallel: %.6f seconds\n", parallel.seconds);
  std::printf("speedup: %.2fx (%s over %d, efficiency %.0f%%)\n", speedup, parallel.mode.c_str(),
              cores, cores > 0 ? 100.0 * speedup / cores : 0.0);
  std::printf("error serial: %.3g, error parallel: %.3g\n", std::fabs(serial.pi - M_PI),
              std::fabs(parallel.pi - M_PI));
  std::printf("partial values:\n");
  for (const auto& p : parallel.partials)
    std::printf("  %s: %s (%.6f s)\n", partial_label(parallel, p).c_str(), repr(p.value).c_str(),
                p.seconds);
  return 0;
}
