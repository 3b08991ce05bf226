#define _GNU_SOURCE
#include <malloc.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "uapi.h"

int sockctl_setns(int fd, int nstype) { return setns(fd, nstype); }
pid_t sockctl_gettid(void) { return (pid_t)syscall(SYS_gettid); }

void sockctl_keep_freed_memory(void) {
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
}
