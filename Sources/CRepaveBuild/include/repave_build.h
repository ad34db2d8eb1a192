#ifndef REPAVE_BUILD_H
#define REPAVE_BUILD_H

/// The version stamped in at build time (REPAVE_BUILD_VERSION in the environment of `swift build`,
/// set by scripts/package from scripts/version), or "" for a plain `swift build`.
const char *repave_build_version(void);

#endif
