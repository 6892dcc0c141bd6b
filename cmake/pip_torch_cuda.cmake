# A torch installed from PyPI carries the CUDA libraries it was built with in its
# wheel's nvidia/ packages, and libtorch_cuda finds them at run time through its
# own RUNPATH. The machine's CUDA toolkit (nvcc, headers) may be another minor
# release. Linking against the toolkit's libraries would load a second, older
# copy of the CUDA runtime beside torch's, and the linker, which does not follow
# that RUNPATH, would resolve libtorch_cuda's NCCL from the toolkit and fail.
#
# torch_mlsgd_use_pip_torch_cuda() therefore points CUDA::cudart and CUDA::cufft
# at the wheel's copies and tells the linker where the wheel's libraries are.
# It does nothing for a torch without CUDA or one that is not a pip wheel
# (Debian's libtorch, a LibTorch archive). Call it after find_package(Torch), in
# the directory scope of that call (the main build and torch_mlsgdConfig.cmake).
function(torch_mlsgd_use_pip_torch_cuda)
  if(NOT TARGET torch_cuda OR NOT DEFINED TORCH_INSTALL_PREFIX)
    return()
  endif()
  get_filename_component(nvidia_dir "${TORCH_INSTALL_PREFIX}/../nvidia" ABSOLUTE)
  if(NOT IS_DIRECTORY "${nvidia_dir}")
    return()
  endif()
  file(GLOB lib_dirs LIST_DIRECTORIES true "${nvidia_dir}/*/lib")
  foreach(name cudart cufft)
    # The versioned file (the wheels ship no unversioned libNAME.so link).
    file(GLOB candidates "${nvidia_dir}/*/lib/lib${name}.so.[0-9]*")
    list(FILTER candidates INCLUDE REGEX "lib${name}\\.so\\.[0-9]+$")
    if(TARGET CUDA::${name} AND candidates)
      list(GET candidates 0 library)
      set_property(TARGET CUDA::${name} PROPERTY IMPORTED_LOCATION "${library}")
      message(STATUS "torch_mlsgd: CUDA::${name} from the torch wheel: ${library}")
    endif()
  endforeach()
  foreach(dir ${lib_dirs})
    add_link_options("LINKER:-rpath-link,${dir}")
  endforeach()
endfunction()

# torch_mlsgd_torch_runtime_dirs(<var>): the folders an installed torch_mlsgd
# library needs on its RUNPATH to find torch's libraries: a pip wheel's (or a
# LibTorch archive's) lib/ and, for a CUDA wheel, its nvidia/*/lib. Empty for a
# torch in the system's library folders (Debian's).
function(torch_mlsgd_torch_runtime_dirs out)
  set(dirs)
  if(DEFINED TORCH_INSTALL_PREFIX AND EXISTS "${TORCH_INSTALL_PREFIX}/lib/libc10.so")
    list(APPEND dirs "${TORCH_INSTALL_PREFIX}/lib")
    if(TARGET torch_cuda)
      file(GLOB nvidia_dirs LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
      foreach(dir ${nvidia_dirs})
        get_filename_component(dir "${dir}" ABSOLUTE)
        list(APPEND dirs "${dir}")
      endforeach()
    endif()
  endif()
  set(${out} "${dirs}" PARENT_SCOPE)
endfunction()
