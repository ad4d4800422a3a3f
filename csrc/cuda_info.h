// What the compiled core knows about CUDA, for build_info(). Safe to call without a GPU.
#pragma once

#include <string>

namespace dt {
bool cuda_compiled();
std::string cuda_architectures();  // e.g. "80-real,90", empty when CUDA was not compiled in
int cuda_device_count();           // 0 without a usable device or driver
int cuda_runtime_version();        // e.g. 13000, 0 when not compiled in
}  // namespace dt
