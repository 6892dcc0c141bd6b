#pragma once

// Umbrella header of the torch_mlsgd C++ API.

#include <torch_mlsgd/laplacian_smooth.h>
#include <torch_mlsgd/lsadamw.h>
#include <torch_mlsgd/lsgd.h>
#include <torch_mlsgd/lsgd_step.h>
#include <torch_mlsgd/mlsgd.h>
#include <torch_mlsgd/sharded.h>
#include <torch_mlsgd/version.h>
