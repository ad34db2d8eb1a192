#include "repave_build.h"

// Package.swift defines REPAVE_BUILD_VERSION for this target only, so a new stamp recompiles this
// file and relinks; the Swift modules above it are untouched.
const char *repave_build_version(void) { return REPAVE_BUILD_VERSION; }
