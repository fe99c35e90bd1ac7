# Runs one cluster test: `cmd` (scripts/cluster.sh run ...) must exit with `exit_code` and
# print output matching every regex of `expect` and none of `reject`. When cluster.sh says
# the machine does not allow network namespaces (exit code 77, "SKIP: ..."), prints
# MPX_CLUSTER_SKIPPED with its reason, which ctest reports as a skipped test
# (SKIP_REGULAR_EXPRESSION). Run with cmake -P on a file that sets those variables.
if(NOT cmd OR NOT timeout)
  message(FATAL_ERROR "cluster_check.cmake: no command or timeout given")
endif()
execute_process(COMMAND ${cmd} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc
                TIMEOUT ${timeout})
string(JOIN " " shown ${cmd})
if("${rc}" STREQUAL "77" AND err MATCHES "SKIP: ([^\n]*)")
  message("MPX_CLUSTER_SKIPPED: ${CMAKE_MATCH_1}")
  return()
endif()
message("$ ${shown}\n${out}${err}")
set(problems "")
if(NOT "${rc}" STREQUAL "${exit_code}")
  string(APPEND problems "exit code was '${rc}', expected ${exit_code}\n")
endif()
foreach(re IN LISTS expect)
  if(NOT out MATCHES "${re}")
    string(APPEND problems "output does not match the expected pattern: ${re}\n")
  endif()
endforeach()
foreach(re IN LISTS reject)
  if(out MATCHES "${re}" OR err MATCHES "${re}")
    string(APPEND problems "output matches the rejected pattern: ${re}\n")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "${problems}")
endif()
