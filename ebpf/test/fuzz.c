// SPDX-License-Identifier: Apache-2.0
/*
 * Differential fuzzing of the WAN guard against the reference model (lib/refmodel.c).
 *
 *   fuzz [--frames N] [--seed S]
 *
 * Random tables (every storage class of every table), then N structure-aware frames: valid frames
 * of random shape (VLAN stacks, IPv4 options, fragments, IPv6 extension chains, L4 kinds) from
 * sources biased towards the tables' edges, then byte mutations and truncations. Each frame runs
 * through BPF_PROG_TEST_RUN; its XDP action and drop-reason counter must match the model exactly,
 * and XDP_ABORTED must never happen. At the end of each phase every reason and VLAN counter must
 * equal the model's totals.
 *
 * Rate limiting is made deterministic with a refill rate of 0: a bucket passes `burst` packets and
 * then drops until the harness empties all buckets (every 2048 frames, in the kernel and the model
 * alike). Phases vary the feature switches.
 *
 * The bogon exemptions and the conntrack lookup take part: the harness runs in a network namespace
 * of its own with three links (loopback and two veths), the guard's upstream table holds random
 * prefixes (many inside bogons) for two of them, each frame arrives on a random one of the three,
 * some IPv4 UDP frames carry the DHCPv4 server ports, and conntrack holds UDP flows (made with the
 * conntrack tool, some of them NATed) whose original or reply tuples some frames carry.
 *
 * Prints JSON lines: one per phase, then a summary; a mismatch prints the frame in hex.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"
#include "tables.h"
#include "testlib.h"
#include "upstream.h"
#include "wan_guard.skel.h"

#define SLOT_BITS 10
#define RESET_EVERY 2048

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

static int chance(int percent)
{
	return (int)below(100) < percent;
}

static void mask_prefix(struct dp_pfx *p)
{
	int max = p->family == 4 ? 32 : 128;

	for (int b = p->len; b < max; b++)
		p->addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
}

static void random_addr(int family, uint8_t *a)
{
	uint64_t x = rnd(), y = rnd();

	memcpy(a, &x, 8);
	memcpy(a + 8, &y, 8);
	if (family == 4)
		memset(a + 4, 0, 12);
	else if (chance(60))
		a[0] = (uint8_t)(0x20 | (a[0] & 0x1f)); /* global unicast 2000::/3 */
}

static struct dp_pfx random_prefix(int family, int minlen, int maxlen)
{
	struct dp_pfx p = { .family = (uint8_t)family };

	random_addr(family, p.addr);
	p.len = (uint8_t)(minlen + (int)below((uint32_t)(maxlen - minlen + 1)));
	mask_prefix(&p);
	return p;
}

/* A prefix nested inside a random entry of l (same family), or a fresh one when none fits. */
static struct dp_pfx nested_prefix(const struct dp_pfx_list *l, int family, int minlen, int maxlen)
{
	struct dp_pfx p = random_prefix(family, minlen, maxlen);

	for (int tries = 0; l->n && tries < 16; tries++) {
		const struct dp_pfx *parent = &l->v[below((uint32_t)l->n)];
		int lo = parent->len + 1 > minlen ? parent->len + 1 : minlen;

		if (parent->family != family || lo > maxlen)
			continue;
		p.len = (uint8_t)(lo + (int)below((uint32_t)(maxlen - lo + 1)));
		for (int b = 0; b < parent->len; b++) {
			uint8_t m = (uint8_t)(0x80 >> (b % 8));

			p.addr[b / 8] = (uint8_t)((p.addr[b / 8] & ~m) | (parent->addr[b / 8] & m));
		}
		mask_prefix(&p);
		break;
	}
	return p;
}

static const char countries[][3] = { "AD", "BE", "CH", "DE", "ES", "FR" };

#define N_FLOWS 8

/* A conntrack entry: its original and reply tuples (family 4 or 6, addresses, ports). */
struct flow {
	struct ref_flow orig, reply;
};

struct tables {
	struct dp_pfx_list allow, block, geo, extra;
	char blocked[3][3];
	struct dp_pfx_list defaults; /* built-in bogons, to aim frames at them */
	struct dp_pfx_list up;       /* the upstream prefixes (up_if[i] is the link of up.v[i]) */
	int up_if[64];
	int links[3];                /* ifindex of loopback and the two veths */
	struct flow flows[N_FLOWS];
};

static void gen_tables(struct tables *t)
{
	/* block length bands per family: every storage class of the guard gets entries */
	static const int v4_bands[][2] = { { 8, 16 }, { 17, 24 }, { 24, 24 }, { 25, 31 }, { 32, 32 }, { 32, 32 } };
	static const int v6_bands[][2] = { { 10, 19 }, { 20, 32 },   { 33, 40 },  { 41, 48 }, { 49, 56 },
					   { 57, 64 }, { 65, 127 }, { 128, 128 } };
	char why[64];

	for (int fam = 0; fam < 2; fam++) {
		const char *const *l = fam ? dp_default_bogons6 : dp_default_bogons4;

		for (int i = 0; l[i]; i++) {
			struct dp_pfx p;

			if (!dp_pfx_parse(l[i], &p, why, sizeof(why)))
				dp_pfx_list_push(&t->defaults, &p);
		}
	}
	for (int i = 0; i < 3; i++) {
		struct dp_pfx p4 = random_prefix(4, 8, 32), p6 = random_prefix(6, 16, 64);

		dp_pfx_list_push(&t->extra, &p4);
		dp_pfx_list_push(&t->extra, &p6);
	}
	for (int i = 0; i < 150; i++) {
		const int *b4 = v4_bands[i % 6], *b6 = v6_bands[i % 8];
		struct dp_pfx p4 = chance(40) ? nested_prefix(&t->block, 4, b4[0], b4[1]) : random_prefix(4, b4[0], b4[1]);
		struct dp_pfx p6 = chance(40) ? nested_prefix(&t->block, 6, b6[0], b6[1]) : random_prefix(6, b6[0], b6[1]);

		dp_pfx_list_push(&t->block, &p4);
		dp_pfx_list_push(&t->block, &p6);
	}
	/* allowlist entries: some inside blocklist entries, some inside bogons, some anywhere */
	for (int i = 0; i < 8; i++) {
		for (int fam = 4; fam <= 6; fam += 2) {
			int max = fam == 4 ? 32 : 128, roll = (int)below(3);
			struct dp_pfx p = roll == 0   ? nested_prefix(&t->block, fam, 8, max)
					  : roll == 1 ? nested_prefix(&t->defaults, fam, 8, max)
						      : random_prefix(fam, 8, max);

			dp_pfx_list_push(&t->allow, &p);
		}
	}
	for (int i = 0; i < 80; i++) {
		for (int fam = 4; fam <= 6; fam += 2) {
			struct dp_pfx p = chance(50)   ? nested_prefix(&t->geo, fam, fam == 4 ? 10 : 12, fam == 4 ? 30 : 64)
					  : fam == 4 ? random_prefix(4, 10, 30)
						     : random_prefix(6, 12, 64);
			bool dup = false;

			for (size_t j = 0; j < t->geo.n; j++)
				dup |= t->geo.v[j].family == p.family && t->geo.v[j].len == p.len &&
				       !memcmp(t->geo.v[j].addr, p.addr, 16);
			if (dup)
				continue;
			memcpy(p.cc, countries[below(6)], 2);
			dp_pfx_list_push(&t->geo, &p);
		}
	}
	for (int i = 0; i < 3; i++)
		memcpy(t->blocked[i], countries[i * 2 + (int)below(2)], 3);
	/* upstream prefixes of loopback and the first veth, mostly inside bogons (where they matter) */
	for (int i = 0; i < 24; i++) {
		int fam = i % 2 ? 6 : 4, max = fam == 4 ? 32 : 128;
		struct dp_pfx p = chance(75) ? nested_prefix(&t->defaults, fam, fam == 4 ? 8 : 16, max)
					     : random_prefix(fam, fam == 4 ? 8 : 16, max);

		t->up_if[t->up.n] = t->links[i % 4 < 2 ? 0 : 1];
		dp_pfx_list_push(&t->up, &p);
	}
}

