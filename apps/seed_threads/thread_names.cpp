// Seed 003, "Determinar qué hilo está en ejecución": three named threads start, sleep and
// exit; the order of their lines depends on the scheduler.
//
//   Python                                               C++
//   threading.Thread(name='function_A', target=...)      std::thread t1(function, "function_A");
//   threading.currentThread().getName()                  (a std::thread has no name: pass it in)
//   time.sleep(2)                                        std::this_thread::sleep_for(2s);
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "cli.hpp"

void function(std::string name, int ms) {
  std::printf("%s--> starting \n", name.c_str());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  std::printf("%s--> exiting \n", name.c_str());
  std::fflush(stdout);
}

int main(int argc, char** argv) {
  mpx::apps::Cli cli(argc, argv, "thread_names", "[--ms MS]");
  const int ms = static_cast<int>(cli.integer("--ms", 2000));
  cli.done();
  std::thread t1(function, "function_A", ms);
  std::thread t2(function, "function_B", ms);
  std::thread t3(function, "function_C", ms);
  t1.join();
  t2.join();
  t3.join();
}
