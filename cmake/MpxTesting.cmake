# Test helpers of mpx.
#
#   mpx_add_mpi_test(test_pipe SOURCES test_pipe.cpp RANKS 1 2 4 TIMEOUT 60)
#     builds one GoogleTest binary (with the shared MPI main) and registers it once per rank
#     count: test_pipe.np1, test_pipe.np2, test_pipe.np4, each run under mpiexec with a real
#     TIMEOUT and PROCESSORS property.
#
#   mpx_add_app_test(hello.np4 RANKS 4 COMMAND hello --ordered
#                    EXPECT "hello from rank 3 of 4" REJECT "error")
#     runs an app under mpiexec (RANKS 0: alone, no mpiexec) and checks its exit code (0 unless
#     EXIT_CODE says otherwise), that its standard output matches every EXPECT regex, its
#     standard error every EXPECT_STDERR regex, and neither matches a REJECT.

include_guard(GLOBAL)

# Flags every test's mpiexec gets. --oversubscribe: the machines have 2 cores and tests run
# 4 ranks. pml ob1 halves start-up time (the default probes transports that are not there).
# odls_base_sigkill_timeout 0: a failed job is torn down in milliseconds, not a second.
set(MPX_MPIEXEC_FLAGS --oversubscribe --mca pml ob1 --mca odls_base_sigkill_timeout 0
    -x GTEST_COLOR=no CACHE STRING "Flags the test suite passes to mpiexec")

set(MPX_TEST_ENVIRONMENT "")
if(MPX_TESTS_AS_ROOT)
  # Only when asked for (CI containers run as root): Open MPI refuses root otherwise.
  list(APPEND MPX_TEST_ENVIRONMENT OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
endif()

find_package(GTest REQUIRED)

if(NOT TARGET mpx_test_main)
  add_library(mpx_test_main STATIC ${PROJECT_SOURCE_DIR}/tests/support/mpi_main.cpp)
  target_link_libraries(mpx_test_main PUBLIC mpx::mpx GTest::gtest)
  target_include_directories(mpx_test_main PUBLIC ${PROJECT_SOURCE_DIR}/tests/support)
  mpx_set_warnings(mpx_test_main)
endif()

function(mpx_add_mpi_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;RANKS;LABELS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(NOT T_RANKS)
    set(T_RANKS 1 2 4)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE mpx_test_main)
  mpx_set_warnings(${name})
  mpx_add_mpi_runs(${name} ${name} RANKS ${T_RANKS} TIMEOUT ${T_TIMEOUT} LABELS ${T_LABELS}
                   ARGS ${T_ARGS})
endfunction()

#   mpx_add_mpi_runs(<prefix> <target> RANKS 2 4 TIMEOUT 90 [MPIEXEC_ARGS ...] [ARGS ...])
#     registers <prefix>.np<N> for each rank count: the test binary <target> under mpiexec,
#     with the same flags and properties as mpx_add_mpi_test. Use it for a second run of an
#     existing binary, e.g. with `MPIEXEC_ARGS -x MPX_NO_SHARED_MEMORY=1`.
function(mpx_add_mpi_runs prefix target)
  cmake_parse_arguments(T "" "TIMEOUT" "RANKS;LABELS;ARGS;MPIEXEC_ARGS" ${ARGN})
  math(EXPR ctest_timeout "${T_TIMEOUT} + 15")
  foreach(n IN LISTS T_RANKS)
    add_test(NAME ${prefix}.np${n}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${MPX_MPIEXEC_FLAGS}
                     ${T_MPIEXEC_ARGS} --timeout ${T_TIMEOUT} $<TARGET_FILE:${target}> ${T_ARGS})
    set_tests_properties(${prefix}.np${n} PROPERTIES
      TIMEOUT ${ctest_timeout}
      PROCESSORS ${n}
      LABELS "mpi;np${n};${T_LABELS}"
      ENVIRONMENT "${MPX_TEST_ENVIRONMENT}")
  endforeach()
endfunction()

set(MPX_CHECK_OUTPUT_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/MpxCheckOutput.cmake)

function(mpx_add_app_test name)
  cmake_parse_arguments(T "" "RANKS;TIMEOUT;EXIT_CODE" "COMMAND;EXPECT;EXPECT_STDERR;REJECT;LABELS;MPIEXEC_ARGS" ${ARGN})
  if(NOT DEFINED T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(NOT DEFINED T_EXIT_CODE)
    set(T_EXIT_CODE 0)
  endif()
  list(POP_FRONT T_COMMAND target)
  if(T_RANKS EQUAL 0)
    set(cmd $<TARGET_FILE:${target}> ${T_COMMAND})
    set(procs 1)
  else()
    set(cmd ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_RANKS} ${MPX_MPIEXEC_FLAGS}
            ${T_MPIEXEC_ARGS} $<TARGET_FILE:${target}> ${T_COMMAND})
    set(procs ${T_RANKS})
  endif()
  set(script ${CMAKE_CURRENT_BINARY_DIR}/app_tests/${name}.cmake)
  file(GENERATE OUTPUT ${script} CONTENT
"set(cmd [==[${cmd}]==])
set(expect [==[${T_EXPECT}]==])
set(expect_stderr [==[${T_EXPECT_STDERR}]==])
set(reject [==[${T_REJECT}]==])
set(exit_code ${T_EXIT_CODE})
set(timeout ${T_TIMEOUT})
include([==[${MPX_CHECK_OUTPUT_SCRIPT}]==])
")
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -P ${script})
  math(EXPR ctest_timeout "${T_TIMEOUT} + 15")
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${ctest_timeout}
    PROCESSORS ${procs}
    LABELS "app;${T_LABELS}"
    ENVIRONMENT "${MPX_TEST_ENVIRONMENT}")
endfunction()
