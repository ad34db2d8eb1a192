// The system libgit2 (Debian: libgit2-dev, 1.5.x).
#include <git2.h>
