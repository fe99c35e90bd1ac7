// Seed 002, "How to use a process in a subclass": a class derived from Process overrides
// run(); its default name is "<class>-N".
//
//   Python (seed 002)                               mpx
//   class MyProcess(multiprocessing.Process):       class MyProcess : public mpx::Process {
//     def run(self): ...                              void run() override { ... }
//                                                   };  MPX_REGISTER_PROCESS(MyProcess);
//
// The slot rebuilds a MyProcess (default constructor, plus the members of a serialize()
// function if the class has one) and calls run() there. Run: mpiexec -n 2 subclass.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <vector>

class MyProcess : public mpx::Process {
 public:
  void run() override {
    std::printf("called run method in process: %s\n", name().c_str());
    std::fflush(stdout);
  }
};
MPX_REGISTER_PROCESS(MyProcess);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::vector<MyProcess> jobs;
    for (int i = 0; i < 5; ++i) {
      auto& p = jobs.emplace_back();
      p.start();
      p.join();
    }
  }
}
