// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark peer: the textbook IPv4 source blocklist, one LPM-trie lookup per packet, with the
 * same L2 parsing as the WAN guard. With -DBENCH_RANDOM_SRC the source is overwritten by the same
 * pseudo-random sequence the guard's benchmark build uses.
 */
#include <linux/bpf.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dp_shared.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2000000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dp_lpm4_key);
	__type(value, __u8);
} lpm_block SEC(".maps");

#ifdef BENCH_RANDOM_SRC
#include "bench_rand.h"
#endif

/* Drops IPv4 frames whose source is covered by lpm_block; passes everything else. */
SEC("xdp")
int bench_lpm(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	struct dp_lpm4_key k = { .prefixlen = 32 };
	struct l2_info l2;
	struct iphdr *ip;

	if (parse_l2(&c, &l2) < 0 || l2.proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = cur_pull(&c, sizeof(*ip));
	if (!ip)
		return XDP_PASS;
#ifdef BENCH_RANDOM_SRC
	ip->saddr = (__u32)bench_next();
#endif
	k.addr = ip->saddr;
	return bpf_map_lookup_elem(&lpm_block, &k) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
