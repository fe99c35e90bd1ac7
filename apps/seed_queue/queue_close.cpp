// queue_close: the seeds' producer/consumer written the mpx way. The producer calls
// close() after its last item; the consumer iterates until the queue is closed *and*
// drained. No sentinel value, any number of consumers, and no empty() race: a consumer that
// finds the queue empty for a moment simply waits for the next item (or the close).
//
//   mpiexec -n 2 build/bin/queue_close [--delay-ms 100]
//   mpiexec -n 4 build/bin/queue_close          # ranks 1..3 all consume
#include <random>

#include "cli.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "queue_close", "[--delay-ms D] (D ms stands for the seed's 1 s)");
  const auto unit = std::chrono::milliseconds(cli.integer("--delay-ms", 100));
  cli.done();
  if (!seed::two_ranks("queue_close")) return 2;
  const auto& world = mpx::Communicator::world();

  mpx::Queue<int> queue;
  int consumed = 0;
  if (world.rank() == 0) {
    std::mt19937 random(std::random_device{}());
    for (int i = 0; i < 10; ++i) {
      const int item = std::uniform_int_distribution<int>(0, 256)(random);
      queue.put(item);
      seed::say("Process Producer : item " + std::to_string(item) +
                " appended to queue producer-1");
      seed::sleep_units(1, unit);
      seed::say("The size of queue is " + std::to_string(queue.qsize()));
    }
    queue.close();  // the end of the stream: consumers drain what is left, then stop
  } else {
    const std::string name = "consumer-" + std::to_string(world.rank() + 1);
    for (int item : queue) {  // ends when the queue is closed and drained
      seed::say("Process Consumer : item " + std::to_string(item) + " popped from by " + name);
      ++consumed;
      seed::sleep_units(2, unit);
    }
  }
  const int total = world.reduce(consumed, std::plus<>{}, 0);
  if (world.rank() == 0)
    seed::say("the queue is closed and drained: " + std::to_string(total) +
              " of 10 items consumed");
  return 0;
}
