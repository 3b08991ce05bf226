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

// struct tcp_info as Linux 6.x defines it (include/uapi/linux/tcp.h). Declared here because
// <linux/tcp.h> clashes with glibc's <netinet/tcp.h>, whose struct tcp_info stops at
// tcpi_total_retrans. Kernels send a prefix of this; the rest stays zero.
struct sockctl_tcp_info {
    __u8 tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff, tcpi_options;
    __u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
    __u8 tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;
    __u32 tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
    __u32 tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
    __u32 tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
    __u32 tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh, tcpi_snd_cwnd;
    __u32 tcpi_advmss, tcpi_reordering, tcpi_rcv_rtt, tcpi_rcv_space, tcpi_total_retrans;
    __u64 tcpi_pacing_rate, tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received;
    __u32 tcpi_segs_out, tcpi_segs_in, tcpi_notsent_bytes, tcpi_min_rtt;
    __u32 tcpi_data_segs_in, tcpi_data_segs_out;
    __u64 tcpi_delivery_rate, tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
    __u32 tcpi_delivered, tcpi_delivered_ce;
    __u64 tcpi_bytes_sent, tcpi_bytes_retrans;
    __u32 tcpi_dsack_dups, tcpi_reord_seen, tcpi_rcv_ooopack, tcpi_snd_wnd;
};

// netlink(7) socket options that older libc headers may not carry.
static const int sockctl_NETLINK_EXT_ACK = 11;
static const int sockctl_NETLINK_GET_STRICT_CHK = 12;
static const int sockctl_NETLINK_CAP_ACK = 10;

/// setns(2) for network namespaces; glibc has it, this keeps the import in one place.
int sockctl_setns(int fd, int nstype);
/// The calling thread's kernel thread id (gettid(2)).
pid_t sockctl_gettid(void);
/// Tells malloc to keep freed memory (trim threshold 256 MiB, mmap threshold 32 MiB): a command that
/// allocates and frees buffers per namespace then reuses pages instead of faulting in zeroed ones.
/// Memory freed after a peak stays with the process (up to the trim threshold) until it exits.
void sockctl_keep_freed_memory(void);

#endif
