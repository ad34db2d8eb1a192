#include "CFuzzDriver.h"

#include <stddef.h>
#include <stdint.h>

// From libclang_rt.fuzzer (linked by -sanitize=fuzzer).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
// Defined by each fuzz target with @_cdecl.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int repave_fuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
