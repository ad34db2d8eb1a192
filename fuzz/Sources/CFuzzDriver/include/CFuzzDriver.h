#ifndef REPAVE_FUZZ_DRIVER_H
#define REPAVE_FUZZ_DRIVER_H

/// Runs libFuzzer's driver on the target's LLVMFuzzerTestOneInput with the process arguments.
///
/// SwiftPM links every executable with `main` aliased to the module's own entry point, so
/// libFuzzer's `main` never runs: each target's main.swift calls this instead.
int repave_fuzz_main(int argc, char **argv);

#endif
