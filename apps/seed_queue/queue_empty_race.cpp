// queue_empty_race: the first Queue example of seeds 000, 002 and 003, as it is written
// there: the consumer stops as soon as it sees `queue.empty()`. Seed 000 asks "what
// happens?": the consumer may look before the producer has put anything, or while the
// producer sleeps between two puts, and then quits with items still to come. This program
// shows it and counts what was left behind. queue_sentinel and queue_close fix it.
//
//   mpiexec -n 2 build/bin/queue_empty_race [--delay-ms 100]
#include <random>

#include "cli.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "queue_empty_race",
                     "[--delay-ms D] (D ms stands for the seed's 1 s)");
  const auto unit = std::chrono::milliseconds(cli.integer("--delay-ms", 100));
  cli.done();
  if (!seed::two_ranks("queue_empty_race")) return 2;
  const auto& world = mpx::Communicator::world();

  mpx::Queue<int> queue;  // multiprocessing.Queue(), hosted by rank 0
  int left = 0;
  if (world.rank() == 0) {  // class producer: run()
    std::mt19937 random(std::random_device{}());
    for (int i = 0; i < 10; ++i) {
      const int item = std::uniform_int_distribution<int>(0, 256)(random);
      queue.put(item);
      seed::say("Process Producer : item " + std::to_string(item) +
                " appended to queue producer-1");
      seed::sleep_units(1, unit);
      seed::say("The size of queue is " + std::to_string(queue.qsize()));
    }
  }
  if (world.rank() == 1) {  // class consumer: run()
    while (true) {
      if (queue.empty()) {  // seeds 000 and 002 look at once (003 sleeps 1 s first)
        seed::say("the queue is empty");
        break;
      }
      seed::sleep_units(2, unit);
      const int item = queue.get();
      seed::say("Process Consumer : item " + std::to_string(item) + " popped from by consumer-2");
    }
  }
  world.barrier();  // process_producer.join(); process_consumer.join()
  if (world.rank() == 0) {
    while (true) {
      try {
        (void)queue.get_nowait();
        ++left;
      } catch (const mpx::Empty&) {
        break;
      }
    }
    seed::say("(the consumer quit with " + std::to_string(left) +
              " item(s) still in the queue: empty() only says what the queue holds at that "
              "instant; see queue_sentinel and queue_close)");
  }
  return 0;
}
