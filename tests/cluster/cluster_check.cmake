# Runs one cluster test: `cmd` (scripts/cluster.sh run ...) must exit with `exit_code` and
# print output matching every regex of `expect` and none of `reject`. When cluster.sh says
# the machine does not allow network namespaces (exit code 77, "SKIP: ..."), prints
# MPX_CLUSTER_SKIPPED with its reason, which ctest reports as a skipped test
# (SKIP_REGULAR_EXPRESSION). Run with cmake -P on a file that sets those variables.
if(NOT cmd OR NOT timeout)
  message(FATAL_ERROR "cluster_check.cmake: no command or timeout given")
endif()
set(skip_code 77)
set(skip_marker MPX_CLUSTER_SKIPPED)
include(${CMAKE_CURRENT_LIST_DIR}/../../cmake/MpxCheckOutput.cmake)
