// C glue for the Handoff module: fork+exec with passed fds (systemd LISTEN_FDS protocol) and
// SCM_RIGHTS / SCM_CREDENTIALS ancillary data, whose CMSG_* macros Swift cannot import.
#ifndef SOCKCTL_HANDOFF_H
#define SOCKCTL_HANDOFF_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

/// SCM_MAX_FD in the kernel (include/net/scm.h): the most fds one SCM_RIGHTS message may carry.
static const int sockctl_SCM_MAX_FD = 253;

/// fork(2) + execve(2) for a supervised child.
///
/// In the child: every signal is unblocked and reset to SIG_DFL; `fds[i]` ends up as fd `3 + i`
/// with FD_CLOEXEC cleared (and only those fds: every other fd >= 3 gets FD_CLOEXEC through
/// close_range(2)); O_NONBLOCK is left as it is on the open file description. When
/// `listen_pid_slot` is not negative, `envp[listen_pid_slot]` is replaced by "LISTEN_PID=<the
/// child's own pid>" before execve, so that sd_listen_fds(3) in the child accepts the fds.
///
/// Returns the child's pid; or -1 with `*exec_errno` set (errno of fork, or of execve as seen by the
/// child, reported through a close-on-exec pipe), and in that case the child has been reaped.
pid_t sockctl_spawn_with_fds(const char *path, char *const argv[], char *const envp[],
                             int listen_pid_slot, const int *fds, int nfds, int *exec_errno);

/// sendmsg(2) of `len` bytes with `nfds` (<= sockctl_SCM_MAX_FD) fds as one SCM_RIGHTS message.
ssize_t sockctl_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// recvmsg(2) with MSG_CMSG_CLOEXEC: data into `buf`, up to `maxfds` SCM_RIGHTS fds into `fds`
/// (count in `*nfds`), the SCM_CREDENTIALS sender pid into `*pid` (0 when absent), and the
/// returned msg_flags (MSG_CTRUNC, MSG_TRUNC) into `*msg_flags`. Fds beyond `maxfds` are closed.
ssize_t sockctl_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds,
                         pid_t *pid, int *msg_flags, int flags);

/// Fill a sockaddr_un for `path` (a leading '@' means the abstract namespace). Returns the address
/// length to pass to bind/connect, or -1 (errno ENAMETOOLONG) when the path does not fit sun_path.
int sockctl_sockaddr_un(struct sockaddr_un *addr, const char *path);

/// Route `sigs` to a self-pipe: each delivery writes the signal number as one byte. Returns the
/// non-blocking, close-on-exec read end (the same one on every call), or -1 with errno. The
/// signals are unblocked in the calling thread (a blocked mask is inherited across execve).
int sockctl_signal_pipe(const int *sigs, int nsigs);

/// pipe2(2) and accept4(2), which glibc declares only under _GNU_SOURCE.
int sockctl_pipe2(int fds[2], int flags);
int sockctl_accept4(int sock, int flags);

#endif
