// queue_sentinel: seed 000's fix of the empty() race: the producer puts 'DONE' after its
// last item and the consumer reads until it sees it. It works, but the sentinel is a value
// every consumer must know, and with several consumers the producer must put one per
// consumer. queue_close shows mpx's way: close().
//
//   mpiexec -n 2 build/bin/queue_sentinel [--delay-ms 100]
#include <random>

#include "cli.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "queue_sentinel",
                     "[--delay-ms D] (D ms stands for the seed's 1 s)");
  const auto unit = std::chrono::milliseconds(cli.integer("--delay-ms", 100));
  cli.done();
  if (!seed::two_ranks("queue_sentinel")) return 2;
  const auto& world = mpx::Communicator::world();

  mpx::Queue<std::string> queue;  // items and the sentinel share one type, as in Python
  if (world.rank() == 0) {
    std::mt19937 random(std::random_device{}());
    for (int i = 0; i < 10; ++i) {
      const int item = std::uniform_int_distribution<int>(0, 256)(random);
      queue.put(std::to_string(item));
      seed::say("Process Producer : item " + std::to_string(item) +
                " appended to queue producer-1");
      seed::sleep_units(1, unit);
      seed::say("The size of queue is " + std::to_string(queue.qsize()));
    }
    queue.put("DONE");
  }
  if (world.rank() == 1) {
    while (true) {
      seed::sleep_units(2, unit);
      const std::string item = queue.get();
      if (item == "DONE") break;
      seed::say("Process Consumer : item " + item + " popped from by consumer-2");
    }
    seed::say("the consumer read 'DONE': every item was consumed");
  }
  world.barrier();
  return 0;
}