/* Fills a tuple of family fam from a source aimed at the tables, a random destination and ports. */
static void random_tuple(const struct tables *t, int fam, struct ref_flow *f);

/*
 * Conntrack entries: flows of either family, started from either side, half of them NATed (the
 * reply tuple's destination and port differ from the original's source), made with the conntrack
 * tool in this namespace.
 */
static void gen_flows(struct tables *t)
{
	for (int i = 0; i < N_FLOWS; i++) {
		struct flow *f = &t->flows[i];
		int fam = i % 3 == 2 ? 6 : 4;
		char cmd[512], a[4][INET6_ADDRSTRLEN];

		random_tuple(t, fam, &f->orig);
		/* the reply comes from the original's destination */
		f->reply = (struct ref_flow){ .family = fam, .sport = f->orig.dport, .dport = f->orig.sport };
		memcpy(f->reply.src, f->orig.dst, 16);
		memcpy(f->reply.dst, f->orig.src, 16);
		if (i % 2) { /* NAT: the reply goes to another address and port */
			random_addr(fam, f->reply.dst);
			f->reply.dport = (uint16_t)(1024 + below(60000));
		}
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, f->orig.src, a[0], sizeof(a[0]));
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, f->orig.dst, a[1], sizeof(a[1]));
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, f->reply.src, a[2], sizeof(a[2]));
		inet_ntop(fam == 4 ? AF_INET : AF_INET6, f->reply.dst, a[3], sizeof(a[3]));
		snprintf(cmd, sizeof(cmd),
			 "conntrack -I -p udp -s %s -d %s --sport %u --dport %u -r %s -q %s --reply-port-src %u "
			 "--reply-port-dst %u -t 3600 >/dev/null 2>&1",
			 a[0], a[1], f->orig.sport, f->orig.dport, a[2], a[3], f->reply.sport, f->reply.dport);
		if (system(cmd)) {
			fprintf(stderr, "cannot create a conntrack entry: %s\n", cmd);
			exit(2);
		}
	}
}

/* A source aimed at the tables: inside a prefix, just outside one, or random; or a recent one. */
static void pick_source(const struct tables *t, int family, uint8_t *out)
{
	static uint8_t recent[2][64][16];
	static int n_recent[2];
	const struct dp_pfx_list *lists[5] = { &t->allow, &t->block, &t->geo, &t->extra, &t->up };
	int fi = family == 6, roll = (int)below(100);

	if (n_recent[fi] && roll < 25) {
		memcpy(out, recent[fi][below((uint32_t)n_recent[fi])], 16);
		return;
	}
	random_addr(family, out);
	if (roll < 70) {
		const struct dp_pfx_list *l = roll < 35 ? lists[below(5)] : &t->defaults;
		const struct dp_pfx *p = NULL;

		for (int tries = 0; tries < 32 && !p; tries++) {
			const struct dp_pfx *c = &l->v[below((uint32_t)l->n)];

			if (c->family == family)
				p = c;
		}
		if (p) {
			int max = family == 4 ? 32 : 128;

			for (int b = 0; b < p->len; b++) {
				uint8_t m = (uint8_t)(0x80 >> (b % 8));

				out[b / 8] = (uint8_t)((out[b / 8] & ~m) | (p->addr[b / 8] & m));
			}
			if (roll >= 60 && p->len < max) {
				/* just past either end of the prefix */
				int up = chance(50), i = (max / 8) - 1;

				for (int b = p->len; b < max; b++) {
					uint8_t m = (uint8_t)(0x80 >> (b % 8));

					out[b / 8] = (uint8_t)(up ? out[b / 8] | m : out[b / 8] & ~m);
				}
				for (; i >= 0; i--) {
					if (up) {
						if (++out[i])
							break;
					} else if (out[i]--) {
						break;
					}
				}
			}
		}
	}
	memcpy(recent[fi][below(64)], out, 16);
	if (n_recent[fi] < 64)
		n_recent[fi]++;
}

