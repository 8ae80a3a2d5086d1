# Runs one demo smoke test (see CMakeLists.txt here):
#   cmake -DEXPECT_EXIT=<status> -P run_smoke_test.cmake -- <regex>... --- <program> <arg>...
# Passes only if the program exits with <status> AND its output (stdout and stderr) matches every
# <regex>; fails on a sanitizer report whatever the exit status. Prints the output either way.
cmake_minimum_required(VERSION 3.25)  # policies NEW: quoted words in if() are not variables

set(expect "")
set(command "")
set(part "")
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  set(arg "${CMAKE_ARGV${i}}")
  if(part STREQUAL "" AND arg STREQUAL "--")
    set(part expect)
  elseif(part STREQUAL "expect" AND arg STREQUAL "---")
    set(part command)
  elseif(part STREQUAL "expect")
    list(APPEND expect "${arg}")
  elseif(part STREQUAL "command")
    list(APPEND command "${arg}")
  endif()
endforeach()
if(NOT command OR NOT DEFINED EXPECT_EXIT)
  message(FATAL_ERROR "usage: cmake -DEXPECT_EXIT=<status> -P run_smoke_test.cmake -- <regex>... "
                      "--- <program> <arg>...")
endif()

execute_process(COMMAND ${command} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 50)
message("${out}${err}")

set(problems "")
if(NOT status STREQUAL EXPECT_EXIT)
  list(APPEND problems "exit status '${status}', expected ${EXPECT_EXIT}")
endif()
foreach(regex IN LISTS expect)
  if(NOT "${out}${err}" MATCHES "${regex}")
    list(APPEND problems "no output matches '${regex}'")
  endif()
endforeach()
if("${out}${err}" MATCHES "(ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:)")
  list(APPEND problems "a sanitizer reported a problem")
endif()
if(problems)
  list(JOIN problems "; " text)
  message(FATAL_ERROR "smoke test failed: ${text}")
endif()
message("smoke test passed: exit status ${status}, output matched ${expect}")
