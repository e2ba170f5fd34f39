# Configures only what scap-open needs from a falcosecurity/libs tree: the driver's
# generated config header (driver_config.h carries the driver and device names libscap
# opens), libscap with system dependencies and its examples (01-open is scap-open). The tree's top level
# would also configure libsinsp and its many dependencies, which a load test never runs.
cmake_minimum_required(VERSION 3.12)
project(reconciler-guest-userspace C CXX)
set(LIBS_DIR "${LIBS_SOURCE}")
list(APPEND CMAKE_MODULE_PATH "${LIBS_DIR}/cmake/modules")
set(USE_BUNDLED_DEPS OFF CACHE BOOL "" FORCE)
# static archives only: the initramfs has no shared libraries
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
set(BUILD_LIBSCAP_EXAMPLES ON CACHE BOOL "" FORCE)
set(USE_SHARED_LIBELF OFF CACHE BOOL "" FORCE)
set(MINIMAL_BUILD ON CACHE BOOL "" FORCE)
set(CREATE_TEST_TARGETS OFF CACHE BOOL "" FORCE)
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
set(ENABLE_DKMS OFF CACHE BOOL "" FORCE)
# the probe is built by the driver build; its folder would write into the (read-only) tree
set(BUILD_BPF OFF CACHE BOOL "" FORCE)
include(versions)
if(NOT DEFINED FALCOSECURITY_LIBS_VERSION)
  get_libs_version(FALCOSECURITY_LIBS_VERSION)
endif()
if(NOT DEFINED DRIVER_VERSION)
  get_drivers_version(DRIVER_VERSION)
endif()
add_subdirectory("${LIBS_DIR}/driver" "${PROJECT_BINARY_DIR}/driver")
set(LIBS_PACKAGE_NAME "falcosecurity")
include(CompilerFlags)
include(libscap)
add_executable(event-number event-number.c)
target_include_directories(event-number PRIVATE "${LIBS_DIR}/driver")
target_sources(scap-open PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/line-buffered.c")
