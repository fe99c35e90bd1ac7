# Runs `cmd` and checks its exit code against `exit_code`, its standard output against the
# regexes in `expect` (all must match), its standard error against `expect_stderr` (all must
# match), and both against `reject` (none may match); optional `skip_code`/`skip_marker` say
# how a command reports that it cannot run here. Used by mpx_add_app_test and the cluster
# tests; run with cmake -P on a generated file that sets those variables.
execute_process(COMMAND ${cmd}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc
                TIMEOUT ${timeout})
string(JOIN " " shown ${cmd})
# A command may say it cannot run on this machine: exit code `skip_code` and "SKIP: reason" on
# standard error. Then print `skip_marker` and the reason (the test's SKIP_REGULAR_EXPRESSION).
if(DEFINED skip_code AND "${rc}" STREQUAL "${skip_code}" AND err MATCHES "SKIP: ([^\n]*)")
  message("${skip_marker}: ${CMAKE_MATCH_1}")
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
foreach(re IN LISTS expect_stderr)
  if(NOT err MATCHES "${re}")
    string(APPEND problems "standard error does not match the expected pattern: ${re}\n")
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
