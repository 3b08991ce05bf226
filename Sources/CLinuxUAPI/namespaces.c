#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include "namespaces.h"

int sockctl_ns_get_nstype(int fd) { return ioctl(fd, NS_GET_NSTYPE); }

ssize_t sockctl_getdents64(int fd, void *buf, size_t len) {
    return (ssize_t)syscall(SYS_getdents64, fd, buf, len);
}