static void random_tuple(const struct tables *t, int fam, struct ref_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = fam;
	pick_source(t, fam, f->src);
	random_addr(fam, f->dst);
	f->sport = (uint16_t)(1 + below(65535));
	f->dport = (uint16_t)(1 + below(65535));
}

/*
 * Ports and addresses of a TCP/UDP frame: usually the defaults; sometimes the DHCPv4 server
 * reply's ports, random ports, or the original or reply tuple of a conntrack flow of the family.
 */
static void pick_ports(const struct tables *t, int fam, struct frame_spec *s)
{
	int roll = (int)below(100);

	if (roll < 8 && fam == 4) {
		s->sport = 67;
		s->dport = 68;
	} else if (roll < 16) {
		s->sport = (uint16_t)below(65536);
		s->dport = (uint16_t)below(65536);
	} else if (roll < 36) {
		const struct flow *f = &t->flows[below(N_FLOWS)];
		const struct ref_flow *tu = chance(70) ? &f->reply : &f->orig;

		if (tu->family != fam)
			return;
		memcpy(s->src, tu->src, 16);
		memcpy(s->dst, tu->dst, 16);
		s->sport = tu->sport;
		s->dport = tu->dport;
	}
}

static size_t gen_frame(const struct tables *t, uint8_t *buf)
{
	struct frame_spec s;
	int roll = (int)below(100), fam = roll < 45 ? 4 : roll < 90 ? 6 : 0;
	int tags = chance(50) ? 0 : chance(50) ? 1 : chance(80) ? 2 : 3;
	size_t len;

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < tags; i++) {
		s.tpid[i] = chance(50) ? 0x8100 : 0x88a8;
		s.vid[i] = (uint16_t)below(4096);
		s.pcp[i] = (uint8_t)below(8);
	}
	s.n_tags = tags;
	s.ethertype = fam == 4 ? 0x0800 : fam == 6 ? 0x86dd : (chance(50) ? 0x0806 : (uint16_t)rnd());
	s.payload = (int)below(48);
	if (fam) {
		pick_source(t, fam, s.src);
		random_addr(fam, s.dst);
		roll = (int)below(100);
		s.proto = roll < 30 ? 6 : roll < 60 ? 17 : roll < 80 ? (fam == 4 ? 1 : 58) : (uint8_t)rnd();
		s.tcp_flags = chance(40) ? 0x02 : (uint8_t)rnd();
		s.icmp_type = chance(50) ? (fam == 4 ? 8 : 128) : (uint8_t)rnd();
		s.frag = chance(80) ? 0 : chance(50) ? 1 : 2;
		if (s.proto == 6 || s.proto == 17)
			pick_ports(t, fam, &s);
	}
	if (fam == 4 && chance(20))
		s.ip_opts = (uint8_t)(4 * (1 + below(10)));
	if (fam == 6 && chance(50)) {
		static const uint8_t kinds[] = { 0, 43, 60, 51, 44 };

		s.n_ext = 1 + (int)below(10);
		for (int i = 0; i < s.n_ext; i++) {
			s.ext[i] = kinds[below(5)];
			s.ext_len[i] = (uint8_t)below(4);
		}
	}
	len = frame_build(&s, buf, NULL);

	/* mutations: truncation and byte flips, anywhere but biased to the headers */
	if (chance(35)) {
		int n = 1 + (int)below(3);

		for (int i = 0; i < n; i++) {
			int kind = (int)below(3);

			if (kind == 0 && len > 14)
				len = 14 + below((uint32_t)(len - 14));
			else if (kind == 1)
				buf[below((uint32_t)len)] = (uint8_t)rnd();
			else
				buf[below((uint32_t)(len < 96 ? len : 96))] ^= (uint8_t)(1u << below(8));
		}
	}
	return len;
}

