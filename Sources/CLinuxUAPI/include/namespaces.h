// Kernel glue for the Namespaces target: nsfs constants (linux/nsfs.h, linux/magic.h) that Swift
// cannot import as macros, and getdents64(2) for the /proc scanners.
#ifndef SOCKCTL_NAMESPACES_H
#define SOCKCTL_NAMESPACES_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/// NSFS_MAGIC from linux/magic.h: statfs(2) f_type of files on the nsfs pseudo file system.
static const long sockctl_NSFS_MAGIC = 0x6e736673;
/// CLONE_NEWNET from linux/sched.h: the namespace type setns(2) and NS_GET_NSTYPE use for network namespaces.
static const int sockctl_CLONE_NEWNET = 0x40000000;

/// NET_NS_INIT_INO from linux/nsfs.h (enum init_ns_ino, Linux 6.18+): the fixed nsfs inode number of
/// the initial network namespace. Older kernels number it like any other namespace.
static const unsigned long sockctl_NET_NS_INIT_INO = 0xEFFFFFF9UL;

/// USER_NS_INIT_INO from linux/nsfs.h (PROC_USER_INIT_INO in the kernel since Linux 3.8): the fixed
/// nsfs inode number of the initial user namespace.
static const unsigned long sockctl_USER_NS_INIT_INO = 0xEFFFFFFDUL;

/// CAP_NET_ADMIN from linux/capability.h.
static const int sockctl_CAP_NET_ADMIN = 12;

/// capget(2), version 3: 1 when capability `cap` is in the calling thread's effective set, 0 when
/// it is not, -1 with errno set when capget fails.
int sockctl_has_effective_capability(int cap);

/// ioctl(fd, NS_GET_NSTYPE) (linux/nsfs.h, _IO(0xb7, 0x3)): the CLONE_NEW* type of the namespace
/// `fd` refers to, or -1 with errno set (ENOTTY when fd is not an nsfs file).
int sockctl_ns_get_nstype(int fd);

/// ioctl(fd, NS_GET_USERNS) (linux/nsfs.h, _IO(0xb7, 0x1)): a new O_CLOEXEC descriptor for the user
/// namespace that owns the namespace `fd` refers to, or -1 with errno set (EPERM when that user
/// namespace is outside the caller's).
int sockctl_ns_get_userns(int fd);

/// getdents64(2): fills `buf` with `struct linux_dirent64` records; returns bytes, 0 at the end,
/// -1 with errno set.
ssize_t sockctl_getdents64(int fd, void *buf, size_t len);

/// fstatfs(2) f_type of the file system `fd` lives on, or -1 with errno set.
long sockctl_fstatfs_type(int fd);

/// Names the calling thread (pthread_setname_np, at most 15 bytes) so it shows in /proc/PID/task/TID/comm.
void sockctl_set_thread_name(const char *name);

#endif
