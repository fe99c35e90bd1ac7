// launch_bare: the smallest MPI program (MPI_Init, MPI_Finalize), the baseline of
// bench_launch's start-up cost. Built with plain MPI, without mpx.
#include <mpi.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Finalize();
  return 0;
}
