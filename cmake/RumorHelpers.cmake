# Project-wide warning flags, applied to project targets only (dependencies are SYSTEM includes).
add_library(rumor_warnings INTERFACE)
# -Wno-restrict: g++ 12 false positive on `"x" + std::string` at -O2 (GCC bug 105329).
target_compile_options(rumor_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter
                       -Wno-restrict)
if(RUMOR_WERROR)
  target_compile_options(rumor_warnings INTERFACE -Werror)
endif()

# rumor_add_module(NAME SOURCES ... [DEPS ...] [SYSTEM_DEPS ...])
# Creates the static library rumor_<NAME> with alias rumor::<NAME>.
function(rumor_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(rumor_${name} STATIC ${ARG_SOURCES})
  add_library(rumor::${name} ALIAS rumor_${name})
  target_include_directories(rumor_${name} PUBLIC
    ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(rumor_${name} PUBLIC ${ARG_DEPS} PRIVATE rumor_warnings ${ARG_PRIVATE_DEPS})
endfunction()

# rumor_add_test(MODULE SOURCES ... [DEPS ...]): one doctest executable per module,
# each TEST_CASE registered with ctest and labelled with the module name (ctest -L MODULE).
function(rumor_add_test module)
  cmake_parse_arguments(ARG "" "RESOURCE_LOCK" "SOURCES;DEPS" ${ARGN})
  set(target test_${module})
  # ctest's test discovery splits a name at ';' into two names that run nothing and pass.
  foreach(src IN LISTS ARG_SOURCES)
    file(READ ${CMAKE_CURRENT_SOURCE_DIR}/${src} text)
    string(REGEX MATCH "TEST_CASE\\([ \n]*\"[^\"]*;[^\"]*\"" bad "${text}")
    if(bad)
      message(FATAL_ERROR "tests/${module}/${src}: ${bad}: a test name must not contain ';' "
                          "(ctest would split it and run neither half); use ',' instead")
    endif()
  endforeach()
  add_executable(${target} ${PROJECT_SOURCE_DIR}/tests/doctest_main.cpp ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE doctest::doctest rumor_warnings ${ARG_DEPS})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${target} PRIVATE
    RUMOR_SOURCE_DIR="${PROJECT_SOURCE_DIR}" RUMOR_BINARY_DIR="${PROJECT_BINARY_DIR}")
  # RESOURCE_LOCK: tests that must not overlap (e.g. launches on the default port range).
  # A test that prints RUMOR_TEST_SKIPPED (a doctest MESSAGE naming what is missing) is
  # reported by ctest as skipped, not passed.
  set(props LABELS ${module} SKIP_REGULAR_EXPRESSION "RUMOR_TEST_SKIPPED")
  if(ARG_RESOURCE_LOCK)
    list(APPEND props RESOURCE_LOCK ${ARG_RESOURCE_LOCK})
  endif()
  doctest_discover_tests(${target} ADD_LABELS 0 PROPERTIES ${props}
                         WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
