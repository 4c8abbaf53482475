// SPDX-License-Identifier: Apache-2.0
/*
 * The dynamic blocklist end to end on the real verifier and BPF_PROG_TEST_RUN: entries added with
 * dp_dyn_add() drop their source (IPv4: the address; IPv6: its /64) with the "dynamic" counter,
 * and nothing else in the same /24; protected sources and a full table are refused; a table
 * publish keeps the marks; an entry stops blocking at its expiry by itself, before any sweep, and
 * the sweep removes it and gives the /24 back the summary code it was published with. A second
 * guard built without the dynamic check is not needed: "never blocked before the add" and "passes
 * after expiry" are the controls.
 *
 *   dynblock_test
 *
 * Prints one JSON line per row, then {"summary":...}; exits 1 if any row fails.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynblock.h"
#include "tables.h"
#include "testlib.h"
#include "wan_guard.skel.h"

struct ctx {
	struct wan_guard_bpf *skel;
	struct dp_guard_maps maps;
	struct dp_dynblock dyn;
	struct dp_pfx_list protect;
	int prog, stats, vlans;
	int rows, failed;
};

static void row(struct ctx *c, const char *name, bool ok, const char *detail)
{
	c->rows++;
	c->failed += !ok;
	printf("{\"row\":\"%s\",\"ok\":%s,\"detail\":\"%s\"}\n", name, ok ? "true" : "false", detail);
}

/* Runs one UDP frame from src; returns the XDP action and the drop reason counted for it (or -1). */
static int send_from(struct ctx *c, const char *src, int *reason)
{
	uint64_t before[DP_STAT_MAX][2], after[DP_STAT_MAX][2];
	uint8_t frame[FRAME_MAX];
	struct frame_spec s;
	int action;

	frame_spec_init(&s, strchr(src, ':') ? 6 : 4, src, strchr(src, ':') ? "2001:67c:2e8::1" : "192.0.2.1",
			IPPROTO_UDP);
	guard_counters(c->stats, c->vlans, before);
	action = test_run(c->prog, frame, frame_build(&s, frame, NULL), 1, NULL);
	guard_counters(c->stats, c->vlans, after);
	*reason = -1;
	for (int r = 0; r < DP_STAT_MAX; r++)
		if (after[r][0] != before[r][0])
			*reason = r;
	return action;
}

/* Checks that src gets action with reason counted. */
static void expect(struct ctx *c, const char *name, const char *src, int action, int reason)
{
	char detail[160];
	int got_reason, got = send_from(c, src, &got_reason);

	snprintf(detail, sizeof(detail), "%s: action %d reason %d (want %d, %d)", src, got, got_reason, action, reason);
	row(c, name, got == action && got_reason == reason, detail);
}

static void expect_add(struct ctx *c, const char *name, const char *src, uint32_t secs, enum dp_dyn_result want)
{
	const struct dp_pfx_list *lists[] = { &c->protect };
	char why[128], detail[256];
	enum dp_dyn_result r = dp_dyn_add(&c->dyn, src, secs, lists, 1, why, sizeof(why));

	snprintf(detail, sizeof(detail), "%s: %s (%s), want %s", src, dp_dyn_result_name[r], why,
		 dp_dyn_result_name[want]);
	row(c, name, r == want, detail);
}

