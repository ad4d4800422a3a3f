// Borrowing a function from a shared library PyTorch has already loaded (its OpenMP runtime, its
// BLAS), so the extension links neither and never brings a second copy into the process.
#pragma once

#include <string>

namespace dt {

// The address of `name` as defined by the library at `library_path` itself (not by one of its
// dependencies), if that library is already loaded in the process; nullptr otherwise (and on
// platforms without dlopen). On success the library stays open for the life of the process, so
// the function outlives every call made through it.
void* symbol_from_loaded_library(const std::string& library_path, const char* name);

}  // namespace dt
