#define _GNU_SOURCE
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "sockctl_bpf.h"

static sockctl_libbpf_sink_fn sockctl_sink;

static int sockctl_max_level;

void sockctl_libbpf_set_sink(sockctl_libbpf_sink_fn sink, int max_level)
{
	__atomic_store_n(&sockctl_max_level, max_level, __ATOMIC_RELEASE);
	__atomic_store_n(&sockctl_sink, sink, __ATOMIC_RELEASE);
}

static int sockctl_libbpf_print(int level, const char *format, va_list args)
{
	sockctl_libbpf_sink_fn sink = __atomic_load_n(&sockctl_sink, __ATOMIC_ACQUIRE);
	if (!sink || level > __atomic_load_n(&sockctl_max_level, __ATOMIC_ACQUIRE))
		return 0;
	char line[1024];
	int n = vsnprintf(line, sizeof(line), format, args);
	size_t len = strnlen(line, sizeof(line));
	while (len > 0 && line[len - 1] == '\n')
		line[--len] = 0;
	sink(level, line);
	return n;
}

void *sockctl_libbpf_print_fn(void) { return (void *)sockctl_libbpf_print; }

int sockctl_bpf_setns(int fd, int nstype) { return setns(fd, nstype); }

int sockctl_bpf_thread_setresuid(unsigned int ruid, unsigned int euid, unsigned int suid)
{
	return (int)syscall(SYS_setresuid, ruid, euid, suid);
}
