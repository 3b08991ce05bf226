#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/nsfs.h>
#include <linux/capability.h>
#include "namespaces.h"

int sockctl_ns_get_nstype(int fd) { return ioctl(fd, NS_GET_NSTYPE); }

int sockctl_ns_get_userns(int fd) { return ioctl(fd, NS_GET_USERNS); }

int sockctl_has_effective_capability(int cap) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (cap < 0 || cap >= 32 * _LINUX_CAPABILITY_U32S_3) { errno = EINVAL; return -1; }
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    return (data[cap / 32].effective >> (cap % 32)) & 1;
}

ssize_t sockctl_getdents64(int fd, void *buf, size_t len) {
    return (ssize_t)syscall(SYS_getdents64, fd, buf, len);
}

long sockctl_fstatfs_type(int fd) {
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -1;
    return (long)fs.f_type;
}

void sockctl_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }
