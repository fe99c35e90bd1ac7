# Installs the mpx build tree into a scratch prefix, builds tests/package/consumer against
# it with find_package(mpx), and runs the result. Variables: BUILD_DIR, SOURCE_DIR,
# WORK_DIR, GENERATOR.
file(REMOVE_RECURSE ${WORK_DIR})
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endmacro()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix --component Unspecified)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
message("${out}")
if(NOT out MATCHES "consumer: installed mpx works on 1 rank")
  message(FATAL_ERROR "unexpected output from the consumer: ${out}")
endif()
