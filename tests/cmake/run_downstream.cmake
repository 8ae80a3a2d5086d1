# Builds and runs one of the downstream projects beside this file, the way a user of devcache
# would: run by ctest as `cmake -P` (see tests/CMakeLists.txt), so each packaging test is one
# self-contained step that starts from scratch.
#
#   MODE=find_package      install devcache's build tree into <BINARY_DIR>/prefix, then
#                          find_package(devcache) it from there
#   MODE=add_subdirectory  add_subdirectory(<DEVCACHE_SOURCE_DIR>) from a fresh project
#
# Other inputs: SOURCE_DIR (the downstream project), BINARY_DIR (scratch, wiped first),
# DEVCACHE_SOURCE_DIR, DEVCACHE_BINARY_DIR, GENERATOR, MAKE_PROGRAM, CXX_COMPILER, BUILD_TYPE;
# optional: PROGRAM (the program the project builds and this runs; default <MODE>_test) and
# EXTRA_CONFIGURE_ARGS (more arguments for the project's configure step, separated by '|').
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE SOURCE_DIR BINARY_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_downstream.cmake: -D${var}=... is required")
  endif()
endforeach()

# Runs a command, echoing it first; any failure ends the test with the command's output.
function(run_step what)
  string(JOIN " " shown ${ARGN})
  message(STATUS "${what}: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${what} failed (${result}): ${shown}")
  endif()
endfunction()

set(project_dir "${BINARY_DIR}/project")
file(REMOVE_RECURSE "${BINARY_DIR}")

set(configure_args
  -S "${SOURCE_DIR}" -B "${project_dir}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()

if(MODE STREQUAL "find_package")
  set(prefix "${BINARY_DIR}/prefix")
  run_step("install" "${CMAKE_COMMAND}" --install "${DEVCACHE_BINARY_DIR}" --prefix "${prefix}")
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${prefix}")
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND configure_args "-DDEVCACHE_SOURCE_DIR=${DEVCACHE_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_downstream.cmake: unknown MODE '${MODE}'")
endif()

if(EXTRA_CONFIGURE_ARGS)
  string(REPLACE "|" ";" extra_args "${EXTRA_CONFIGURE_ARGS}")
  list(APPEND configure_args ${extra_args})
endif()
run_step("configure" "${CMAKE_COMMAND}" ${configure_args})

if(MODE STREQUAL "find_package")
  # The package must come from the fresh install, not from some devcache elsewhere on the system.
  file(STRINGS "${project_dir}/CMakeCache.txt" found_dir REGEX "^devcache_DIR:")
  string(REGEX REPLACE "^devcache_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  cmake_path(IS_PREFIX prefix "${found_dir}" NORMALIZE from_prefix)
  if(NOT from_prefix)
    message(FATAL_ERROR "find_package(devcache) used '${found_dir}', not the install in '${prefix}'")
  endif()
endif()

run_step("build" "${CMAKE_COMMAND}" --build "${project_dir}")
if(NOT PROGRAM)
  set(PROGRAM "${MODE}_test")
endif()
run_step("run" "${project_dir}/${PROGRAM}")
