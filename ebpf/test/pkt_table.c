// SPDX-License-Identifier: Apache-2.0
/*
 * Packet table for the WAN guard: crafted frames run through BPF_PROG_TEST_RUN against the tables
 * in test/fixtures/tables, each row with its expected verdict and the counter deltas it must cause
 * (drop reason and outer VLAN: +1 packet, +frame length bytes; nothing else moves). Then the bogon
 * exemptions (a DHCPv4 server reply; the upstream table of the link a frame arrives on, which is
 * given to the test run as its ingress link) and the conntrack lookup of UDP replies over their
 * source's limit, against conntrack entries made with the conntrack tool.
 *
 * Runs in a network namespace of its own (the conntrack entries and the links live there).
 *
 *   pkt_table --fixtures DIR
 *
 * Prints one JSON line per row, then {"summary":...}; exits 1 if any row fails.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "dataplane.h"
#include "tables.h"
#include "testlib.h"
#include "upstream.h"
#include "wan_guard.skel.h"
#include "test/wan_guard_nokfunc.skel.h"

struct ctx {
	struct wan_guard_bpf *skel;
	struct dp_guard_maps maps;
	int prog, stats, vlans;
	int rows, failed;
};

struct row {
	const char *group;
	char name[160];
	struct frame_spec spec;
	size_t cut; /* 0 = whole frame */
	int corrupt_version;
	int ifindex; /* ingress link; 0 = the namespace's loopback */
	enum ref_verdict expect;
};

/* Verdict counters as reported (clean derived from the VLAN total). */
static void all_stats(struct ctx *c, uint64_t out[DP_STAT_MAX][2])
{
	if (guard_counters(c->stats, c->vlans, out)) {
		fprintf(stderr, "cannot read the counters\n");
		exit(2);
	}
}

/* Runs one row and checks verdict, reason counter, VLAN counter and that no other counter moved. */
static void run_row(struct ctx *c, const struct row *r)
{
	uint8_t frame[FRAME_MAX];
	struct frame_layout lay;
	size_t len = frame_build(&r->spec, frame, &lay);
	uint64_t before[DP_STAT_MAX][2], after[DP_STAT_MAX][2], vb[2], va[2];
	/* the outer VLAN id is known once its tag is complete */
	uint16_t vid = r->spec.n_tags && (!r->cut || r->cut >= 18) ? r->spec.vid[0] : 0;
	int action, ok = 1, got = -1, moved = 0;
	char why[256] = "";

	if (r->cut)
		len = r->cut;
	if (r->corrupt_version)
		frame[lay.l3_off] = (uint8_t)((frame[lay.l3_off] & 0x0f) | 0x50);
	all_stats(c, before);
	percpu_read(c->vlans, vid, vb, 2);
	action = test_run_on(c->prog, frame, len, (uint32_t)r->ifindex);
	all_stats(c, after);
	percpu_read(c->vlans, vid, va, 2);

	for (int s = 0; s < DP_STAT_MAX; s++) {
		if (after[s][0] != before[s][0]) {
			moved++;
			got = s;
		}
	}
	if (action != (r->expect < REF_DROP_MALFORMED ? XDP_PASS : XDP_DROP)) {
		ok = 0;
		snprintf(why, sizeof(why), "XDP action %d", action);
	} else if (moved != 1 || got != (int)r->expect) {
		ok = 0;
		snprintf(why, sizeof(why), "%d reason counters moved", moved);
	} else if (after[got][1] - before[got][1] != len) {
		ok = 0;
		snprintf(why, sizeof(why), "reason bytes +%llu, frame %zu", (unsigned long long)(after[got][1] - before[got][1]),
			 len);
	} else if (va[0] - vb[0] != 1 || va[1] - vb[1] != len) {
		ok = 0;
		snprintf(why, sizeof(why), "vlan %u counter +%llu packets +%llu bytes", vid,
			 (unsigned long long)(va[0] - vb[0]), (unsigned long long)(va[1] - vb[1]));
	}
	c->rows++;
	c->failed += !ok;
	printf("{\"group\":\"%s\",\"row\":\"%s\",\"expect\":\"%s\",\"got\":\"%s\",\"action\":\"%s\",\"vlan\":%u,\"bytes\":%zu,"
	       "\"ok\":%s%s%s%s}\n",
	       r->group, r->name, ref_verdict_name[r->expect], got >= 0 ? ref_verdict_name[got] : "none",
	       action == XDP_PASS ? "pass" : action == XDP_DROP ? "drop" : action == XDP_ABORTED ? "aborted" : "other", vid, len,
	       ok ? "true" : "false", ok ? "" : ",\"why\":\"", why, ok ? "" : "\"");
}

/* Entries the later groups add to the fixture's blocklist and geo table (inside bogons). */
static struct dp_pfx_list more_block, more_geo;

