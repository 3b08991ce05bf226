#define _GNU_SOURCE
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "uapi.h"

int sockctl_setns(int fd, int nstype) { return setns(fd, nstype); }
pid_t sockctl_gettid(void) { return (pid_t)syscall(SYS_gettid); }