/* Publishes tables with one static blocklist entry (so the summary is not all clean). */
static int publish(struct ctx *c)
{
	static struct dp_pfx_list allow, block, geo, extra;
	struct dp_table_input in = { 0 };
	struct dp_built built;
	struct dp_err err = { "" };
	struct dp_pfx p;
	char why[64];
	int rc;

	if (!block.n && (dp_pfx_parse("185.220.101.0/24", &p, why, sizeof(why)) || dp_pfx_list_push(&block, &p)))
		return -1;
	in.allow = &allow;
	in.block = &block;
	in.geo = &geo;
	in.bogon_extra = &extra;
	in.bogons4 = in.bogons6 = in.blocklist = in.ratelimit = true;
	in.syn = in.icmp = in.udp = (struct dp_rate){ 1000000, 1000000 };
	in.seed = 1;
	if (dp_tables_build(&in, &built, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	rc = dp_tables_publish(&c->maps, &built, &err);
	dp_built_free(&built);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	return rc;
}

/* True when both generations' summaries equal what they were published with (no mark left). */
static bool summary_restored(struct ctx *c)
{
	return !memcmp(c->maps.sum, c->dyn.base, 2 * 2 * (size_t)DP_SUM_WORDS * sizeof(__u64));
}

static void setup(struct ctx *c)
{
	struct dp_err err = { "" };
	struct dp_pfx p;
	char why[64];

	c->skel = wan_guard_bpf__open();
	if (!c->skel || wan_guard_bpf__load(c->skel) ||
	    dp_guard_maps_find(c->skel->obj, &c->skel->bss->dp_rt, c->skel->bss->dp_sum, &c->maps, &err)) {
		fprintf(stderr, "cannot load the WAN guard: %s\n", err.msg[0] ? err.msg : "verifier");
		exit(2);
	}
	c->prog = bpf_program__fd(c->skel->progs.wan_guard);
	c->stats = bpf_map__fd(c->skel->maps.dp_stats);
	c->vlans = bpf_map__fd(c->skel->maps.dp_vlan_stats);
	if (publish(c) || dp_dyn_init(&c->dyn, &c->maps, bpf_map__fd(c->skel->maps.dp_dyn4),
				      bpf_map__fd(c->skel->maps.dp_dyn6), 4, &err)) {
		fprintf(stderr, "setup: %s\n", err.msg);
		exit(2);
	}
	c->maps.on_publish = dp_dyn_on_publish;
	c->maps.on_publish_arg = &c->dyn;
	if (dp_pfx_parse("9.9.9.0/24", &p, why, sizeof(why)) || dp_pfx_list_push(&c->protect, &p) ||
	    dp_pfx_parse("2a01:4f8:5::77/128", &p, why, sizeof(why)) || dp_pfx_list_push(&c->protect, &p))
		exit(2);
}

int main(void)
{
	struct ctx c = { 0 };

	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return 2;
	}
	setup(&c);
	expect(&c, "a source passes before it is blocked", "45.80.1.66", XDP_PASS, DP_STAT_PASS);
	expect_add(&c, "an alert's source is added", "45.80.1.66", 2, DP_DYN_ADDED);
	expect(&c, "the blocked source is dropped as dynamic", "45.80.1.66", XDP_DROP, DP_STAT_DROP_DYNAMIC);
	expect(&c, "its /24 neighbour still passes", "45.80.1.67", XDP_PASS, DP_STAT_PASS);
	expect(&c, "the static blocklist still decides its own entries", "185.220.101.9", XDP_DROP, DP_STAT_DROP_BLOCK);
	if (publish(&c))
		return 2;
	expect(&c, "a table publish keeps the block (the new generation is marked before it is active)",
	       "45.80.1.66", XDP_DROP, DP_STAT_DROP_DYNAMIC);
	expect_add(&c, "a protected source is refused", "9.9.9.9", 60, DP_DYN_PROTECTED);
	expect(&c, "the protected source passes", "9.9.9.9", XDP_PASS, DP_STAT_PASS);
	expect_add(&c, "an IPv6 /64 holding a protected address is refused", "2a01:4f8:5::1", 60, DP_DYN_PROTECTED);
	expect_add(&c, "an IPv6 source is added", "2a01:4f8:1:2::66", 60, DP_DYN_ADDED);
	expect(&c, "another address of its /64 is dropped", "2a01:4f8:1:2::99", XDP_DROP, DP_STAT_DROP_DYNAMIC);
	expect(&c, "the next /64 passes", "2a01:4f8:1:3::1", XDP_PASS, DP_STAT_PASS);
	expect_add(&c, "a third source is added", "45.80.9.9", 1, DP_DYN_ADDED);
	expect_add(&c, "the fourth fills the table", "45.81.0.1", 1, DP_DYN_ADDED);
	expect_add(&c, "a full table refuses a fifth", "45.82.0.1", 60, DP_DYN_FULL);
	expect(&c, "the refused source passes", "45.82.0.1", XDP_PASS, DP_STAT_PASS);
	expect_add(&c, "a source blocked again keeps the later expiry", "45.80.1.66", 1, DP_DYN_EXTENDED);
	expect_add(&c, "not an address", "45.80.1.0/24", 60, DP_DYN_INVALID);
	expect_add(&c, "a duration of 0", "45.83.0.1", 0, DP_DYN_INVALID);
	usleep(1200 * 1000);
	expect(&c, "an expired entry stops blocking by itself, before any sweep", "45.80.9.9", XDP_PASS, DP_STAT_PASS);
	expect(&c, "an entry not expired yet still blocks", "45.80.1.66", XDP_DROP, DP_STAT_DROP_DYNAMIC);
	{
		size_t gone = dp_dyn_sweep(&c.dyn);
		char d[64];

		snprintf(d, sizeof(d), "removed %zu, live %zu", gone, c.dyn.live);
		row(&c, "the sweep removes the two expired entries", gone == 2 && c.dyn.live == 2, d);
	}
	usleep(1000 * 1000);
	expect(&c, "the first block expires on time (2 s)", "45.80.1.66", XDP_PASS, DP_STAT_PASS);
	expect_add(&c, "after the sweep the table has room again", "45.82.0.1", 60, DP_DYN_ADDED);
	expect(&c, "and the new entry blocks", "45.82.0.1", XDP_DROP, DP_STAT_DROP_DYNAMIC);
	row(&c, "with entries live the summary differs from the published one", !summary_restored(&c), "");
	c.dyn.max = 4;
	{
		/* expire everything now: a 1 s entry for the remaining ones is not possible, so wait them out
		 * by moving their expiry into the past through the map itself */
		__u32 k4 = 0, n4;
		__u64 k6 = 0, n6, past = 1;
		void *p = NULL;

		while (!bpf_map_get_next_key(c.dyn.fd4, p, &n4)) {
			k4 = n4;
			p = &k4;
			bpf_map_update_elem(c.dyn.fd4, &k4, &past, BPF_EXIST);
		}
		p = NULL;
		while (!bpf_map_get_next_key(c.dyn.fd6, p, &n6)) {
			k6 = n6;
			p = &k6;
			bpf_map_update_elem(c.dyn.fd6, &k6, &past, BPF_EXIST);
		}
	}
	dp_dyn_sweep(&c.dyn);
	row(&c, "once every entry is gone both generations' summaries are as published", summary_restored(&c) &&
	    c.dyn.live == 0, "");
	expect(&c, "and the former IPv6 source passes", "2a01:4f8:1:2::66", XDP_PASS, DP_STAT_PASS);
	printf("{\"summary\":{\"rows\":%d,\"failed\":%d}}\n", c.rows, c.failed);
	dp_dyn_free(&c.dyn);
	wan_guard_bpf__destroy(c.skel);
	return c.failed ? 1 : 0;
}