/* Publishes the fixture tables (plus more_block and more_geo) with the given rate settings. */
static int publish(struct ctx *c, const char *dir, struct dp_rate syn, struct dp_rate icmp, struct dp_rate udp)
{
	static struct dp_pfx_list allow, fix_block, fix_geo, extra;
	struct dp_pfx_list block = { 0 }, geo = { 0 };
	static const char countries[][3] = { "RU", "KP" };
	struct dp_table_input in = { 0 };
	struct dp_built built;
	struct dp_err err = { "" };
	char path[4096];
	int rc;

	if (!allow.n) {
		const struct {
			const char *file;
			enum dp_table_kind kind;
			struct dp_pfx_list *dst;
		} files[] = { { "allow.txt", DP_TABLE_PREFIXES, &allow },
			      { "block.txt", DP_TABLE_PREFIXES, &fix_block },
			      { "geo.txt", DP_TABLE_GEO, &fix_geo },
			      { "bogons-extra.txt", DP_TABLE_PREFIXES, &extra } };

		for (size_t i = 0; i < 4; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i].file);
			if (dp_table_file_load(path, files[i].kind, files[i].dst, &err)) {
				fprintf(stderr, "%s\n", err.msg);
				return -1;
			}
		}
	}
	if (dp_pfx_list_append(&block, &fix_block) || dp_pfx_list_append(&block, &more_block) ||
	    dp_pfx_list_append(&geo, &fix_geo) || dp_pfx_list_append(&geo, &more_geo))
		return -1;
	in.allow = &allow;
	in.block = &block;
	in.geo = &geo;
	in.bogon_extra = &extra;
	in.bogons4 = in.bogons6 = in.blocklist = in.geoip = in.ratelimit = true;
	in.block_countries = countries;
	in.n_block_countries = 2;
	in.syn = syn;
	in.icmp = icmp;
	in.udp = udp;
	in.seed = 1;
	if (dp_tables_build(&in, &built, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	rc = dp_tables_publish(&c->maps, &built, &err);
	dp_built_free(&built);
	dp_pfx_list_free(&block);
	dp_pfx_list_free(&geo);
	if (rc)
		fprintf(stderr, "%s\n", err.msg);
	return rc;
}

struct src_case {
	const char *name;
	const char *v4, *v6; /* NULL = no such case for that family */
	enum ref_verdict expect;
};

static const struct src_case sources[] = {
	{ "clean source", "9.9.9.9", "2620:fe::9", REF_PASS },
	{ "built-in bogon", "10.1.2.3", "fc00::1", REF_DROP_BOGON },
	{ "extra-file bogon", "102.255.1.1", "2620:0:ffff::5", REF_DROP_BOGON },
	{ "blocklisted host (/32, /128)", "45.155.205.233", "2001:19f0:dead::1", REF_DROP_BLOCK },
	{ "blocklisted /24 (IPv4) and /48 (IPv6)", "185.220.101.5", "2a0b:f4c0:100:5::1", REF_DROP_BLOCK },
	{ "blocklisted /27 (IPv4) and /56 (IPv6)", "91.92.240.17", "2a03:b0c0:3:ab::1", REF_DROP_BLOCK },
	{ "next to a /27 (IPv4) and a /56 (IPv6): clean", "91.92.240.40", "2a03:b0c0:3:100::1", REF_PASS },
	{ "blocklisted /22 (IPv4) and /64 (IPv6)", "194.26.30.1", "2a0b:f4c0:200::99", REF_DROP_BLOCK },
	{ "blocklisted IPv6 /29 (expanded /32 keys)", NULL, "2a06:4887:7::1", REF_DROP_BLOCK },
	{ "blocklisted IPv6 /16 (short LPM)", NULL, "2c0f:1234::1", REF_DROP_BLOCK },
	{ "geo-blocked country", "95.173.137.1", "2a02:6b8:1::1", REF_DROP_GEO },
	{ "geo-blocked second country (IPv4) / longer IPv6 geo prefix", "175.45.176.5", "2a0c:9a40:1000::5",
	  REF_DROP_GEO },
	{ "geo country not blocked", "8.8.8.8", "2a0c:9a40:2000::5", REF_PASS },
	{ "allowlisted over a blocklist entry", "185.220.101.77", "2a0b:f4c0:100::1", REF_PASS_ALLOW },
	{ "allowlisted over a bogon", "10.20.30.40", "2001:db8:1::5", REF_PASS_ALLOW },
	/* 224.0.0.0/3 is the run of bogon /16s at the top of the space that one compare drops; the
	 * allowlisted 240.0.0.7 makes it start at 240.1.0.0 */
	{ "bogon at the top of the IPv4 space (multicast)", "224.0.0.251", NULL, REF_DROP_BOGON },
	{ "bogon at the top of the IPv4 space (reserved)", "250.1.2.3", NULL, REF_DROP_BOGON },
	{ "bogon next to an allowlisted host at the top of the space", "240.0.0.8", NULL, REF_DROP_BOGON },
	{ "allowlisted host at the top of the IPv4 space", "240.0.0.7", NULL, REF_PASS_ALLOW },
	{ "broadcast source", "255.255.255.255", NULL, REF_DROP_BOGON },
};

static void with_tags(struct frame_spec *s, int tags)
{
	if (tags >= 1)
		frame_spec_tag(s, tags == 2 ? 0x88a8 : 0x8100, tags == 2 ? 300 : 10);
	if (tags >= 2)
		frame_spec_tag(s, 0x8100, 20);
}

static void table_rows(struct ctx *c)
{
	for (int fam = 4; fam <= 6; fam += 2) {
		const char *dst = fam == 4 ? "100.64.0.1" : "2001:db8:ffff::1";
		const char *clean = fam == 4 ? "9.9.9.9" : "2620:fe::9";
		uint8_t udp = 17, icmp = fam == 4 ? 1 : 58;

		for (int tags = 0; tags <= 2; tags++) {
			struct row r;

			for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
				const char *src = fam == 4 ? sources[i].v4 : sources[i].v6;

				if (!src)
					continue;
				memset(&r, 0, sizeof(r));
				r.group = "sources";
				snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): %s", fam, tags, sources[i].name);
				frame_spec_init(&r.spec, fam, src, dst, udp);
				with_tags(&r.spec, tags);
				r.expect = sources[i].expect;
				run_row(c, &r);
			}

			/* truncated at every header boundary of a tagged TCP SYN */
			{
				struct frame_spec s;
				struct frame_layout lay;
				uint8_t tmp[FRAME_MAX];

				frame_spec_init(&s, fam, clean, dst, 6);
				with_tags(&s, tags);
				s.payload = 0;
				frame_build(&s, tmp, &lay);
				for (int b = 0; b < lay.n; b++) {
					size_t l4_end = 0;

					if (!strcmp(lay.names[b], "end"))
						continue;
					for (int j = 0; j < lay.n; j++)
						if (!strcmp(lay.names[j], "l4"))
							l4_end = lay.bounds[j];
					for (int k = 0; k < 2; k++) {
						size_t cut = lay.bounds[b] - (size_t)k;

						if (cut < 14 || (k == 1 && b > 0 && cut <= lay.bounds[b - 1]))
							continue;
						memset(&r, 0, sizeof(r));
						r.group = "truncated";
						r.spec = s;
						r.cut = cut;
						snprintf(r.name, sizeof(r.name),
							 "IPv%d, %d VLAN tag(s): cut %s the end of the %s header (%zu bytes)", fam, tags,
							 k ? "1 byte before" : "at", lay.names[b], cut);
						/* anything shorter than the end of the TCP header is malformed */
						r.expect = cut >= l4_end ? REF_PASS : REF_DROP_MALFORMED;
						run_row(c, &r);
					}
				}
			}

			/* the allowlist wins even when the L4 header is missing */
			memset(&r, 0, sizeof(r));
			r.group = "truncated";
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): allowlisted source with the TCP header cut off", fam,
				 tags);
			frame_spec_init(&r.spec, fam, fam == 4 ? "10.20.30.40" : "2001:db8:1::5", dst, 6);
			with_tags(&r.spec, tags);
			r.spec.payload = 0;
			{
				uint8_t tmp[FRAME_MAX];
				struct frame_layout lay;

				frame_build(&r.spec, tmp, &lay);
				r.cut = lay.l3_off + (fam == 4 ? 20 : 40) + 10;
			}
			r.expect = REF_PASS_ALLOW;
			run_row(c, &r);

			/* fragments */
			memset(&r, 0, sizeof(r));
			r.group = "fragments";
			frame_spec_init(&r.spec, fam, clean, dst, udp);
			with_tags(&r.spec, tags);
			r.spec.frag = 1;
			if (fam == 6) {
				r.spec.ext[0] = 44;
				r.spec.n_ext = 1;
			}
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): first fragment with its UDP header", fam, tags);
			r.expect = REF_PASS;
			run_row(c, &r);
			r.spec.frag = 2;
			r.spec.proto = 6;
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): later fragment of a TCP segment (no L4 header)",
				 fam, tags);
			run_row(c, &r);
			frame_spec_init(&r.spec, fam, fam == 4 ? "45.155.205.233" : "2001:19f0:dead::1", dst, udp);
			with_tags(&r.spec, tags);
			r.spec.frag = 2;
			if (fam == 6) {
				r.spec.ext[0] = 44;
				r.spec.n_ext = 1;
			}
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): later fragment from a blocklisted source", fam, tags);
			r.expect = REF_DROP_BLOCK;
			run_row(c, &r);

			/* other shapes */
			memset(&r, 0, sizeof(r));
			r.group = "shapes";
			frame_spec_init(&r.spec, fam, clean, dst, icmp);
			with_tags(&r.spec, tags);
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): ICMP echo request", fam, tags);
			r.expect = REF_PASS;
			run_row(c, &r);
			r.corrupt_version = 1;
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): IP version field 5", fam, tags);
			r.expect = REF_DROP_MALFORMED;
			run_row(c, &r);
			if (fam == 4) {
				memset(&r, 0, sizeof(r));
				r.group = "shapes";
				frame_spec_init(&r.spec, 4, clean, dst, 6);
				with_tags(&r.spec, tags);
				r.spec.ip_opts = 12;
				snprintf(r.name, sizeof(r.name), "IPv4, %d VLAN tag(s): TCP SYN after 12 bytes of IP options", tags);
				r.expect = REF_PASS;
				run_row(c, &r);
			}
		}
	}

	/* IPv6 extension header chains (untagged) */
	{
		static const struct {
			const char *name;
			uint8_t ext[12], len[12];
			int n;
			uint8_t proto;
			enum ref_verdict expect;
		} chains[] = {
			{ "hop-by-hop, destination options, routing, then TCP SYN", { 0, 60, 43 }, { 0, 1, 2 }, 3, 6, REF_PASS },
			{ "authentication header then UDP", { 51 }, { 4 }, 1, 17, REF_PASS },
			{ "eight extension headers then TCP (the limit)", { 0, 60, 60, 60, 60, 60, 60, 43 }, { 0 }, 8, 6, REF_PASS },
			{ "nine extension headers (beyond the walk limit, so the L4 header cannot be found)",
			  { 0, 60, 60, 60, 60, 60, 60, 60, 43 }, { 0 }, 9, 6, REF_DROP_MALFORMED },
			{ "no next header (59) after destination options", { 60 }, { 0 }, 1, 59, REF_PASS },
		};

		for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
			struct row r;

			memset(&r, 0, sizeof(r));
			r.group = "ipv6-extension-headers";
			frame_spec_init(&r.spec, 6, "2620:fe::9", "2001:db8:ffff::1", chains[i].proto);
			memcpy(r.spec.ext, chains[i].ext, sizeof(r.spec.ext));
			memcpy(r.spec.ext_len, chains[i].len, sizeof(r.spec.ext_len));
			r.spec.n_ext = chains[i].n;
			snprintf(r.name, sizeof(r.name), "IPv6: %s", chains[i].name);
			r.expect = chains[i].expect;
			run_row(c, &r);
		}
	}

	/* L2 edge cases */
	{
		struct row r;

		memset(&r, 0, sizeof(r));
		r.group = "shapes";
		frame_spec_init(&r.spec, 4, "9.9.9.9", "100.64.0.1", 17);
		frame_spec_tag(&r.spec, 0x88a8, 100);
		frame_spec_tag(&r.spec, 0x8100, 200);
		frame_spec_tag(&r.spec, 0x8100, 300);
		snprintf(r.name, sizeof(r.name), "three VLAN tags (deeper than the guard parses)");
		r.expect = REF_DROP_MALFORMED;
		run_row(c, &r);

		memset(&r, 0, sizeof(r));
		r.group = "shapes";
		frame_spec_init(&r.spec, 0, NULL, NULL, 0);
		frame_spec_tag(&r.spec, 0x8100, 42);
		snprintf(r.name, sizeof(r.name), "ARP in a VLAN: not IP, passed and counted on VLAN 42");
		r.expect = REF_PASS_NONIP;
		run_row(c, &r);
	}
}