struct harness {
	struct wan_guard_bpf *skel;
	struct dp_guard_maps maps;
	int prog, stats, vlans;
	uint64_t expect_stat[DP_STAT_MAX][2];
	uint64_t *expect_vlan; /* [DP_VLAN_IDS][2] */
};

static int publish(struct harness *h, const struct tables *t, const struct ref_model *m)
{
	struct dp_table_input in = {
		.allow = &t->allow, .block = &t->block, .geo = &t->geo, .bogon_extra = &t->extra,
		.bogons4 = m->bogons4, .bogons6 = m->bogons6, .blocklist = m->blocklist, .geoip = m->geoip,
		.ratelimit = m->ratelimit, .block_countries = t->blocked, .n_block_countries = 3,
		.syn = { 0, m->burst[1] }, .icmp = { 0, m->burst[2] }, .udp = { 0, m->burst[3] }, .seed = m->seed,
	};
	struct dp_built b;
	struct dp_err err = { "" };
	int rc;

	if (dp_tables_build(&in, &b, &err)) {
		fprintf(stderr, "build: %s\n", err.msg);
		return -1;
	}
	rc = dp_tables_publish(&h->maps, &b, &err);
	dp_built_free(&b);
	if (rc)
		fprintf(stderr, "publish: %s\n", err.msg);
	return rc;
}

static void reset_buckets(struct harness *h, struct ref_model *m)
{
	/* the buckets are in the program's mapped .bss: classes' regions of 2^SLOT_BITS words, one after another */
	for (uint32_t k = 0; k < DP_RL_CLASSES; k++)
		memset(&h->skel->bss->dp_rl_buckets[k << SLOT_BITS], 0, sizeof(uint64_t) << SLOT_BITS);
	ref_reset_buckets(m);
}

