#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "include/handoff.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Async-signal-safe decimal formatting for the child (no printf after fork).
static void put_decimal(char *dst, long value) {
    char tmp[24];
    int n = 0;
    if (value == 0) tmp[n++] = '0';
    while (value > 0) { tmp[n++] = (char)('0' + value % 10); value /= 10; }
    for (int i = 0; i < n; i++) dst[i] = tmp[n - 1 - i];
    dst[n] = '\0';
}

static void child_fail(int errfd, int err) {
    ssize_t unused = write(errfd, &err, sizeof err);
    (void)unused;
    _exit(127);
}

pid_t sockctl_spawn_with_fds(const char *path, char *const argv[], char *const envp[],
                             int listen_pid_slot, const int *fds, int nfds, int *exec_errno) {
    *exec_errno = 0;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) { *exec_errno = errno; return -1; }

    // LISTEN_PID must name the child itself; the string is completed in the child.
    char listen_pid[48] = "LISTEN_PID=";
    size_t envc = 0;
    while (envp[envc]) envc++;
    char **env = calloc(envc + 1, sizeof(char *));
    if (!env) { *exec_errno = ENOMEM; close(errpipe[0]); close(errpipe[1]); return -1; }
    for (size_t i = 0; i < envc; i++) env[i] = envp[i];
    if (listen_pid_slot >= 0 && (size_t)listen_pid_slot < envc) env[listen_pid_slot] = listen_pid;

    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        free(env); close(errpipe[0]); close(errpipe[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            signal(sig, SIG_DFL);
        }
        int high = 3 + nfds;
        // Move the error pipe and every passed fd above the target range first, so that no
        // dup2 below overwrites a source that is still needed.
        int errfd = fcntl(errpipe[1], F_DUPFD_CLOEXEC, high);
        if (errfd < 0) child_fail(errpipe[1], errno);
        int *tmp = nfds > 0 ? alloca(sizeof(int) * (size_t)nfds) : NULL;
        for (int i = 0; i < nfds; i++) {
            tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, high);
            if (tmp[i] < 0) child_fail(errfd, errno);
        }
        // Every inherited fd from 3 on becomes close-on-exec; then dup2 makes the passed ones
        // (dup2 never copies FD_CLOEXEC, so exactly fds 3..3+nfds-1 survive execve).
        syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
        for (int i = 0; i < nfds; i++) {
            if (dup2(tmp[i], 3 + i) < 0) child_fail(errfd, errno);
        }
        if (listen_pid_slot >= 0) put_decimal(listen_pid + strlen("LISTEN_PID="), (long)getpid());
        execve(path, argv, env);
        child_fail(errfd, errno);
    }
    free(env);
    close(errpipe[1]);
    int err = 0;
    ssize_t n;
    do { n = read(errpipe[0], &err, sizeof err); } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof err) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *exec_errno = err;
        return -1;
    }
    return pid;
}

ssize_t sockctl_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > sockctl_SCM_MAX_FD) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    char *control = NULL;
    if (nfds > 0) {
        size_t space = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        control = calloc(1, space);
        if (!control) { errno = ENOMEM; return -1; }
        msg.msg_control = control;
        msg.msg_controllen = space;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    int saved = errno;
    free(control);
    errno = saved;
    return n;
}

ssize_t sockctl_recv_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds,
                         pid_t *pid, int *msg_flags, int flags) {
    *nfds = 0;
    *pid = 0;
    *msg_flags = 0;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    size_t space = CMSG_SPACE(sizeof(int) * (size_t)sockctl_SCM_MAX_FD) +
                   CMSG_SPACE(sizeof(struct ucred));
    char *control = calloc(1, space);
    if (!control) { errno = ENOMEM; return -1; }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = space;
    ssize_t n;
    do { n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) { int saved = errno; free(control); errno = saved; return -1; }
    *msg_flags = msg.msg_flags;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET) continue;
        if (cm->cmsg_type == SCM_RIGHTS) {
            int count = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int *got = (int *)CMSG_DATA(cm);
            for (int i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, got + i, sizeof fd);
                if (*nfds < maxfds) fds[(*nfds)++] = fd; else close(fd);
            }
        } else if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(cm), sizeof cred);
            *pid = cred.pid;
        }
    }
    free(control);
    return n;
}

int sockctl_sockaddr_un(struct sockaddr_un *addr, const char *path) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof addr->sun_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(addr->sun_path, path, len);
    if (path[0] == '@') {
        addr->sun_path[0] = '\0';
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

static int signal_pipe[2] = { -1, -1 };

static void on_signal(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t unused = write(signal_pipe[1], &b, 1);
    (void)unused;
    errno = saved;
}

int sockctl_signal_pipe(const int *sigs, int nsigs) {
    if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    for (int i = 0; i < nsigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART | (sigs[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    }
    // A parent may have left these blocked (the mask survives execve): unblock them.
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < nsigs; i++) sigaddset(&set, sigs[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return signal_pipe[0];
}

int sockctl_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int sockctl_accept4(int sock, int flags) { return accept4(sock, NULL, NULL, flags); }
