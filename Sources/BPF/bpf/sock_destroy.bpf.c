/* sockctl: destroy the sockets of one network namespace from a BPF iterator.
 *
 * iter/tcp and iter/udp programs walk every socket of the namespace the iterator was created in,
 * evaluate the filter held in the `config`, `clauses` and `cookies` maps, call the
 * bpf_sock_destroy kfunc (Linux 6.5+) on the matching ones and write one sockctl_record per
 * matching socket to the iterator's seq file. Userspace (Sources/BPF) reads the records.
 *
 * Built without vmlinux.h or libbpf headers: the few kernel structs read here are declared with
 * preserve_access_index so libbpf relocates the field offsets against the running kernel's BTF.
 * Build: scripts/gen-bpf (clang -target bpf -O2 -g). */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef unsigned long size_t;

#include "sock_destroy.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __ksym __attribute__((section(".ksyms")))
#define CORE __attribute__((preserve_access_index))

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_F_NO_PREALLOC 1

/* Kernel structs, only the fields read. Names match the kernel so CO-RE finds them. */
struct in6_addr {
	union {
		__u32 u6_addr32[4];
	} in6_u;
} CORE;

/* include/net/sock.h: struct sock_common (the head of sock, request_sock and inet_timewait_sock). */
struct sock_common {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport; /* network byte order */
	__u16 skc_num; /* host byte order */
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} CORE;

/* include/linux/seq_file.h */
struct seq_file {
	size_t size;
	size_t count;
} CORE;

/* include/linux/bpf.h */
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} CORE;

/* net/ipv4/tcp_ipv4.c: sk_common is a full sock, a request_sock or an inet_timewait_sock. */
struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid;
} CORE;

struct udp_sock;
/* net/ipv4/udp.c */
struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid;
	int bucket;
} CORE;

/* Helpers by number (include/uapi/linux/bpf.h, __BPF_FUNC_MAPPER). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_get_socket_cookie)(void *sk) = (void *)46;
static long (*bpf_seq_write)(struct seq_file *m, const void *data, __u32 len) = (void *)127;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

/* net/core/filter.c, Linux 6.5+ */
extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockctl_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SOCKCTL_MAX_CLAUSES);
	__type(key, __u32);
	__type(value, struct sockctl_clause);
} clauses SEC(".maps");

/* cookie -> generation; an entry counts only when it carries config.cookie_gen, so entries
 * left over from an earlier request can never select a socket. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SOCKCTL_MAX_COOKIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
} cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockctl_stats);
} stats SEC(".maps");

char LICENSE[] SEC("license") = "GPL";

static __attribute__((always_inline)) int addr_match(const __u32 *a, const __u32 *p, const __u32 *m)
{
	return (a[0] & m[0]) == p[0] && (a[1] & m[1]) == p[1] && (a[2] & m[2]) == p[2] &&
	       (a[3] & m[3]) == p[3];
}

/* What the clause test needs of one socket, by value (the bpf_loop callback reads it). */
struct clause_scan {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport, dport;
	__u32 uid;
	__u32 state;
	__u32 is_v4;
	__u32 found; /* index of the first matching clause, 0xffffffff for none */
};

/* bpf_loop callback: clause `i` against the socket; 1 stops the loop. */
static long scan_clause(__u32 i, void *data)
{
	struct clause_scan *s = data;
	__u32 key = i;
	struct sockctl_clause *c = bpf_map_lookup_elem(&clauses, &key);
	if (!c)
		return 1;
	if ((c->flags & SOCKCTL_CLAUSE_FAMILY_V4) && !s->is_v4)
		return 0;
	if ((c->flags & SOCKCTL_CLAUSE_FAMILY_V6) && s->is_v4)
		return 0;
	if (!(c->states & (1u << (s->state & 31))))
		return 0;
	if (s->sport < c->sport_lo || s->sport > c->sport_hi)
		return 0;
	if (s->dport < c->dport_lo || s->dport > c->dport_hi)
		return 0;
	if (s->uid < c->uid_lo || s->uid > c->uid_hi)
		return 0;
	if (!addr_match(s->src, c->src, c->src_mask) || !addr_match(s->dst, c->dst, c->dst_mask))
		return 0;
	s->found = i;
	return 1;
}

