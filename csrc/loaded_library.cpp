#include "loaded_library.h"

#include <cstdlib>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define DT_HAVE_DLOPEN 1
#endif

namespace dt {

void* symbol_from_loaded_library(const std::string& library_path, const char* name) {
#ifdef DT_HAVE_DLOPEN
  // RTLD_NOLOAD: only a library that is already in the process, never a second copy.
  void* handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* fn = dlsym(handle, name);
  // dlsym also searches the library's dependencies: keep the symbol only if the file that
  // defines it is the one named.
  Dl_info info{};
  bool ok = fn != nullptr && dladdr(fn, &info) != 0 && info.dli_fname != nullptr;
  if (ok) {
    char* found = realpath(info.dli_fname, nullptr);
    char* wanted = realpath(library_path.c_str(), nullptr);
    ok = found != nullptr && wanted != nullptr && std::strcmp(found, wanted) == 0;
    std::free(found);
    std::free(wanted);
  }
  if (!ok) {
    dlclose(handle);
    return nullptr;
  }
  return fn;  // the handle stays open
#else
  (void)library_path;
  (void)name;
  return nullptr;
#endif
}

}  // namespace dt
