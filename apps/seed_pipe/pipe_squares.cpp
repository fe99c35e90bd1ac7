// Seed 002, "Using pipes to exchange objects": a two-stage pipeline. create_items sends
// 0..9 into pipe_1; multiply_items squares what comes out of pipe_1 into pipe_2 until
// pipe_1 ends (EOFError); the main process prints what comes out of pipe_2, then "End".
//
//   Python (seed 002)                              mpx
//   pipe_1 = multiprocessing.Pipe(True)            auto [p1_out, p1_in] = mpx::Pipe(A, B);
//   output_pipe.send(item)                         p1_out.send(item);
//   try: while True: input_pipe.recv()             try { for (;;) p1_in.recv<int>(); }
//   except EOFError: output_pipe.close()           catch (const mpx::EOFError&) { ...close(); }
//
// Roles: main on rank 0, create_items on rank 1, multiply_items on rank 2 (mpiexec -n 3).
// With fewer ranks the roles share ranks and run as threads, so the program also runs
// alone; the output is the same: 0 1 4 9 ... 81 End.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <thread>
#include <vector>

void create_items(mpx::Connection& output_pipe) {
  for (int item = 0; item < 10; ++item) output_pipe.send(item);
  output_pipe.close();
}

void multiply_items(mpx::Connection& input_pipe, mpx::Connection& output_pipe) {
  try {
    for (;;) {
      const int item = input_pipe.recv<int>();
      output_pipe.send(item * item);
    }
  } catch (const mpx::EOFError&) {
    output_pipe.close();
  }
}

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const auto& world = mpx::Communicator::world();
  const int n = world.size();
  const int main_rank = 0, create_rank = 1 % n, multiply_rank = 2 % n;

  auto [pipe_1_out, pipe_1_in] = mpx::Pipe(create_rank, multiply_rank);
  auto [pipe_2_out, pipe_2_in] = mpx::Pipe(multiply_rank, main_rank);

  std::vector<std::thread> roles;
  if (world.rank() == create_rank) roles.emplace_back(create_items, std::ref(pipe_1_out));
  if (world.rank() == multiply_rank)
    roles.emplace_back(multiply_items, std::ref(pipe_1_in), std::ref(pipe_2_out));
  if (world.rank() == main_rank) {
    try {
      for (;;) std::printf("%d\n", pipe_2_in.recv<int>());
    } catch (const mpx::EOFError&) {
      std::printf("End\n");
    }
    std::fflush(stdout);
  }
  for (auto& t : roles) t.join();
}
