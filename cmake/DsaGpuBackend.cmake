# Resolves DSA_GPU_BACKEND (OFF | CUDA | HIP | AUTO) into DSA_GPU_BACKEND_RESOLVED (empty, CUDA
# or HIP) and enables the language. AUTO probes with check_language and falls back to a CPU-only
# build; an explicit CUDA or HIP that cannot be enabled is an error.
include(CheckLanguage)

# Debian's ROCm (5.2, clang++-15 as the HIP compiler) installs its CMake packages under
# lib/<multiarch>/cmake, while CMake looks for <rocm root>/lib/cmake/hip-lang, and its clang finds
# the device libraries by itself. This gives CMake a ROCm root in the build folder that points at
# the real package, and clang the device-library flags hipcc would pass. (Not hipcc's
# --hip-version: it makes clang pre-include its HIP wrapper, which then fails CMake's compiler
# checks; every .cu includes hip_runtime.h through dsa/gpu/port.hpp anyway.) A regular
# /opt/rocm install needs none of it and is left alone.
function(_dsa_debian_rocm_shim)
  set(_root ${CMAKE_BINARY_DIR}/rocm-root)
  if(EXISTS /usr/lib/cmake/hip-lang/hip-lang-config.cmake OR
     (DEFINED CMAKE_HIP_COMPILER_ROCM_ROOT AND NOT CMAKE_HIP_COMPILER_ROCM_ROOT STREQUAL _root))
    return()
  endif()
  file(GLOB _lang_cfg /usr/lib/*/cmake/hip-lang/hip-lang-config.cmake)
  if(NOT _lang_cfg)
    return()
  endif()
  list(GET _lang_cfg 0 _lang_cfg)
  get_filename_component(_lang_dir ${_lang_cfg} DIRECTORY)   # .../lib/<multiarch>/cmake/hip-lang
  get_filename_component(_cmake_dir ${_lang_dir} DIRECTORY)   # .../lib/<multiarch>/cmake
  get_filename_component(_libarch_dir ${_cmake_dir} DIRECTORY)
  file(MAKE_DIRECTORY ${_root}/lib/cmake)
  if(NOT EXISTS ${_root}/lib/cmake/hip-lang)
    file(CREATE_LINK ${_lang_dir} ${_root}/lib/cmake/hip-lang SYMBOLIC)
  endif()
  set(CMAKE_HIP_COMPILER_ROCM_ROOT ${_root} CACHE PATH "ROCm root for CMake (Debian shim)")
  # hip-lang's dependencies, found also inside CMake's compiler-check projects (ENV reaches them).
  set(ENV{amd_comgr_ROOT} ${_cmake_dir}/amd_comgr)
  set(_flags "--rocm-path=/usr")
  if(EXISTS ${_libarch_dir}/amdgcn/bitcode)
    string(APPEND _flags " --rocm-device-lib-path=${_libarch_dir}/amdgcn/bitcode")
  endif()
  if(NOT DEFINED CACHE{CMAKE_HIP_FLAGS})
    set(CMAKE_HIP_FLAGS "${_flags}" CACHE STRING "Flags for the HIP compiler")
  endif()
  message(STATUS "dsa-oracle: Debian ROCm layout; HIP flags ${CMAKE_HIP_FLAGS}")
endfunction()

set(DSA_GPU_BACKEND_RESOLVED "")
string(TOUPPER "${DSA_GPU_BACKEND}" _dsa_backend)
if(_dsa_backend STREQUAL "AUTO")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(_dsa_backend CUDA)
  else()
    _dsa_debian_rocm_shim()
    check_language(HIP)
    if(CMAKE_HIP_COMPILER)
      set(_dsa_backend HIP)
    else()
      set(_dsa_backend OFF)
    endif()
  endif()
endif()
if(_dsa_backend STREQUAL "CUDA")
  # "90a-real" makes CMake pass -gencode=arch=compute_90a,code=[sm_90a]: the sm_90a machine code
  # (wgmma, setmaxnreg) and no PTX; plain "90a" adds compute_90a PTX as well.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${DSA_CUDA_ARCHITECTURES})
  endif()
  enable_language(CUDA)
  # CMake 3.25 predates nvcc's C++20 support (CUDA ≥ 12) and knows no flag for it.
  if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  set(DSA_GPU_BACKEND_RESOLVED CUDA)
elseif(_dsa_backend STREQUAL "HIP")
  if(NOT DEFINED CMAKE_HIP_ARCHITECTURES)
    set(CMAKE_HIP_ARCHITECTURES ${DSA_HIP_ARCHITECTURES})
  endif()
  _dsa_debian_rocm_shim()
  enable_language(HIP)
  set(CMAKE_HIP_STANDARD 20)
  set(CMAKE_HIP_STANDARD_REQUIRED ON)
  set(DSA_GPU_BACKEND_RESOLVED HIP)
elseif(NOT _dsa_backend STREQUAL "OFF")
  message(FATAL_ERROR "DSA_GPU_BACKEND must be OFF, CUDA, HIP or AUTO (got '${DSA_GPU_BACKEND}')")
endif()