/* Sends n copies of a frame; returns how many passed. */
static int burst_of(struct ctx *c, const struct frame_spec *s, int n, int *dropped_reason)
{
	uint8_t frame[FRAME_MAX];
	size_t len = frame_build(s, frame, NULL);
	uint64_t before[DP_STAT_MAX][2], after[DP_STAT_MAX][2];
	int passed = 0;

	all_stats(c, before);
	for (int i = 0; i < n; i++)
		passed += test_run(c->prog, frame, len, 1, NULL) == XDP_PASS;
	all_stats(c, after);
	*dropped_reason = -1;
	for (int st = DP_STAT_FIRST_DROP; st < DP_STAT_MAX; st++)
		if (after[st][0] != before[st][0])
			*dropped_reason = st;
	return passed;
}

static void rate_rows(struct ctx *c)
{
	static const struct {
		const char *name;
		int fam;
		const char *src;
		uint8_t proto;
		int burst;
		enum ref_verdict reason;
	} cls[] = {
		{ "TCP SYN, IPv4", 4, "9.9.9.10", 6, 2, REF_DROP_RL_SYN },
		{ "ICMP echo request, IPv4", 4, "9.9.9.11", 1, 3, REF_DROP_RL_ICMP },
		{ "UDP, IPv4", 4, "9.9.9.12", 17, 4, REF_DROP_RL_UDP },
		{ "TCP SYN, IPv6", 6, "2620:fe::10", 6, 2, REF_DROP_RL_SYN },
		{ "ICMPv6 echo request, IPv6", 6, "2620:fe::11", 58, 3, REF_DROP_RL_ICMP },
		{ "UDP, IPv6", 6, "2620:fe::12", 17, 4, REF_DROP_RL_UDP },
	};
	struct timespec wait = { 0, 300 * 1000 * 1000 };

	/* syn 50/s burst 2, icmp 20/s burst 3, udp 100/s burst 4: 300 ms refill more than fills each */
	if (publish(c, getenv("PKT_FIXTURES"), (struct dp_rate){ 50, 2 }, (struct dp_rate){ 20, 3 },
		    (struct dp_rate){ 100, 4 }))
		exit(2);
	for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
		struct frame_spec s;
		int reason, p1, p2;
		int ok;

		frame_spec_init(&s, cls[i].fam, cls[i].src, cls[i].fam == 4 ? "100.64.0.1" : "2001:db8:ffff::1",
				cls[i].proto);
		p1 = burst_of(c, &s, cls[i].burst + 3, &reason);
		ok = p1 == cls[i].burst && reason == (int)cls[i].reason;
		nanosleep(&wait, NULL);
		p2 = burst_of(c, &s, cls[i].burst + 3, &reason);
		ok = ok && p2 == cls[i].burst && reason == (int)cls[i].reason;
		c->rows++;
		c->failed += !ok;
		printf("{\"group\":\"ratelimit\",\"row\":\"%s: burst %d exhausted, then refilled after 300 ms\",\"expect\":\"%s\","
		       "\"passed_first\":%d,\"passed_after_refill\":%d,\"got\":\"%s\",\"ok\":%s}\n",
		       cls[i].name, cls[i].burst, ref_verdict_name[cls[i].reason], p1, p2,
		       reason >= 0 ? ref_verdict_name[reason] : "none", ok ? "true" : "false");
	}
}

