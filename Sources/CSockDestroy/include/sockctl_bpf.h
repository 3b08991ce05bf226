// C glue for the BPF backend (Sources/BPF), kept apart from CLinuxUAPI so Swift files can import it
// together with Glibc. Nothing here links libbpf: libbpf.so.1 is dlopen'ed
// from Swift; this header only gives Swift the record/filter layouts shared with the BPF program
// and a printf-style trampoline for libbpf_set_print (Swift cannot format a va_list callback).
#ifndef SOCKCTL_BPF_GLUE_H
#define SOCKCTL_BPF_GLUE_H

#include <linux/types.h>
#include "../../BPF/bpf/sock_destroy.h"

/// Receives one formatted libbpf message; `level` is libbpf's enum libbpf_print_level
/// (0 warn, 1 info, 2 debug).
typedef void (*sockctl_libbpf_sink_fn)(int level, const char *message);

/// Sets where sockctl_libbpf_print_fn() forwards messages (NULL drops them); messages with a
/// level above `max_level` are dropped before formatting (libbpf's debug output is large).
void sockctl_libbpf_set_sink(sockctl_libbpf_sink_fn sink, int max_level);

/// The address of a function with libbpf's `libbpf_print_fn_t` signature
/// (int (*)(enum libbpf_print_level, const char *, va_list)) that formats the message and
/// hands it to the sink. Pass it to libbpf_set_print.
void *sockctl_libbpf_print_fn(void);

/// setns(2), for BPFTests' namespace threads (kept here so the tests need not import CLinuxUAPI).
int sockctl_bpf_setns(int fd, int nstype);

/// setresuid(2) as a raw syscall: changes the effective uid of the calling thread only (glibc's
/// wrapper changes every thread). For BPFTests, which own sockets as another uid on a
/// dedicated thread; pass (uid_t)-1 to keep a value.
int sockctl_bpf_thread_setresuid(unsigned int ruid, unsigned int euid, unsigned int suid);

#endif
