#define _GNU_SOURCE
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include "namespaces.h"

int sockctl_ns_get_nstype(int fd) { return ioctl(fd, NS_GET_NSTYPE); }

int sockctl_ns_get_userns(int fd) { return ioctl(fd, NS_GET_USERNS); }

ssize_t sockctl_getdents64(int fd, void *buf, size_t len) {
    return (ssize_t)syscall(SYS_getdents64, fd, buf, len);
}

long sockctl_fstatfs_type(int fd) {
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -1;
    return (long)fs.f_type;
}

void sockctl_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }
