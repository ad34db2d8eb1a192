#include "CGit2Shim.h"

int cgit2_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}

int cgit2_get_owner_validation(int *enabled) {
    return git_libgit2_opts(GIT_OPT_GET_OWNER_VALIDATION, enabled);
}
