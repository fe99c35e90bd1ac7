// Uses the installed mpx: environment, messaging to itself, a collective, a pipe.
#include <mpx/mpx.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const auto& world = mpx::Communicator::world();
  auto [a, b] = mpx::Pipe(0, world.size() - 1);
  if (world.rank() == 0) a.send(std::string("installed"));
  std::string word = world.rank() == world.size() - 1 ? b.recv<std::string>() : "";
  word = world.bcast(word, world.size() - 1);
  const int sum = world.allreduce(1, std::plus<>{});
  mpx::print0("consumer: " + word + " mpx works on " + std::to_string(sum) + " rank(s)");
}
