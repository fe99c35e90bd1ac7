// hello: every rank says who it is: the "hello world" of MPI (seed 002, mpi4py).
//   mpiexec -n 4 build/bin/hello            # lines in whatever order they arrive
//   mpiexec -n 4 build/bin/hello --ordered  # lines in rank order
//   mpiexec -n 4 build/bin/hello --json     # one JSON object per rank
#include <mpx/mpx.hpp>

#include <cstdio>
#include <string>

#include "cli.hpp"

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "hello", "[--ordered] [--json]");
  const bool ordered = cli.flag("--ordered");
  const bool json = cli.flag("--json");
  cli.done();

  const auto& me = mpx::this_process();
  std::string line;
  if (json) {
    line = "{\"rank\": " + std::to_string(me.rank()) + ", \"size\": " + std::to_string(me.size()) +
           ", \"host\": \"" + me.host() + "\", \"pid\": " + std::to_string(me.pid()) +
           ", \"name\": \"" + me.name() + "\", \"cpu_count\": " + std::to_string(mpx::cpu_count()) +
           ", \"thread_multiple\": " + (env.threads_supported() ? "true" : "false") + "}";
  } else {
    line = "hello from rank " + std::to_string(me.rank()) + " of " + std::to_string(me.size()) +
           " on " + me.host() + " (pid " + std::to_string(me.pid()) + ")";
  }
  if (ordered) {
    mpx::print_ordered(line);
  } else {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}
