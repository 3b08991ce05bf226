// Kernel UAPI definitions for sockctl. Only headers that ship with linux-libc-dev are included;
// macros that Swift cannot import are re-exposed as static inline functions or enum constants.
#ifndef SOCKCTL_CLINUXUAPI_H
#define SOCKCTL_CLINUXUAPI_H

#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <linux/unix_diag.h>
#include <linux/tcp.h>

// netlink(7) socket options that older libc headers may not carry.
static const int sockctl_NETLINK_EXT_ACK = 11;
static const int sockctl_NETLINK_GET_STRICT_CHK = 12;
static const int sockctl_NETLINK_CAP_ACK = 10;

/// setns(2) for network namespaces; glibc has it, this keeps the import in one place.
int sockctl_setns(int fd, int nstype);
/// The calling thread's kernel thread id (gettid(2)).
pid_t sockctl_gettid(void);

#endif
