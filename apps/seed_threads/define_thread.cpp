// Seed 003, "Definiendo un hilo", and seed 004's func1/func2: std::thread is Python's
// threading.Thread.
//
//   Python                                          C++
//   t = threading.Thread(target=my_func, args=(i,))  std::thread t(my_func, i);   // starts at once
//   t.start()                                       (no start(): constructing it starts it)
//   t.join()                                        t.join();
//
// In C++ the threads of one process really run in parallel on several cores: there is no GIL.
#include <cstdio>
#include <thread>

void my_func(int thread_number) {
  std::printf("my_func called by thread N\u00b0%d\n", thread_number);
}

void func1() { std::printf("thread 1\n"); }
void func2() { std::printf("thread 2\n"); }

int main() {
  for (int i = 0; i < 10; ++i) {
    std::thread t(my_func, i);
    t.join();
  }
  std::thread t1(func1);
  std::thread t2(func2);
  t1.join();
  t2.join();
}