/*
 * Passes of a GCRA bucket (rate/s, burst; starts full) for packets at times ts[] (seconds), with
 * time read from a clock that ticks every tick_s and whose ticks fall at phase (seconds) past the
 * ticks of ts[]' clock: the guard's semantics (README, "Rate limiting") on jiffies.
 */
static int gcra_passes(const double *ts, int n, double tick_s, double phase, double rate, int burst)
{
	double T = 1.0 / rate, tol = (burst - 1) * T, tat = -1e9;
	int passed = 0;

	for (int i = 0; i < n; i++) {
		double now = floor((ts[i] + phase) / tick_s) * tick_s;

		if (tat < now)
			tat = now;
		if (tat - now <= tol + 1e-9) {
			passed++;
			tat += T;
		}
	}
	return passed;
}

/*
 * Sustained rate: UDP from one source every 2 ms for one second against rate 200/s, burst 5. The
 * expected number of passes comes from the send times as they happened (a sender descheduled for
 * longer than the bucket's burst window loses tokens a full bucket cannot hold, as it should): the
 * same GCRA on those times, for every phase of the clock tick, give or take one packet.
 */
#define RATE_PKTS 500
static void rate_row(struct ctx *c)
{
	struct frame_spec s;
	uint8_t frame[FRAME_MAX];
	size_t len;
	struct timespec next, t0, now;
	double ts[RATE_PKTS], tick_s = c->maps.tick_ns / 1e9, max_gap = 0;
	int passed = 0, ok, lo = RATE_PKTS, hi = 0;

	if (publish(c, getenv("PKT_FIXTURES"), (struct dp_rate){ 50, 2 }, (struct dp_rate){ 20, 3 },
		    (struct dp_rate){ 200, 5 }))
		exit(2);
	frame_spec_init(&s, 4, "9.9.9.13", "100.64.0.1", 17);
	len = frame_build(&s, frame, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	next = t0;
	for (int i = 0; i < RATE_PKTS; i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ts[i] = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if (i && ts[i] - ts[i - 1] > max_gap)
			max_gap = ts[i] - ts[i - 1];
		passed += test_run(c->prog, frame, len, 1, NULL) == XDP_PASS;
		next.tv_nsec += 2000000;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	for (int k = 0; k < 64; k++) {
		int n = gcra_passes(ts, RATE_PKTS, tick_s, tick_s * k / 64, 200, 5);

		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	ok = passed >= lo - 1 && passed <= hi + 1;
	c->rows++;
	c->failed += !ok;
	printf("{\"group\":\"ratelimit\",\"row\":\"UDP 200/s burst 5, one packet every 2 ms for a second: burst + rate x time pass\","
	       "\"expect\":\"%d..%d +- 1\",\"passed\":%d,\"elapsed_s\":%.3f,\"longest_gap_ms\":%.1f,\"tick_ms\":%.3f,\"ok\":%s}\n",
	       lo, hi, passed, ts[RATE_PKTS - 1], max_gap * 1000, tick_s * 1000, ok ? "true" : "false");
}

/* Appends the prefix text (with country cc, or NULL) to l; exits on a bad literal in the tables below. */
static void add_pfx(struct dp_pfx_list *l, const char *text, const char *cc)
{
	struct dp_pfx p;
	char why[128];

	if (dp_pfx_parse(text, &p, why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", text, why);
		exit(2);
	}
	if (cc)
		memcpy(p.cc, cc, 2);
	if (dp_pfx_list_push(l, &p))
		exit(2);
}

/* Creates a veth pair in this namespace and returns the ifindex of its first end. */
static int make_link(const char *name, const char *peer)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip link add %s type veth peer name %s", name, peer);
	if (system(cmd)) {
		fprintf(stderr, "cannot create the link %s\n", name);
		exit(2);
	}
	return (int)if_nametoindex(name);
}

/* Runs a command (conntrack); exits when it fails. */
static void must(const char *cmd)
{
	char full[512];

	snprintf(full, sizeof(full), "%s >/dev/null", cmd);
	if (system(full)) {
		fprintf(stderr, "failed: %s\n", cmd);
		exit(2);
	}
}

struct exempt_case {
	const char *name;
	int fam;
	const char *src;
	int on_wan;     /* arrives on the WAN link (else on another link without upstream entries) */
	uint8_t proto;
	uint16_t sport, dport;
	int frag;       /* as frame_spec.frag */
	int cut_l4;     /* the frame ends one byte before the end of its L4 header */
	enum ref_verdict expect;
};

/*
 * The bogon exemptions: the WAN link's upstream table (installed with the loader's own function)
 * and DHCPv4 server replies. The blocklist and geo-IP still apply to an exempt source.
 */
static void exemption_rows(struct ctx *c, int wan, int other)
{
	static const char *const upstream[] = { "192.168.1.0/24", "100.64.0.1/32", "172.16.5.0/24", "fd00:1::/64",
						 "fd00:2::1/128" };
	static const struct exempt_case cases[] = {
		{ "the ISP box (gateway) in the WAN's leased subnet", 4, "192.168.1.1", 1, 17, 0, 0, 0, 0, REF_PASS },
		{ "another host of the upstream subnet (TCP SYN)", 4, "192.168.1.200", 1, 6, 0, 0, 0, 0, REF_PASS },
		{ "the upstream's address arriving on another link", 4, "192.168.1.1", 0, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "next to the upstream subnet", 4, "192.168.2.1", 1, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "a spoofed 10.0.0.0/8 source on the WAN link", 4, "10.1.2.3", 1, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "an on-link gateway (/32 outside the subnet)", 4, "100.64.0.1", 1, 17, 0, 0, 0, 0, REF_PASS },
		{ "next to the on-link gateway", 4, "100.64.0.2", 1, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "a blocklisted host in the upstream subnet (only the bogon step is skipped)", 4, "192.168.1.66", 1, 17, 0, 0,
		  0, 0, REF_DROP_BLOCK },
		{ "an upstream subnet in a blocked country", 4, "172.16.5.9", 1, 17, 0, 0, 0, 0, REF_DROP_GEO },
		{ "an IPv6 host of the upstream ULA prefix", 6, "fd00:1::1", 1, 17, 0, 0, 0, 0, REF_PASS },
		{ "the upstream ULA host arriving on another link", 6, "fd00:1::1", 0, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "another ULA on the WAN link", 6, "fd00:3::1", 1, 17, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "an IPv6 ULA gateway (/128)", 6, "fd00:2::1", 1, 6, 0, 0, 0, 0, REF_PASS },
		{ "next to the ULA gateway", 6, "fd00:2::2", 1, 6, 0, 0, 0, 0, REF_DROP_BOGON },
		{ "a blocklisted host in the upstream ULA prefix", 6, "fd00:1::66", 1, 17, 0, 0, 0, 0, REF_DROP_BLOCK },
		{ "DHCPv4 server reply (67 -> 68) from a private address, no lease yet", 4, "192.168.100.1", 0, 17, 67, 68, 0, 0,
		  REF_PASS },
		{ "DHCPv4 server reply from 0.0.0.0", 4, "0.0.0.0", 0, 17, 67, 68, 0, 0, REF_PASS },
		{ "DHCPv4 server reply from the bogon top of the address space", 4, "250.0.0.9", 0, 17, 67, 68, 0, 0, REF_PASS },
		{ "DHCPv4 server reply in a first fragment", 4, "192.168.100.1", 0, 17, 67, 68, 1, 0, REF_PASS },
		{ "DHCPv4 server reply from a blocklisted bogon", 4, "192.168.1.66", 0, 17, 67, 68, 0, 0, REF_DROP_BLOCK },
		{ "UDP from port 67 to another port than 68", 4, "192.168.100.1", 0, 17, 67, 69, 0, 0, REF_DROP_BOGON },
		{ "UDP to port 68 from another port than 67", 4, "192.168.100.1", 0, 17, 68, 68, 0, 0, REF_DROP_BOGON },
		{ "TCP from port 67 to port 68", 4, "192.168.100.1", 0, 6, 67, 68, 0, 0, REF_DROP_BOGON },
		{ "a later fragment of UDP (no ports to see)", 4, "192.168.100.1", 0, 17, 67, 68, 2, 0, REF_DROP_BOGON },
		{ "a DHCPv4 reply whose UDP header is cut short", 4, "192.168.100.1", 0, 17, 67, 68, 0, 1, REF_DROP_BOGON },
		{ "UDP 547 -> 546 from a ULA (DHCPv6 servers answer from link-local)", 6, "fd00:9::1", 0, 17, 547, 546, 0, 0,
		  REF_DROP_BOGON },
	};
	static struct dp_upstream u;
	struct dp_instance inst = { .wan = c->skel };
	struct dp_err err = { "" };

	add_pfx(&more_block, "192.168.1.66", NULL);
	add_pfx(&more_block, "fd00:1::66", NULL);
	add_pfx(&more_geo, "172.16.5.0/24", "RU");
	if (publish(c, getenv("PKT_FIXTURES"), (struct dp_rate){ 1000000, 1000000 }, (struct dp_rate){ 1000000, 1000000 },
		    (struct dp_rate){ 1000000, 1000000 }))
		exit(2);
	for (size_t i = 0; i < sizeof(upstream) / sizeof(upstream[0]); i++) {
		struct dp_pfx p;
		char why[64];

		if (dp_pfx_parse(upstream[i], &p, why, sizeof(why)))
			exit(2);
		u.v[u.n] = (struct dp_up_entry){ .ifindex = wan, .family = p.family, .len = p.len };
		memcpy(u.v[u.n++].addr, p.addr, 16);
	}
	if (dp_instance_upstream(&inst, &u, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(2);
	}
	for (int tags = 0; tags <= 1; tags++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const struct exempt_case *k = &cases[i];
			struct row r;

			memset(&r, 0, sizeof(r));
			r.group = "bogon-exemptions";
			snprintf(r.name, sizeof(r.name), "IPv%d, %d VLAN tag(s): %s", k->fam, tags, k->name);
			frame_spec_init(&r.spec, k->fam, k->src, k->fam == 4 ? "192.168.1.7" : "fd00:1::7", k->proto);
			with_tags(&r.spec, tags);
			r.spec.sport = k->sport;
			r.spec.dport = k->dport;
			r.spec.frag = k->frag;
			if (k->fam == 6 && k->frag) {
				r.spec.ext[0] = 44;
				r.spec.n_ext = 1;
			}
			if (k->cut_l4) {
				uint8_t tmp[FRAME_MAX];
				struct frame_layout lay;

				r.spec.payload = 0;
				frame_build(&r.spec, tmp, &lay);
				for (int b = 0; b < lay.n; b++)
					if (!strcmp(lay.names[b], "l4"))
						r.cut = lay.bounds[b] - 1;
			}
			r.ifindex = k->on_wan ? wan : other;
			r.expect = k->expect;
			run_row(c, &r);
		}
	}
}

/* Sends n copies of the frame of s on the namespace's loopback; counts[] += the verdicts, per reason. */
static void send_counted(struct ctx *c, const struct frame_spec *s, int n, uint64_t counts[DP_STAT_MAX])
{
	uint64_t before[DP_STAT_MAX][2], after[DP_STAT_MAX][2];
	uint8_t frame[FRAME_MAX];
	size_t len = frame_build(s, frame, NULL);

	all_stats(c, before);
	for (int i = 0; i < n; i++)
		test_run(c->prog, frame, len, 1, NULL);
	all_stats(c, after);
	for (int st = 0; st < DP_STAT_MAX; st++)
		counts[st] += after[st][0] - before[st][0];
}

struct ct_case {
	const char *name;
	int fam;
	const char *src, *dst;
	uint16_t sport, dport;
	int frag;
	int n, clean, reply, limited; /* frames sent; how many pass clean, as conntrack replies, dropped over the limit */
};

/* Runs ct_case k through c (prefix: a label for the row) and prints its row. */
static void ct_row(struct ctx *c, const char *label, const struct ct_case *k)
{
	struct frame_spec s;
	uint64_t got[DP_STAT_MAX] = { 0 };
	int ok;

	frame_spec_init(&s, k->fam, k->src, k->dst, 17);
	s.sport = k->sport;
	s.dport = k->dport;
	s.frag = k->frag;
	send_counted(c, &s, k->n, got);
	ok = got[DP_STAT_PASS] == (uint64_t)k->clean && got[DP_STAT_PASS_REPLY] == (uint64_t)k->reply &&
	     got[DP_STAT_DROP_RL_UDP] == (uint64_t)k->limited;
	c->rows++;
	c->failed += !ok;
	printf("{\"group\":\"conntrack-replies\",\"row\":\"%s%s: %d frames\",\"expect\":\"clean %d, reply %d, ratelimit %d\","
	       "\"got\":\"clean %llu, reply %llu, ratelimit %llu\",\"ok\":%s}\n",
	       label, k->name, k->n, k->clean, k->reply, k->limited, (unsigned long long)got[DP_STAT_PASS],
	       (unsigned long long)got[DP_STAT_PASS_REPLY], (unsigned long long)got[DP_STAT_DROP_RL_UDP],
	       ok ? "true" : "false");
}

/*
 * UDP over its source's limit (rate 1/s, burst 2) against conntrack entries in this namespace:
 * replies of flows started from this side (NATed too) pass without a token, everything else is
 * charged; with the lookup off (a kernel without the kfunc) replies are charged as well.
 */
static void conntrack_rows(struct ctx *c, struct ctx *off)
{
	static const struct ct_case cases[] = {
		{ "reply to a flow the router started", 4, "9.9.9.20", "81.2.69.1", 443, 40000, 0, 10, 2, 8, 0 },
		{ "the same server to another port (unsolicited)", 4, "9.9.9.20", "81.2.69.1", 443, 40001, 0, 5, 0, 0, 5 },
		{ "the same server from another port (not the flow's tuple)", 4, "9.9.9.20", "81.2.69.1", 444, 40000, 0, 3, 0,
		  0, 3 },
		{ "a later fragment from the same server (no ports)", 4, "9.9.9.20", "81.2.69.1", 443, 40000, 2, 3, 0, 0, 3 },
		{ "reply to a LAN client's flow, NATed to the WAN address and port 61000", 4, "9.9.9.21", "81.2.69.1", 443,
		  61000, 0, 10, 2, 8, 0 },
		{ "the remote side of a flow it started (a port forward)", 4, "9.9.9.22", "81.2.69.1", 5353, 51820, 0, 10, 2, 0,
		  8 },
		{ "a source with no flow at all", 4, "9.9.9.23", "81.2.69.1", 443, 40000, 0, 6, 2, 0, 4 },
		{ "IPv6 reply to a flow the router started", 6, "2620:fe::20", "2a01:4f8::1", 443, 40000, 0, 10, 2, 8, 0 },
	};
	static const struct ct_case off_case = { "reply to a flow the router started", 4, "9.9.9.24", "81.2.69.1", 443,
						 40000, 0, 10, 2, 0, 8 };

	must("conntrack -I -p udp -s 81.2.69.1 -d 9.9.9.20 --sport 40000 --dport 443 -t 600");
	must("conntrack -I -p udp -s 192.168.10.5 -d 9.9.9.21 --sport 5000 --dport 443 -r 9.9.9.21 -q 81.2.69.1 "
	     "--reply-port-src 443 --reply-port-dst 61000 -t 600");
	must("conntrack -I -p udp -s 9.9.9.22 -d 81.2.69.1 --sport 5353 --dport 51820 -t 600");
	must("conntrack -I -p udp -s 2a01:4f8::1 -d 2620:fe::20 --sport 40000 --dport 443 -t 600");
	must("conntrack -I -p udp -s 81.2.69.1 -d 9.9.9.24 --sport 40000 --dport 443 -t 600");
	for (struct ctx *x = c; x; x = x == c ? off : NULL)
		if (publish(x, getenv("PKT_FIXTURES"), (struct dp_rate){ 1000000, 1000000 }, (struct dp_rate){ 1000000, 1000000 },
			    (struct dp_rate){ 1, 2 }))
			exit(2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ct_row(c, "", &cases[i]);
	ct_row(off, "conntrack lookups off (a kernel without the kfunc): ", &off_case);
}

/*
 * The guard on a kernel without bpf_xdp_ct_lookup (built with the kfunc renamed to one no kernel
 * has): it loads with the lookup off, and the kernel refuses it with the lookup on, which is when
 * the loader falls back. The loader's kfunc probe finds the real kfunc and not the absent one.
 */
static void kfunc_rows(struct ctx *c)
{
	struct wan_guard_nokfunc_bpf *s;
	int on = -1, offrc = -1;
	bool real = dp_kernel_has_func("bpf_xdp_ct_lookup"), absent = dp_kernel_has_func("dp_test_absent_ct_lookup");
	int ok;

	libbpf_set_print(NULL);
	for (int ct = 1; ct >= 0; ct--) {
		s = wan_guard_nokfunc_bpf__open();
		if (!s)
			exit(2);
		s->rodata->ct_replies = (uint32_t)ct;
		*(ct ? &on : &offrc) = wan_guard_nokfunc_bpf__load(s);
		wan_guard_nokfunc_bpf__destroy(s);
	}
	ok = on != 0 && offrc == 0 && real && !absent;
	c->rows++;
	c->failed += !ok;
	printf("{\"group\":\"conntrack-replies\",\"row\":\"a kernel without the conntrack kfunc: the guard loads with the lookup "
	       "off and is refused with it on; the probe finds bpf_xdp_ct_lookup and not an absent kfunc\","
	       "\"load_on\":%d,\"load_off\":%d,\"probe_real\":%s,\"probe_absent\":%s,\"ok\":%s}\n",
	       on, offrc, real ? "true" : "false", absent ? "true" : "false", ok ? "true" : "false");
}

/* Loads the WAN guard with conntrack lookups on or off into c. */
static void load_guard(struct ctx *c, bool ct)
{
	struct dp_err err = { "" };

	c->skel = wan_guard_bpf__open();
	if (!c->skel)
		exit(2);
	c->skel->rodata->ct_replies = ct;
	if (wan_guard_bpf__load(c->skel) ||
	    dp_guard_maps_find(c->skel->obj, &c->skel->bss->dp_rt, c->skel->bss->dp_sum, &c->maps, &err)) {
		fprintf(stderr, "cannot load the WAN guard: %s\n", err.msg[0] ? err.msg : "verifier");
		exit(2);
	}
	c->prog = bpf_program__fd(c->skel->progs.wan_guard);
	c->stats = bpf_map__fd(c->skel->maps.dp_stats);
	c->vlans = bpf_map__fd(c->skel->maps.dp_vlan_stats);
}

int main(int argc, char **argv)
{
	struct ctx c = { 0 }, off = { 0 };
	const char *fixtures = NULL;
	int wan, other;

	if (argc == 3 && !strcmp(argv[1], "--fixtures"))
		fixtures = argv[2];
	if (!fixtures) {
		fprintf(stderr, "usage: pkt_table --fixtures DIR\n");
		return 2;
	}
	setenv("PKT_FIXTURES", fixtures, 1);
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return 2;
	}
	wan = make_link("pktwan0", "pktwan1");
	other = make_link("pktlan0", "pktlan1");
	load_guard(&c, true);
	load_guard(&off, false);
	/* rate limits far above what the table sends, so only the rate rows exercise them */
	if (publish(&c, fixtures, (struct dp_rate){ 1000000, 1000000 }, (struct dp_rate){ 1000000, 1000000 },
		    (struct dp_rate){ 1000000, 1000000 }))
		return 2;
	table_rows(&c);
	rate_rows(&c);
	rate_row(&c);
	exemption_rows(&c, wan, other);
	conntrack_rows(&c, &off);
	kfunc_rows(&c);
	printf("{\"summary\":{\"rows\":%d,\"failed\":%d}}\n", c.rows, c.failed);
	wan_guard_bpf__destroy(c.skel);
	wan_guard_bpf__destroy(off.skel);
	return c.failed ? 1 : 0;
}
