// Seed 000, "Pipe – exemplo": a producer sends 0..9 and then the sentinel 99 through a pipe;
// the consumer prints the square of every item until it sees 99.
//
//   Python (seed 000)                          mpx
//   pipe = multiprocessing.Pipe()              auto [out_end, in_end] = mpx::Pipe(0, 1);
//   output_pipe.send(item)                     out_end.send(item);
//   output_pipe.send(99); output_pipe.close()  out_end.send(99); out_end.close();
//   item = input_pipe.recv()                   int item = in_end.recv<int>();
//   print("1: ", str(item * item))             std::printf("1:  %d\n", item * item);
//
// The producer is rank 0 and the consumer rank 1 (run with mpiexec -n 2); alone, both run
// as threads of the one rank. (The seed's consumer calls input_pipe.close() inside its loop,
// which makes Python fail on the second recv; the C++ keeps the intended behaviour.)
#include <mpx/mpx.hpp>

#include <cstdio>
#include <thread>

void producer(mpx::Connection& output_pipe) {
  for (int item = 0; item < 10; ++item) output_pipe.send(item);
  output_pipe.send(99);
  output_pipe.close();
}

void consumer(mpx::Connection& input_pipe) {
  for (;;) {
    const int item = input_pipe.recv<int>();
    if (item == 99) break;
    std::printf("1:  %d\n", item * item);
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const auto& world = mpx::Communicator::world();
  const int producer_rank = 0;
  const int consumer_rank = world.size() > 1 ? 1 : 0;
  auto [output_pipe, input_pipe] = mpx::Pipe(producer_rank, consumer_rank);

  if (producer_rank == consumer_rank) {  // one rank: the producer is a thread
    std::thread p(producer, std::ref(output_pipe));
    consumer(input_pipe);
    p.join();
  } else if (world.rank() == producer_rank) {
    producer(output_pipe);
  } else if (world.rank() == consumer_rank) {
    consumer(input_pipe);
  }
}