static int compare_totals(struct harness *h, const char *phase)
{
	uint64_t v[2], st[DP_STAT_MAX][2];
	int bad = 0;

	if (guard_counters(h->stats, h->vlans, st))
		return 1;
	for (uint32_t s = 0; s < DP_STAT_MAX; s++) {
		if (st[s][0] != h->expect_stat[s][0] || st[s][1] != h->expect_stat[s][1]) {
			printf("{\"phase\":\"%s\",\"counter\":\"%s\",\"packets\":%llu,\"expect_packets\":%llu,\"bytes\":%llu,"
			       "\"expect_bytes\":%llu}\n",
			       phase, ref_verdict_name[s], (unsigned long long)st[s][0], (unsigned long long)h->expect_stat[s][0],
			       (unsigned long long)st[s][1], (unsigned long long)h->expect_stat[s][1]);
			bad++;
		}
	}
	for (uint32_t id = 0; id < DP_VLAN_IDS; id++) {
		percpu_read(h->vlans, id, v, 2);
		if (v[0] != h->expect_vlan[id * 2] || v[1] != h->expect_vlan[id * 2 + 1]) {
			printf("{\"phase\":\"%s\",\"counter\":\"vlan %u\",\"packets\":%llu,\"expect_packets\":%llu}\n", phase, id,
			       (unsigned long long)v[0], (unsigned long long)h->expect_vlan[id * 2]);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint64_t frames = 1000000, seed = 0, done = 0, mismatches = 0, aborted = 0;
	uint64_t verdicts[DP_STAT_MAX] = { 0 };
	struct harness h = { 0 };
	struct tables t = { 0 };
	struct ref_model m = { 0 };
	struct dp_err err = { "" };
	static const struct {
		const char *name;
		bool bogons4, bogons6, blocklist, geoip, ratelimit;
	} phases[] = {
		{ "all checks, rate limiting off", true, true, true, true, false },
		{ "all checks, rate limiting on", true, true, true, true, true },
		{ "IPv4 bogons and geo off", false, true, true, false, true },
		{ "IPv6 bogons and blocklist off", true, false, false, true, false },
	};
	int bad_totals = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--frames") && i + 1 < argc)
			frames = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: fuzz [--frames N] [--seed S]\n");
			return 2;
		}
	}
	if (!seed) {
		FILE *f = fopen("/dev/urandom", "re");

		if (!f || fread(&seed, sizeof(seed), 1, f) != 1)
			seed = 42;
		if (f)
			fclose(f);
	}
	rng_state = seed;
	if (unshare(CLONE_NEWNET) || system("ip link add fzwan0 type veth peer name fzwan1") ||
	    system("ip link add fzwan2 type veth peer name fzwan3")) {
		fprintf(stderr, "cannot set up the fuzzing namespace (root, veth)\n");
		return 2;
	}
	t.links[0] = (int)if_nametoindex("lo");
	t.links[1] = (int)if_nametoindex("fzwan0");
	t.links[2] = (int)if_nametoindex("fzwan2");
	gen_tables(&t);
	gen_flows(&t);

	h.skel = wan_guard_bpf__open();
	if (!h.skel)
		return 2;
	h.skel->rodata->rl_slot_bits = SLOT_BITS;
	h.skel->rodata->ct_replies = 1;
	if (wan_guard_bpf__load(h.skel) || dp_guard_maps_find(h.skel->obj, &h.skel->bss->dp_rt, h.skel->bss->dp_sum, &h.maps, &err)) {
		fprintf(stderr, "cannot load the WAN guard %s\n", err.msg);
		return 2;
	}
	h.prog = bpf_program__fd(h.skel->progs.wan_guard);
	h.stats = bpf_map__fd(h.skel->maps.dp_stats);
	h.vlans = bpf_map__fd(h.skel->maps.dp_vlan_stats);
	h.expect_vlan = calloc(DP_VLAN_IDS * 2, sizeof(uint64_t));

	m.allow = t.allow.v;
	m.n_allow = t.allow.n;
	m.block = t.block.v;
	m.n_block = t.block.n;
	m.geo = t.geo.v;
	m.n_geo = t.geo.n;
	m.bogon_extra = t.extra.v;
	m.n_bogon_extra = t.extra.n;
	m.blocked = t.blocked;
	m.n_blocked = 3;
	m.burst[1] = 2;
	m.burst[2] = 1;
	m.burst[3] = 3;
	m.seed = rnd();
	m.slot_bits = SLOT_BITS;
	if (ref_init(&m) || !h.expect_vlan)
		return 2;
	{
		static struct ref_upstream up[64];
		static struct ref_flow replies[N_FLOWS];
		static struct dp_upstream u;
		struct dp_instance inst = { .wan = h.skel };

		for (size_t i = 0; i < t.up.n; i++) {
			up[i] = (struct ref_upstream){ .ifindex = t.up_if[i], .p = t.up.v[i] };
			u.v[u.n] = (struct dp_up_entry){ .ifindex = t.up_if[i], .family = t.up.v[i].family, .len = t.up.v[i].len };
			memcpy(u.v[u.n++].addr, t.up.v[i].addr, 16);
		}
		for (int i = 0; i < N_FLOWS; i++)
			replies[i] = t.flows[i].reply;
		m.up = up;
		m.n_up = t.up.n;
		m.ct_replies = true;
		m.replies = replies;
		m.n_replies = N_FLOWS;
		if (dp_instance_upstream(&inst, &u, &err)) {
			fprintf(stderr, "%s\n", err.msg);
			return 2;
		}
	}

	for (size_t ph = 0; ph < sizeof(phases) / sizeof(phases[0]); ph++) {
		uint64_t end = frames * (ph + 1) / 4, start = done;

		m.bogons4 = phases[ph].bogons4;
		m.bogons6 = phases[ph].bogons6;
		m.blocklist = phases[ph].blocklist;
		m.geoip = phases[ph].geoip;
		m.ratelimit = phases[ph].ratelimit;
		if (publish(&h, &t, &m))
			return 2;
		reset_buckets(&h, &m);
		for (; done < end; done++) {
			uint8_t f[FRAME_MAX];
			size_t len = gen_frame(&t, f);
			uint16_t vid;
			int link = t.links[below(3)];
			enum ref_verdict want = ref_classify(&m, f, len, link, &vid);
			int act = test_run_on(h.prog, f, len, (uint32_t)link), want_act = want < REF_DROP_MALFORMED ? XDP_PASS : XDP_DROP;
			uint64_t st[DP_STAT_MAX][2], tot[2];
			bool moved = false;

			if ((done - start) % RESET_EVERY == RESET_EVERY - 1)
				reset_buckets(&h, &m);
			h.expect_stat[want][0]++;
			h.expect_stat[want][1] += len;
			h.expect_vlan[vid * 2]++;
			h.expect_vlan[vid * 2 + 1] += len;
			verdicts[want]++;
			aborted += act == XDP_ABORTED;
			/* every reason but clean is counted per frame; clean shows as no reason moving */
			percpu_table(h.stats, DP_STAT_MAX, st, tot);
			for (uint32_t s = DP_STAT_PASS + 1; s < DP_STAT_MAX; s++)
				moved |= st[s][0] != h.expect_stat[s][0];
			if (act != want_act || moved) {
				char hx[2 * FRAME_MAX + 1];
				int got = DP_STAT_PASS;

				for (uint32_t s = DP_STAT_PASS + 1; s < DP_STAT_MAX; s++) {
					if (st[s][0] > h.expect_stat[s][0])
						got = (int)s;
					/* resynchronise so one mismatch is reported once; clean keeps the balance */
					h.expect_stat[DP_STAT_PASS][0] += h.expect_stat[s][0] - st[s][0];
					h.expect_stat[DP_STAT_PASS][1] += h.expect_stat[s][1] - st[s][1];
					h.expect_stat[s][0] = st[s][0];
					h.expect_stat[s][1] = st[s][1];
				}
				hex(f, len, hx, sizeof(hx));
				printf("{\"mismatch\":{\"frame_index\":%llu,\"phase\":\"%s\",\"expect\":\"%s\",\"got\":\"%s\","
				       "\"xdp_action\":%d,\"ingress_ifindex\":%d,\"frame_hex\":\"%s\"}}\n",
				       (unsigned long long)done, phases[ph].name, ref_verdict_name[want], ref_verdict_name[got], act,
				       link, hx);
				if (++mismatches >= 10)
					goto out;
			}
		}
		bad_totals += compare_totals(&h, phases[ph].name);
		printf("{\"phase\":\"%s\",\"frames\":%llu}\n", phases[ph].name, (unsigned long long)(done - start));
	}
out:
	printf("{\"summary\":{\"frames\":%llu,\"seed\":\"%llu\",\"mismatches\":%llu,\"aborted\":%llu,\"counter_mismatches\":%d,"
	       "\"bogons_exempt\":{\"dhcp\":%llu,\"upstream\":%llu},\"verdicts\":{",
	       (unsigned long long)done, (unsigned long long)seed, (unsigned long long)mismatches,
	       (unsigned long long)aborted, bad_totals, (unsigned long long)m.exempt_dhcp,
	       (unsigned long long)m.exempt_upstream);
	for (int s = 0; s < DP_STAT_MAX; s++)
		printf("%s\"%s\":%llu", s ? "," : "", ref_verdict_name[s], (unsigned long long)verdicts[s]);
	printf("}}}\n");
	ref_free(&m);
	wan_guard_bpf__destroy(h.skel);
	return mismatches || aborted || bad_totals ? 1 : 0;
}
