/* Shared layout between sock_destroy.bpf.c and the Swift loader (Sources/BPF/Wire.swift mirrors it).
 * Plain C with fixed-width types only: compiled for the BPF target, read by humans for Swift.
 * Any change here changes the object: run scripts/gen-bpf. */
#ifndef SOCKCTL_SOCK_DESTROY_H
#define SOCKCTL_SOCK_DESTROY_H

#define SOCKCTL_MAX_CLAUSES 32
/* Capacity of the cookie map (one pass's cookie set). Its bucket array is allocated and zeroed
 * when the programs load (16 bytes a bucket), so it is sized for a big namespace, not for any. */
#define SOCKCTL_MAX_COOKIES 262144

/* clause.flags */
#define SOCKCTL_CLAUSE_FAMILY_V4 1u /* AF_INET sockets and AF_INET6 sockets with IPv4-mapped addresses */
#define SOCKCTL_CLAUSE_FAMILY_V6 2u /* AF_INET6 sockets with native IPv6 addresses */

/* config.mode bits */
#define SOCKCTL_MODE_DRY_RUN 1u    /* match and report, never call bpf_sock_destroy */
#define SOCKCTL_MODE_COOKIES 2u    /* only sockets whose cookie is in the cookie map (with the current generation) */
#define SOCKCTL_MODE_ALL 4u        /* no clauses: every socket matches (still narrowed by COOKIES) */
#define SOCKCTL_MODE_NO_RECORDS 8u /* count in the stats map only; write nothing to the seq file */

/* record.result values that are not a bpf_sock_destroy return (which is 0 or -errno) */
#define SOCKCTL_RESULT_DRY_RUN 1
#define SOCKCTL_RESULT_NOT_DESTROYABLE 2 /* TIME_WAIT: the kernel cannot abort it */
#define SOCKCTL_RESULT_NEEDS_NETLINK 3 /* request socket (TCP_NEW_SYN_RECV): bpf_sock_destroy refuses
                                        * it (EOPNOTSUPP), SOCK_DESTROY over netlink drops it */

/* One OR-term of the filter: every field must match (AND). Addresses are compared over their
 * 128-bit form: IPv4 as the IPv4-mapped IPv6 address ::ffff:a.b.c.d, so a v4 prefix also matches
 * v4-mapped sockets. Words are in network byte order; `*_mask` zero means "any address". */
struct sockctl_clause {
	__u32 flags;
	__u32 states; /* bit (1 << sk_state); all ones = any state */
	__u32 src[4];
	__u32 src_mask[4];
	__u32 dst[4];
	__u32 dst_mask[4];
	__u16 sport_lo, sport_hi; /* host byte order, inclusive */
	__u16 dport_lo, dport_hi;
	__u32 uid_lo, uid_hi; /* inclusive */
};

struct sockctl_config {
	__u32 nclauses;
	__u32 mode;
	__u32 cookie_gen; /* cookie map entries must carry this value to count */
	/* 0: every socket. Otherwise (count << 16) | index: only sockets whose cookie % count ==
	 * index, so that `count` iterators (each with its own maps) split one pass between threads. */
	__u32 shard;
};

/* Counters of one iteration, reset by userspace before each run. */
struct sockctl_stats {
	__u64 visited;
	__u64 matched;
	__u64 destroyed;
	__u64 failed;
	__u64 not_destroyable;
	__u64 needs_netlink;
};

/* One matched socket, written with bpf_seq_write; 64 bytes. */
struct sockctl_record {
	__u64 cookie;
	__u32 src[4]; /* network byte order; AF_INET uses src[0] only */
	__u32 dst[4];
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u8 protocol; /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 state; /* sk_state, TCP_* numbering */
	__u16 sport; /* host byte order */
	__u16 dport;
	__u32 uid;
	__s32 result;
	__u32 clause; /* index of the first matching clause, or 0xffffffff */
	__u32 pad;
};

#endif