/* The whole decision for one socket; shared by both iterators. */
static __attribute__((always_inline)) int visit(struct bpf_iter_meta *meta, struct sock_common *sk,
						 __u32 uid, __u8 protocol)
{
	__u32 zero = 0;
	struct sockctl_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct sockctl_stats *st = bpf_map_lookup_elem(&stats, &zero);
	struct sockctl_record r = {};
	__u32 s4[4], d4[4];
	const __u32 *sa, *da;
	int is_v4, matched = 0;

	if (!cfg || !st)
		return 0;
	__sync_fetch_and_add(&st->visited, 1);

	r.family = sk->skc_family;
	r.protocol = protocol;
	r.state = sk->skc_state;
	r.sport = sk->skc_num;
	r.dport = __builtin_bswap16(sk->skc_dport);
	r.uid = uid;
	r.clause = 0xffffffff;
	if (r.family == AF_INET) {
		r.src[0] = sk->skc_rcv_saddr;
		r.dst[0] = sk->skc_daddr;
		/* compare as ::ffff:a.b.c.d */
		s4[0] = 0; s4[1] = 0; s4[2] = 0xffff0000; s4[3] = r.src[0];
		d4[0] = 0; d4[1] = 0; d4[2] = 0xffff0000; d4[3] = r.dst[0];
		sa = s4;
		da = d4;
		is_v4 = 1;
	} else if (r.family == AF_INET6) {
		r.src[0] = sk->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		r.src[1] = sk->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		r.src[2] = sk->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		r.src[3] = sk->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		r.dst[0] = sk->skc_v6_daddr.in6_u.u6_addr32[0];
		r.dst[1] = sk->skc_v6_daddr.in6_u.u6_addr32[1];
		r.dst[2] = sk->skc_v6_daddr.in6_u.u6_addr32[2];
		r.dst[3] = sk->skc_v6_daddr.in6_u.u6_addr32[3];
		sa = r.src;
		da = r.dst;
		/* IPv4 on an AF_INET6 socket: the peer is v4-mapped, or there is no peer and the local
		 * address is v4-mapped (0xffff0000 is ::ffff: in network order, read as a
		 * little-endian word). */
		int dst_mapped = r.dst[0] == 0 && r.dst[1] == 0 && r.dst[2] == 0xffff0000;
		int dst_any = (r.dst[0] | r.dst[1] | r.dst[2] | r.dst[3]) == 0;
		int src_mapped = r.src[0] == 0 && r.src[1] == 0 && r.src[2] == 0xffff0000;
		is_v4 = dst_mapped || (dst_any && src_mapped);
	} else {
		return 0;
	}

	if (cfg->shard >> 16) {
		r.cookie = bpf_get_socket_cookie(sk);
		if (r.cookie % (cfg->shard >> 16) != (cfg->shard & 0xffff))
			return 0;
	}

	if (cfg->mode & SOCKCTL_MODE_COOKIES) {
		r.cookie = bpf_get_socket_cookie(sk);
		__u32 *gen = bpf_map_lookup_elem(&cookies, &r.cookie);
		if (!gen || *gen != cfg->cookie_gen)
			return 0;
	}

	if (cfg->nclauses == 0) {
		matched = (cfg->mode & (SOCKCTL_MODE_ALL | SOCKCTL_MODE_COOKIES)) != 0;
	} else {
		/* bpf_loop (Linux 5.17+): the verifier checks the clause test as one callback instead
		 * of a 32-times bounded loop inlined into both programs, which made loading slow. */
		struct clause_scan scan = { .sport = r.sport, .dport = r.dport, .uid = r.uid,
					    .state = r.state, .is_v4 = is_v4, .found = 0xffffffff };
		for (int k = 0; k < 4; k++) {
			scan.src[k] = sa[k];
			scan.dst[k] = da[k];
		}
		__u32 n = cfg->nclauses;
		if (n > SOCKCTL_MAX_CLAUSES)
			n = SOCKCTL_MAX_CLAUSES;
		bpf_loop(n, scan_clause, &scan, 0);
		if (scan.found != 0xffffffff) {
			matched = 1;
			r.clause = scan.found;
		}
	}
	if (!matched)
		return 0;

	int records = !(cfg->mode & SOCKCTL_MODE_NO_RECORDS);
	if (records) {
		/* Destroy only what can be reported: when the seq buffer cannot take this record,
		 * returning 1 ends this read() and the kernel shows this socket again at the next
		 * one. Strictly more room than a record: seq_has_overflowed() is count == size, and
		 * bpf_seq_read() drops a record that fills the buffer exactly (the socket would be
		 * gone, its record lost). */
		struct seq_file *seq = meta->seq;
		if (seq->size - seq->count <= sizeof(r))
			return 1;
		if (!r.cookie)
			r.cookie = bpf_get_socket_cookie(sk);
	}

	__sync_fetch_and_add(&st->matched, 1);
	if (r.state == TCP_TIME_WAIT) {
		r.result = SOCKCTL_RESULT_NOT_DESTROYABLE;
		__sync_fetch_and_add(&st->not_destroyable, 1);
	} else if (r.state == TCP_NEW_SYN_RECV && protocol == IPPROTO_TCP) {
		/* bpf_sock_destroy only handles full sockets; never hand it a request_sock. */
		r.result = SOCKCTL_RESULT_NEEDS_NETLINK;
		__sync_fetch_and_add(&st->needs_netlink, 1);
	} else if (cfg->mode & SOCKCTL_MODE_DRY_RUN) {
		r.result = SOCKCTL_RESULT_DRY_RUN;
	} else {
		r.result = bpf_sock_destroy(sk);
		if (r.result == 0)
			__sync_fetch_and_add(&st->destroyed, 1);
		else
			__sync_fetch_and_add(&st->failed, 1);
	}
	if (records)
		bpf_seq_write(meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/tcp")
int sockctl_destroy_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *sk = ctx->sk_common;
	if (!sk)
		return 0;
	return visit(ctx->meta, sk, ctx->uid, IPPROTO_TCP);
}

SEC("iter/udp")
int sockctl_destroy_udp(struct bpf_iter__udp *ctx)
{
	struct sock_common *sk = (struct sock_common *)ctx->udp_sk;
	if (!sk)
		return 0;
	return visit(ctx->meta, sk, ctx->uid, IPPROTO_UDP);
}
