# mpx_set_warnings(<target>): the project's warning set on one target.
function(mpx_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wpedantic>)
  # GCC 12 at -O3 reports -Wrestrict and -Warray-bounds inside libstdc++'s std::string and
  # std::vector copies where there is no overlap and no overrun (GCC bugs 105329, 107852); they
  # would make every optimised build fail with -Werror. Debug builds keep both warnings.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-Wno-restrict -Wno-array-bounds>)
  endif()
  if(MPX_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Werror>)
  endif()
endfunction()
