// SPDX-License-Identifier: Apache-2.0
/*
 * Segment QoS table: frames through the tc programs with BPF_PROG_TEST_RUN, checking the
 * skb->priority they set (egress), the DSCP they write (ingress, IPv4 checksum included) and the
 * per-segment counters. The policy is stored for the loopback ifindex, the device test runs use.
 *
 *   qos_table
 *
 * One JSON line per row, then {"summary":...}; exits 1 if any row fails.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <stdio.h>
#include <string.h>

#include "../src/dp_shared.h"
#include "segment_qos.skel.h"
#include "testlib.h"

struct qctx {
	struct segment_qos_bpf *skel;
	int rows, failed;
};

static int dscp_of(const uint8_t *f, size_t l3, int v6)
{
	return v6 ? ((f[l3] & 0x0f) << 2) | (f[l3 + 1] >> 6) : f[l3 + 1] >> 2;
}

static int ipv4_csum_ok(const uint8_t *ip)
{
	uint32_t sum = 0;

	for (int i = 0; i < 20; i += 2)
		sum += ((uint32_t)ip[i] << 8) | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Runs prog on the frame with skb->priority = prio_in; checks the DSCP and priority that result. */
static void row(struct qctx *q, const char *name, int prog, const struct frame_spec *s, uint32_t prio_in,
		int want_dscp, uint32_t want_prio)
{
	uint8_t in[FRAME_MAX], out[FRAME_MAX + 64];
	struct frame_layout lay;
	struct __sk_buff ctx = { .ifindex = 1, .priority = prio_in }, ctx_out;
	size_t len = frame_build(s, in, &lay);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .ctx_out = &ctx_out,
		    .ctx_size_out = sizeof(ctx_out));
	int v6 = s->ethertype == 0x86dd, ok, got_dscp = -1;

	memset(&ctx_out, 0, sizeof(ctx_out));
	ok = !bpf_prog_test_run_opts(prog, &o) && (int)o.retval == TC_ACT_UNSPEC;
	if (ok && (s->ethertype == 0x0800 || v6))
		got_dscp = dscp_of(out, lay.l3_off, v6);
	ok = ok && got_dscp == want_dscp && ctx_out.priority == want_prio;
	if (ok && s->ethertype == 0x0800)
		ok = ipv4_csum_ok(out + lay.l3_off);
	/* ECN (the traffic class' two low bits) must survive any DSCP change */
	if (ok && s->ethertype == 0x0800)
		ok = (out[lay.l3_off + 1] & 3) == (s->tos & 3);
	if (ok && v6)
		ok = ((out[lay.l3_off + 1] >> 4) & 3) == (s->tos & 3);
	q->rows++;
	q->failed += !ok;
	printf("{\"row\":\"%s\",\"dscp\":%d,\"expect_dscp\":%d,\"priority\":%u,\"expect_priority\":%u,\"ok\":%s}\n", name,
	       got_dscp, want_dscp, ctx_out.priority, want_prio, ok ? "true" : "false");
}

static void set_policy(struct qctx *q, uint32_t seg, uint32_t def, int rewrite, int trust)
{
	struct dp_seg_policy pol = { .segment_id = seg, .default_priority = def };
	uint32_t lo = 1;

	for (int d = 0; d < 64; d++)
		pol.dscp_priority[d] = DP_SEG_NO_RULE;
	pol.dscp_priority[46] = 6; /* EF -> voice */
	pol.dscp_priority[8] = 1;  /* CS1 -> background */
	pol.rewrite_dscp = rewrite < 0 ? DP_SEG_KEEP_DSCP : (uint8_t)rewrite;
	pol.trust_pcp = (uint8_t)trust;
	for (int p = 0; p < 8; p++)
		pol.pcp_dscp[p] = (uint8_t)(p == 5 ? 46 : p * 8);
	bpf_map_update_elem(bpf_map__fd(q->skel->maps.dp_seg_policy), &lo, &pol, BPF_ANY);
}

