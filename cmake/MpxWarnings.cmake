# mpx_set_warnings(<target>): the project's warning set on one target.
function(mpx_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wpedantic>)
  # GCC 12 reports -Wrestrict inside libstdc++'s std::string at -O3 where there is no
  # overlap (GCC bug 105329); it would make every optimised build fail with -Werror.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(MPX_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU,Clang>:-Werror>)
  endif()
endfunction()
