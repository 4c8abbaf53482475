// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark floor: the cheapest XDP program, so test-run overhead can be subtracted. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Passes every frame untouched. */
SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