int main(void)
{
	struct qctx q = { 0 };
	struct frame_spec s4, s6, arp, tagged;
	int ing, eg;
	uint64_t c[4];

	q.skel = segment_qos_bpf__open_and_load();
	if (!q.skel) {
		fprintf(stderr, "cannot load the segment programs\n");
		return 2;
	}
	ing = bpf_program__fd(q.skel->progs.segment_ingress);
	eg = bpf_program__fd(q.skel->progs.segment_egress);
	frame_spec_init(&s4, 4, "192.168.10.20", "9.9.9.9", 17);
	frame_spec_init(&s6, 6, "2001:db8:10::20", "2620:fe::9", 17);
	frame_spec_init(&arp, 0, NULL, NULL, 0);

	/* egress: DSCP -> priority */
	set_policy(&q, 10, 2, -1, 0);
	s4.tos = 46 << 2;
	row(&q, "egress IPv4 EF (46) gets the rule's priority 6", eg, &s4, 0, 46, 6);
	s4.tos = 0;
	row(&q, "egress IPv4 best effort falls back to the default priority 2", eg, &s4, 0, 0, 2);
	s6.tos = 46 << 2;
	row(&q, "egress IPv6 EF gets priority 6", eg, &s6, 0, 46, 6);
	s6.tos = 8 << 2;
	row(&q, "egress IPv6 CS1 gets priority 1", eg, &s6, 0, 8, 1);
	row(&q, "egress non-IP frame keeps its priority (5 stays 5)", eg, &arp, 5, -1, 5);

	/* ingress: rewrite, then PCP trust */
	set_policy(&q, 20, 0, 8, 1);
	s4.tos = (46 << 2) | 1; /* ECN bit must survive */
	row(&q, "ingress IPv4 from a rewrite segment becomes CS1 (checksum fixed, ECN kept)", ing, &s4, 0, 8, 0);
	s6.tos = (46 << 2) | 2;
	row(&q, "ingress IPv6 from a rewrite segment becomes CS1 (ECN kept)", ing, &s6, 0, 8, 0);
	tagged = s4;
	tagged.tos = 0;
	frame_spec_tag(&tagged, 0x8100, 20);
	tagged.pcp[0] = 5;
	row(&q, "ingress rewrite wins over a trusted PCP", ing, &tagged, 0, 8, 0);

	set_policy(&q, 30, 0, -1, 1);
	row(&q, "ingress tagged IPv4 with PCP 5 on a trusting segment becomes EF", ing, &tagged, 0, 46, 0);
	tagged.pcp[0] = 3;
	row(&q, "ingress tagged IPv4 with PCP 3 becomes CS3 (24)", ing, &tagged, 0, 24, 0);
	s4.tos = 10 << 2;
	row(&q, "ingress untagged IPv4 keeps its DSCP 10 (no tag to trust)", ing, &s4, 0, 10, 0);

	set_policy(&q, 40, 0, -1, 0);
	tagged.pcp[0] = 5;
	row(&q, "ingress tagged IPv4 on a segment that does not trust PCP keeps DSCP 0", ing, &tagged, 0, 0, 0);

	/* counters: segment 10 saw five egress frames, 20 three ingress, 30 three, 40 one */
	{
		static const struct {
			uint32_t seg;
			uint64_t in, out;
		} want[] = { { 10, 0, 5 }, { 20, 3, 0 }, { 30, 3, 0 }, { 40, 1, 0 } };

		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			int ok = !percpu_read(bpf_map__fd(q.skel->maps.dp_seg_stats), want[i].seg, c, 4) &&
				 c[0] == want[i].in && c[2] == want[i].out && (c[0] == 0) == (c[1] == 0) &&
				 (c[2] == 0) == (c[3] == 0);

			q.rows++;
			q.failed += !ok;
			printf("{\"row\":\"segment %u counters: %llu in, %llu out (bytes counted alongside)\",\"in_packets\":%llu,"
			       "\"out_packets\":%llu,\"ok\":%s}\n",
			       want[i].seg, (unsigned long long)want[i].in, (unsigned long long)want[i].out,
			       (unsigned long long)c[0], (unsigned long long)c[2], ok ? "true" : "false");
		}
	}
	printf("{\"summary\":{\"rows\":%d,\"failed\":%d}}\n", q.rows, q.failed);
	segment_qos_bpf__destroy(q.skel);
	return q.failed ? 1 : 0;
}
