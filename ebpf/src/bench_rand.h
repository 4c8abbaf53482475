/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pseudo-random source addresses for the spoofed-flood benchmark builds (-DBENCH_RANDOM_SRC).
 * Never part of a program the loader attaches.
 */
#ifndef DP_BENCH_RAND_H
#define DP_BENCH_RAND_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_seq SEC(".maps");

/* Next value of a per-CPU splitmix64 sequence; every benchmark program sees the same sequence. */
static __always_inline __u64 bench_next(void)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&bench_seq, &zero);
	__u64 z;

	if (!seq)
		return 0;
	z = (*seq += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

#endif /* DP_BENCH_RAND_H */
