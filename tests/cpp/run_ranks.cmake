# Runs BINARY as WORLD processes at once, ranks 0 .. WORLD - 1, sharing a
# c10d FileStore in WORK_DIR (CTest's multi-process C++ tests run this). Each
# rank's output goes to WORK_DIR/rank<r>.log, printed afterwards; the script
# fails when any rank fails.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
math(EXPR last "${WORLD} - 1")
set(commands)
foreach(rank RANGE ${last})
  # execute_process runs its COMMANDs at the same time (as a pipeline, whose
  # pipes the ranks do not use); each writes its own log.
  list(APPEND commands COMMAND ${CMAKE_COMMAND} -E env RANK=${rank} WORLD_SIZE=${WORLD}
       STORE_FILE=${WORK_DIR}/store sh -c "exec \"$0\" > \"$1\" 2>&1" ${BINARY} ${WORK_DIR}/rank${rank}.log)
endforeach()
execute_process(${commands} RESULTS_VARIABLE results TIMEOUT 300)
set(failed FALSE)
foreach(rank RANGE ${last})
  file(READ ${WORK_DIR}/rank${rank}.log log)
  list(GET results ${rank} result)
  message("---- rank ${rank} (exit ${result})\n${log}")
  if(NOT result EQUAL 0)
    set(failed TRUE)
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "a rank failed: ${results}")
endif()
