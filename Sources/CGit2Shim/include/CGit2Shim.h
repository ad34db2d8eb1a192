#ifndef CGIT2SHIM_H
#define CGIT2SHIM_H

// Non-variadic wrappers for git_libgit2_opts, which Swift cannot call.

#include <git2.h>

// GIT_OPT_SET_OWNER_VALIDATION: whether libgit2 refuses repositories owned by another user
// (safe.directory). Returns libgit2's error code.
int cgit2_set_owner_validation(int enabled);
int cgit2_get_owner_validation(int *enabled);

#endif
