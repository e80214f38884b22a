/* engine/scan/evidence.c -- the one way evidence is opened: read-only, not
 * a controlling terminal, close-on-exec, and without touching its access
 * time where the kernel lets us. */
#include "scan.h"

#include <errno.h>
#include <fcntl.h>

int imt__open_evidence(int dirfd, const char *name, int flags)
{
    flags |= O_RDONLY | O_CLOEXEC | O_NOCTTY;
#ifdef O_NOATIME
    /* Refused (EPERM) on files we do not own unless privileged: then open
     * without it (the atime may change; the bytes never do). */
    int fd = openat(dirfd, name, flags | O_NOATIME);
    if (fd >= 0 || errno != EPERM) return fd;
#endif
    return openat(dirfd, name, flags);
}
