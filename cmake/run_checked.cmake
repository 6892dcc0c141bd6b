# run(<command> <args>...): runs a command from a CMake script (-P) and stops
# the script with the command and its exit status when it fails.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}")
  endif()
endfunction()
