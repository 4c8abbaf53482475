// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * WAN guard: XDP program for the router's uplinks.
 *
 * Per frame, first decisive match wins:
 *   parse L2 (<= 2 VLAN tags) and the L3 header (malformed -> drop)
 *   1. allowlist              -> pass
 *   2. bogon source           -> drop, unless the frame is a DHCPv4 server reply or the source is
 *                                in the upstream table of the link the frame arrived on
 *   3. blocklist              -> drop
 *   4. geo-IP blocked country -> drop
 *   4b. dynamic blocklist (an IDS alert's source, until its entry expires) -> drop; consulted only
 *      for a /24 the summary does not call clean (user space marks the /24s of live entries)
 *   5. L4 header (malformed -> drop), then per-source token buckets for TCP SYN, ICMP echo
 *      request and UDP -> drop when empty; a UDP frame whose bucket is empty passes after all
 *      when conntrack knows it as a reply to a flow started from this side
 *   otherwise pass.
 * Steps 1-4 start with one load from the per-/24 summary (dp_sum), which settles almost every
 * source without touching the detailed tables; the /16 gates (allowlist, bogons) are read only
 * for a /24 the summary does not call clean. Counters: every frame per outer VLAN id, and every
 * verdict except "clean" per verdict/drop reason (clean = VLAN total - the others). The tables
 * are described in dp_shared.h; user space swaps them a whole generation at a time.
 *
 * DP_ABL_* switches build the variants the benchmark's ablation compares (never loaded by the
 * loader): NO_SUMMARY skips dp_sum; TOKEN_BUCKET uses the earlier token bucket (tokens and a
 * stamp, refilled with a multiply) instead of GCRA, with COARSE_CLOCK reading
 * bpf_ktime_get_coarse_ns instead of jiffies; COUNT_ALL counts clean frames per verdict too.
 *
 * With -DBENCH_RANDOM_SRC the program first overwrites the source address with a pseudo-random
 * one (benchmark of a spoofed flood only; never loaded by the loader).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dp_shared.h"
#include "parse.h"

/* log2([ratelimit] slots); set by the loader before load. */
const volatile __u32 rl_slot_bits = DP_RL_DEFAULT_SLOT_BITS;

/* 1: a UDP source with an empty bucket is looked up in conntrack (set by the loader when the kernel
 * has the kfuncs below; 0 leaves the call as dead code, which the verifier removes). */
const volatile __u32 ct_replies = 0;

/*
 * Conntrack lookup from XDP: kfuncs of net/netfilter/nf_conntrack_bpf.c (Linux >= 6.0). The
 * programs build against the UAPI headers only, so the kfuncs and what they take are declared
 * here. struct nf_conn is opaque to the program (it only goes back to bpf_ct_release), but libbpf
 * matches a kfunc's prototype against the kernel's by kind, so it is a struct and not a forward
 * declaration. struct bpf_ct_opts is the kernel's first 12 bytes (NF_BPF_CT_OPTS_OLD_SZ, accepted
 * by every kernel since 6.0; the conntrack zone fields that follow in newer kernels default to
 * zone 0; a kernel older than the dir field leaves it 0, so every flow looks original and replies
 * are charged). Weak: a kernel without them still loads the program, with ct_replies 0.
 */
struct nf_conn {
	int opaque;
};
struct bpf_ct_opts {
	__s32 netns_id; /* BPF_F_CURRENT_NETNS: the namespace of the frame's device */
	__s32 error;    /* out: -ENOENT when conntrack has no such flow */
	__u8 l4proto;
	__u8 dir;       /* out: the direction of the flow the tuple matched (IP_CT_DIR_*) */
	__u8 reserved[2];
};
extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *ctx, struct bpf_sock_tuple *tuple, __u32 tuple__sz,
					 struct bpf_ct_opts *opts, __u32 opts__sz) __ksym __weak;
extern void bpf_ct_release(struct nf_conn *ct) __ksym __weak;

/* Active generation and per-generation settings; written by user space through the mmap. */
struct dp_runtime dp_rt;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_STAT_MAX);
	__type(key, __u32);
	__type(value, struct dp_counter);
} dp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_VLAN_IDS);
	__type(key, __u32);
	__type(value, struct dp_counter);
} dp_vlan_stats SEC(".maps");

/*
 * Per-/24 summary of every source table, two generations, written by user space through the
 * mmap of .bss; indexed directly (no map lookup, no key on the stack).
 */
__u64 dp_sum[DP_SUM_ENTRIES];

/*
 * Token buckets: class k, slot s at index (k - 1) * slots + s, in .bss (addressed directly: no map
 * lookup, no key through the stack). The array is sized for the largest slot count
 * (DP_RL_MAX_SLOT_BITS, 24 MiB); rl_slot_bits says how much of each class's region the hash
 * spreads over, and the verifier, which knows rl_slot_bits, checks that every index stays inside.
 */
__u64 dp_rl_buckets[DP_RL_CLASSES << DP_RL_MAX_SLOT_BITS];

/* The dynamic blocklist (dp_shared.h); user space sizes both before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DP_DYN_DEFAULT_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} dp_dyn4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DP_DYN_DEFAULT_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} dp_dyn6 SEC(".maps");

/* A map-in-map with n slots of inner (a generation each, or one for the upstream tables). */
#define OUTER_N(name, inner, n)                              \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);    \
		__uint(max_entries, n);                      \
		__type(key, __u32);                          \
		__array(values, inner);                      \
	} name SEC(".maps")
#define OUTER(name, inner) OUTER_N(name, inner, 2)

/* The template of an inner LPM trie (user space sizes each table to its entries). */
#define INNER_LPM(name, key, value)                          \
	struct name {                                        \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);         \
		__uint(max_entries, 1);                      \
		__uint(map_flags, BPF_F_NO_PREALLOC);        \
		__uint(key_size, sizeof(key));               \
		__uint(value_size, sizeof(value));           \
	}

INNER_LPM(inner_lpm4, struct dp_lpm4_key, __u8);
INNER_LPM(inner_lpm6, struct dp_lpm6_key, __u8);
INNER_LPM(inner_geo6, struct dp_lpm6_key, struct dp_geo6_value);
struct inner_bm24 {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_BM24_WORDS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
};
struct inner_geo24 {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_GEO24_VALUES);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dp_geo24_value));
};
struct inner_h32 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u8));
};
struct inner_pfx6 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dp_pfx6_value));
};
struct inner_h64 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(__u8));
};
struct inner_h128 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(struct dp_in6_key));
	__uint(value_size, sizeof(__u8));
};

OUTER(t_allow4, struct inner_lpm4);
OUTER(t_bogon4, struct inner_lpm4);
OUTER(t_bm24, struct inner_bm24);
OUTER(t_host4, struct inner_h32);
OUTER(t_mid4, struct inner_lpm4);
OUTER(t_geo24, struct inner_geo24);
OUTER(t_allow6, struct inner_lpm6);
OUTER(t_bogon6, struct inner_lpm6);
OUTER(t_pfx6, struct inner_pfx6);
OUTER(t_blk48, struct inner_h64);
OUTER(t_blk64, struct inner_h64);
OUTER(t_blk128, struct inner_h128);
OUTER(t_blk6lpm, struct inner_lpm6);
OUTER(t_geo6, struct inner_geo6);

/* The upstream tables (dp_shared.h): one slot each, replaced whole, independent of the generations. */
INNER_LPM(inner_up4, struct dp_up4_key, __u8);
INNER_LPM(inner_up6, struct dp_up6_key, __u8);
OUTER_N(t_up4, struct inner_up4, 1);
OUTER_N(t_up6, struct inner_up6, 1);

#define DHCP_SERVER_PORT 67
#define DHCP_CLIENT_PORT 68

#ifdef BENCH_RANDOM_SRC
#include "bench_rand.h"
#endif

#define CONTINUE (-1)

/* Gate state (4 bits) of the /16 given by top16; see DP_GATE_*. */
static __always_inline __u32 gate_of(const __u64 *gate, __u32 top16)
{
	__u64 w = gate[(top16 >> 4) & (DP_GATE_WORDS - 1)];

	return (w >> ((top16 & 15) * 4)) & 15;
}

/* Verdict of a /16 gate alone: the whole /16 allowlisted, or bogon with no allowlist entry in it. */
static __always_inline int gate_verdict(__u32 gate)
{
	if ((gate & 3) == DP_GATE_FULL)
		return DP_STAT_PASS_ALLOW;
	if ((gate & 3) == DP_GATE_NONE && (gate >> 2) == DP_GATE_FULL)
		return DP_STAT_DROP_BOGON;
	return CONTINUE;
}

/* True when inner LPM table gi of outer holds a prefix covering addr (network order). */
static __always_inline int lpm4_hit(void *outer, __u32 gi, __u32 addr)
{
	struct dp_lpm4_key k = { .prefixlen = 32, .addr = addr };
	void *inner = bpf_map_lookup_elem(outer, &gi);

	return inner && bpf_map_lookup_elem(inner, &k);
}

/* Same for IPv6; addr points at the 16 address bytes on the stack. */
static __always_inline int lpm6_hit(void *outer, __u32 gi, const struct dp_lpm6_key *k)
{
	void *inner = bpf_map_lookup_elem(outer, &gi);

	return inner && bpf_map_lookup_elem(inner, k);
}

/* True when the upstream table lists the IPv4 address addr (network order) for ingress link ifindex. */
static __always_inline int up4_hit(__u32 ifindex, __u32 addr)
{
	struct dp_up4_key k = { .prefixlen = DP_UP_IFINDEX_BITS + 32, .ifindex = ifindex, .addr = addr };
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&t_up4, &zero);

	return inner && bpf_map_lookup_elem(inner, &k);
}

/* Same for an IPv6 address. */
static __always_inline int up6_hit(__u32 ifindex, const struct in6_addr *addr)
{
	struct dp_up6_key k = { .prefixlen = DP_UP_IFINDEX_BITS + 128, .ifindex = ifindex };
	__u32 zero = 0;
	void *inner = bpf_map_lookup_elem(&t_up6, &zero);

	__builtin_memcpy(k.addr, addr, 16);
	return inner && bpf_map_lookup_elem(inner, &k);
}

/*
 * Step 2's exemptions for an IPv4 frame whose source is a bogon (c is past the header and its
 * options): a DHCPv4 server reply (UDP, not a later fragment, port 67 to port 68), which the
 * upstream's DHCP server sends before the WAN has an address to learn its subnet from; or a
 * source the upstream table lists for the link the frame arrived on.
 */
static __always_inline int bogon_exempt4(struct xdp_md *ctx, const struct cursor *c, const struct iphdr *ip)
{
	struct cursor l4 = *c;
	struct udphdr *uh;

	if (ip->protocol == IPPROTO_UDP && !(ip->frag_off & bpf_htons(0x1fff))) {
		uh = cur_pull(&l4, sizeof(*uh));
		if (uh && uh->source == bpf_htons(DHCP_SERVER_PORT) && uh->dest == bpf_htons(DHCP_CLIENT_PORT))
			return 1;
	}
	return up4_hit(ctx->ingress_ifindex, ip->saddr);
}

/* True when the dynamic table map holds key with an expiry still ahead. */
static __always_inline int dyn_hit(void *map, const void *key)
{
	__u64 *exp = bpf_map_lookup_elem(map, key);

	return exp && *exp > bpf_ktime_get_ns();
}

/*
 * Takes one token from the bucket of (class, source key); returns 0 when the packet may pass
 * and the class's drop reason when the bucket is empty (GCRA, see dp_shared.h: one load, a
 * compare and an add). Buckets are updated without locking: two CPUs hitting the same slot at
 * the same instant may lose one update, which only makes the limit approximate.
 */
static __always_inline int rl_take(const struct dp_gen *g, __u32 cls, __u64 key)
{
	const struct dp_rl_params *p = &g->rl[cls & (DP_RL_PARAMS - 1)];
	__u32 bits = rl_slot_bits & 31;
	__u64 idx = ((__u64)(cls - 1) << bits) | (((key ^ g->seed) * DP_RL_HASH_MUL) >> (64 - bits));
	__u64 *b = &dp_rl_buckets[idx];
#ifndef DP_ABL_TOKEN_BUCKET
	__u64 now, tat;

	/* bpf_jiffies64 is inlined by the verifier into one load */
	now = bpf_jiffies64() << DP_RL_TIME_SHIFT;
	tat = *b;
	if ((__s64)(tat - now) < 0)
		tat = now;
	if (tat - now > p->tolerance)
		return DP_STAT_DROP_RL_SYN + cls - DP_RL_SYN;
	*b = tat + p->interval;
	return 0;
#else
	__u32 now, stamp, tok, dt;

#ifdef DP_ABL_COARSE_CLOCK
	now = (__u32)(bpf_ktime_get_coarse_ns() >> 20);
#else
	now = (__u32)bpf_jiffies64();
#endif
	if (!now)
		now = 1;
	stamp = *b >> 32;
	tok = (__u32)*b;
	if (!stamp) {
		tok = p->burst_fp;
	} else {
		__u64 add;

		dt = now - stamp;
		if (dt > p->cap_ticks)
			dt = p->cap_ticks;
		add = ((__u64)dt * p->mult) >> DP_RL_MULT_SHIFT;
		if (tok >= p->burst_fp || add >= p->burst_fp - tok)
			tok = p->burst_fp;
		else
			tok += (__u32)add;
	}
	if (tok < DP_RL_ONE) {
		*b = ((__u64)now << 32) | tok;
		return DP_STAT_DROP_RL_SYN + cls - DP_RL_SYN;
	}
	*b = ((__u64)now << 32) | (tok - DP_RL_ONE);
	return 0;
#endif
}

/* Summary code (DP_SUM_*) of the /24 key24 of family fam (0 = IPv4, 1 = IPv6) in generation gi. */
static __always_inline __attribute__((unused)) __u32 sum_of(__u32 gi, __u32 fam, __u32 key24)
{
	__u32 idx = (gi << 20) | (fam << 19) | ((key24 >> 5) & (DP_SUM_WORDS - 1));

	return (dp_sum[idx & (DP_SUM_ENTRIES - 1)] >> ((key24 & 31) * 2)) & 3;
}

/*
 * A source whose /24 the summary does not call clean takes the rest of its family's path in a
 * separate BPF function (a direct call): the detailed checks, then L4 and the bucket. It re-derives
 * what it needs from the header pointer, so the clean path keeps no value alive across a call and
 * spills no register for it. Without the summary (ablation) that function is the main path and is
 * inlined.
 */
#ifdef DP_ABL_NO_SUMMARY
#define DETAIL static __always_inline
#else
#define DETAIL static __noinline
#endif

/*
 * Steps 1-4 for an IPv4 source (host order) whose /24 the summary does not call clean (code, its
 * summary code; DP_SUM_DETAIL without the summary); a bogon exempt by bogon_exempt4() (c is past
 * the header ip and its options) goes on to the blocklist. CONTINUE when none decides.
 */
static __always_inline int src4_detail(struct xdp_md *ctx, const struct cursor *c, const struct iphdr *ip,
				       const struct dp_gen *g, __u32 gi, __u32 src, __u32 code)
{
	__u32 gate = gate_of(g->gate4, src >> 16);
	__u32 be = bpf_htonl(src);
	__u32 key;

	if (code != DP_SUM_DETAIL) {
		/* the summary's shortcuts: the /16 gate first, then what the code says */
		int r = gate_verdict(gate);

		if (r == DP_STAT_DROP_BOGON && bogon_exempt4(ctx, c, ip))
			r = CONTINUE;
		if (r != CONTINUE)
			return r;
		if (code == DP_SUM_BLOCK)
			return DP_STAT_DROP_BLOCK;
		if (code == DP_SUM_OTHER) {
			void *h = bpf_map_lookup_elem(&t_host4, &gi);

			return h && bpf_map_lookup_elem(h, &src) ? DP_STAT_DROP_BLOCK : CONTINUE;
		}
	}
	if ((gate & 3) == DP_GATE_FULL || ((gate & 3) == DP_GATE_PARTIAL && lpm4_hit(&t_allow4, gi, be)))
		return DP_STAT_PASS_ALLOW;
	if (((gate >> 2) == DP_GATE_FULL || ((gate >> 2) == DP_GATE_PARTIAL && lpm4_hit(&t_bogon4, gi, be))) &&
	    !bogon_exempt4(ctx, c, ip))
		return DP_STAT_DROP_BOGON;

	if (g->flags & DP_F_BLOCK4) {
		void *bm = bpf_map_lookup_elem(&t_bm24, &gi);
		__u64 *w;
		__u32 code = DP_BM24_CLEAN;

		key = src >> 13; /* (src >> 8) / 32 */
		if (bm) {
			w = bpf_map_lookup_elem(bm, &key);
			if (w)
				code = (*w >> (((src >> 8) & 31) * 2)) & 3;
		}
		if (code == DP_BM24_COVERED)
			return DP_STAT_DROP_BLOCK;
		if (code & DP_BM24_HOSTS) {
			void *h = bpf_map_lookup_elem(&t_host4, &gi);

			if (h && bpf_map_lookup_elem(h, &src))
				return DP_STAT_DROP_BLOCK;
			if (code == DP_BM24_MIXED && lpm4_hit(&t_mid4, gi, be))
				return DP_STAT_DROP_BLOCK;
		}
	}

	if (g->flags & DP_F_GEO4) {
		void *geo = bpf_map_lookup_elem(&t_geo24, &gi);
		struct dp_geo24_value *v;
		__u32 cc;

		key = src >> 14; /* (src >> 8) / 64 */
		if (geo) {
			v = bpf_map_lookup_elem(geo, &key);
			if (v) {
				cc = v->cc[(src >> 8) & 63];
				if ((g->geo_blocked[(cc >> 6) & 3] >> (cc & 63)) & 1)
					return DP_STAT_DROP_GEO;
			}
		}
	}
	return CONTINUE;
}

/* Steps 1-4 for an IPv6 source from the detailed tables; a = the first two address words (host
 * order), saddr the source address in the packet. A bogon source is exempt when the upstream table
 * lists it for the frame's ingress link. CONTINUE when none decides. */
static __always_inline int src6_detail(struct xdp_md *ctx, const struct dp_gen *g, __u32 gi,
				       const struct in6_addr *saddr, const __u32 *a)
{
	struct dp_lpm6_key k = { .prefixlen = 128 };
	struct dp_pfx6_value *pv = NULL;
	__u32 gate = gate_of(g->gate6, a[0] >> 16), cc = 0;

	__builtin_memcpy(k.addr, saddr, 16);
	if ((gate & 3) == DP_GATE_FULL || ((gate & 3) == DP_GATE_PARTIAL && lpm6_hit(&t_allow6, gi, &k)))
		return DP_STAT_PASS_ALLOW;
	if (((gate >> 2) == DP_GATE_FULL || ((gate >> 2) == DP_GATE_PARTIAL && lpm6_hit(&t_bogon6, gi, &k))) &&
	    !up6_hit(ctx->ingress_ifindex, saddr))
		return DP_STAT_DROP_BOGON;

	if (!(g->flags & DP_F_PFX6))
		return CONTINUE;

	{
		void *idx = bpf_map_lookup_elem(&t_pfx6, &gi);
		__u32 key32 = a[0];

		if (idx)
			pv = bpf_map_lookup_elem(idx, &key32);
	}
	if (pv) {
		__u32 b = pv->block;

		if (b & DP_B6_COVERED)
			return DP_STAT_DROP_BLOCK;
		if (b & DP_B6_H48) {
			void *h = bpf_map_lookup_elem(&t_blk48, &gi);
			__u64 key = ((__u64)a[0] << 16) | (a[1] >> 16);

			if (h && bpf_map_lookup_elem(h, &key))
				return DP_STAT_DROP_BLOCK;
		}
		if (b & DP_B6_H64) {
			void *h = bpf_map_lookup_elem(&t_blk64, &gi);
			__u64 key = ((__u64)a[0] << 32) | a[1];

			if (h && bpf_map_lookup_elem(h, &key))
				return DP_STAT_DROP_BLOCK;
		}
		if (b & DP_B6_H128) {
			void *h = bpf_map_lookup_elem(&t_blk128, &gi);

			if (h && bpf_map_lookup_elem(h, k.addr))
				return DP_STAT_DROP_BLOCK;
		}
		if ((b & DP_B6_LPM) && lpm6_hit(&t_blk6lpm, gi, &k))
			return DP_STAT_DROP_BLOCK;
		cc = pv->cc;
	} else if ((g->flags & DP_F_BLOCK6_SHORT) && lpm6_hit(&t_blk6lpm, gi, &k)) {
		return DP_STAT_DROP_BLOCK;
	}

	if ((pv && (pv->geo & DP_G6_MIXED)) || (!pv && (g->flags & DP_F_GEO6_SHORT))) {
		void *geo = bpf_map_lookup_elem(&t_geo6, &gi);
		struct dp_geo6_value *gv = geo ? bpf_map_lookup_elem(geo, &k) : NULL;

		if (gv && (!pv || gv->prefixlen > 32))
			cc = gv->cc;
	}
	if (cc && ((g->geo_blocked[(cc >> 6) & 3] >> (cc & 63)) & 1))
		return DP_STAT_DROP_GEO;
	return CONTINUE;
}

/*
 * Walks the IPv6 extension headers (hop-by-hop, routing, destination options, AH, fragment) that
 * follow the fixed header: c is past it and *nh holds its next-header value. Returns -1 when a
 * header is cut short or the chain has more than DP_MAX_EXTHDRS headers; else 0 with *nh the
 * protocol after the chain and c past it, or, for a later fragment (*nonfirst set), the
 * fragment's protocol with c past the fragment header.
 */
static __always_inline int v6_ext_walk(struct cursor *c, __u8 *nh, int *nonfirst)
{
	__u8 n = *nh;

	*nonfirst = 0;
#pragma unroll
	for (int i = 0; i < DP_MAX_EXTHDRS; i++) {
		__u8 *eh;
		__u32 len;

		if (n == IPPROTO_HOPOPTS || n == IPPROTO_ROUTING || n == IPPROTO_DSTOPTS) {
			eh = cur_pull(c, 2);
			if (!eh)
				return -1;
			n = eh[0];
			len = ((__u32)eh[1] + 1) * 8 - 2;
		} else if (n == IPPROTO_AH) {
			eh = cur_pull(c, 2);
			if (!eh)
				return -1;
			n = eh[0];
			len = ((__u32)eh[1] + 2) * 4 - 2;
		} else if (n == IPPROTO_FRAGMENT) {
			eh = cur_pull(c, 8);
			if (!eh)
				return -1;
			n = eh[0];
			if (((eh[2] << 8) | eh[3]) & 0xfff8) {
				*nh = n;
				*nonfirst = 1;
				return 0;
			}
			continue;
		} else {
			break;
		}
		if (!cur_pull(c, len))
			return -1;
	}
	*nh = n;
	/* a chain longer than DP_MAX_EXTHDRS */
	if (n == IPPROTO_HOPOPTS || n == IPPROTO_ROUTING || n == IPPROTO_DSTOPTS || n == IPPROTO_AH ||
	    n == IPPROTO_FRAGMENT)
		return -1;
	return 0;
}

/*
 * True when conntrack knows the UDP frame of ctx as a reply: its tuple matches the reply direction
 * of a flow that was started from this side (by the router, or by a client behind its NAT). Asked
 * only for a frame whose bucket is empty, so a flood from unverified sources pays for no lookup
 * until it is over the limit, and the clean path for none; no state is created. A later fragment
 * has no ports and is never one.
 */
static __noinline int udp_reply(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	struct bpf_ct_opts o = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = IPPROTO_UDP };
	struct bpf_sock_tuple t;
	struct l2_info l2;
	struct udphdr *uh;
	struct nf_conn *ct;
	__u32 tsz;

	__builtin_memset(&t, 0, sizeof(t));
	if (parse_l2(&c, &l2) < 0)
		return 0;
	if (l2.proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur_pull(&c, sizeof(*ip));

		if (!ip || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x1fff)) ||
		    !cur_pull(&c, ((ip->ihl - 5) * 4) & 0x3f) || !(uh = cur_pull(&c, sizeof(*uh))))
			return 0;
		t.ipv4.saddr = ip->saddr;
		t.ipv4.daddr = ip->daddr;
		t.ipv4.sport = uh->source;
		t.ipv4.dport = uh->dest;
		tsz = sizeof(t.ipv4);
	} else if (l2.proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur_pull(&c, sizeof(*ip6));
		int nonfirst;
		__u8 nh;

		if (!ip6)
			return 0;
		nh = ip6->nexthdr;
		if (v6_ext_walk(&c, &nh, &nonfirst) || nonfirst || nh != IPPROTO_UDP || !(uh = cur_pull(&c, sizeof(*uh))))
			return 0;
		__builtin_memcpy(t.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(t.ipv6.daddr, &ip6->daddr, 16);
		t.ipv6.sport = uh->source;
		t.ipv6.dport = uh->dest;
		tsz = sizeof(t.ipv6);
	} else {
		return 0;
	}
	ct = bpf_xdp_ct_lookup(ctx, &t, tsz, &o, sizeof(o));
	if (!ct)
		return 0;
	bpf_ct_release(ct);
	return o.dir == IP_CT_DIR_REPLY;
}

/* L4 and the token bucket of an IPv4 frame whose source passed steps 1-4 (c is past the options). */
static __always_inline int v4_l4(struct cursor *c, const struct iphdr *ip, const struct dp_gen *g, __u32 src)
{
	__u32 cls = DP_RL_NONE;
	int r;

	if ((ip->frag_off & bpf_htons(0x1fff)) == 0) {
		if (ip->protocol == IPPROTO_TCP) {
			struct tcphdr *th = cur_pull(c, sizeof(*th));

			if (!th)
				return DP_STAT_DROP_MALFORMED;
			if (th->syn && !th->ack)
				cls = DP_RL_SYN;
		} else if (ip->protocol == IPPROTO_UDP) {
			if (!cur_pull(c, sizeof(struct udphdr)))
				return DP_STAT_DROP_MALFORMED;
			cls = DP_RL_UDP;
		} else if (ip->protocol == IPPROTO_ICMP) {
			struct icmphdr *ih = cur_pull(c, sizeof(*ih));

			if (!ih)
				return DP_STAT_DROP_MALFORMED;
			if (ih->type == ICMP_ECHO)
				cls = DP_RL_ICMP;
		}
	} else if (ip->protocol == IPPROTO_UDP) {
		cls = DP_RL_UDP; /* non-first fragment: no header, still charged to the UDP bucket */
	}

	if (cls != DP_RL_NONE && (g->flags & DP_F_RATELIMIT)) {
		r = rl_take(g, cls, src);
		if (r)
			return r;
	}
	return DP_STAT_PASS;
}

/*
 * The IPv4 path from the summary on for a /24 it does not call clean (code), for a source in the
 * wholly bogon top of the address space (code DP_SUM_DETAIL), and for every source without the
 * summary: steps 1-4 from the detailed tables, then L4 and the bucket. ip is the validated header
 * (the caller has checked the version and that the options are present).
 */
DETAIL int v4_detail(struct xdp_md *ctx, struct iphdr *ip, __u32 gi, __u32 code)
{
	const struct dp_gen *g = &dp_rt.gen[gi & 1];
	struct cursor c = { .pos = ip, .end = (void *)(long)ctx->data_end };
	__u32 src;
	int r;

	if (!cur_pull(&c, sizeof(*ip)) || !cur_pull(&c, ((ip->ihl - 5) * 4) & 0x3f))
		return DP_STAT_DROP_MALFORMED;
	src = bpf_ntohl(ip->saddr);
	r = src4_detail(ctx, &c, ip, g, gi, src, code);
	if (r == CONTINUE && dyn_hit(&dp_dyn4, &src))
		r = DP_STAT_DROP_DYNAMIC;
	if (r != CONTINUE)
		return r;
	return v4_l4(&c, ip, g, src);
}

/* IPv4 after L2: returns the dp_stat verdict. */
static __always_inline int guard_v4(struct xdp_md *ctx, struct cursor *c, const struct dp_gen *g, __u32 gi)
{
	struct iphdr *ip = cur_pull(c, sizeof(*ip));

	if (!ip)
		return DP_STAT_DROP_MALFORMED;
	/* version 4 without options, nearly every frame, is one compare */
	if (*(__u8 *)ip != 0x45) {
		if (ip->version != 4 || ip->ihl < 5)
			return DP_STAT_DROP_MALFORMED;
		/* the mask keeps the option length visibly bounded for the verifier, whatever the
		 * compiler makes of the subtraction */
		if (!cur_pull(c, ((ip->ihl - 5) * 4) & 0x3f))
			return DP_STAT_DROP_MALFORMED;
	}
#ifdef BENCH_RANDOM_SRC
	ip->saddr = (__u32)bench_next();
#endif
#ifndef DP_ABL_NO_SUMMARY
	__u32 src = bpf_ntohl(ip->saddr), code;

	/* a spoofed flood draws 1/8 of its sources from 224.0.0.0/3: one compare settles them
	 * before the summary, which such random sources would miss in the cache (the detailed path
	 * only for the bogon step's exemptions) */
	if ((__u64)src >= g->bogon4_from)
		return v4_detail(ctx, ip, gi, DP_SUM_DETAIL);
	/* a clean /24 is clean of allowlist and bogon entries too: the /16 gate only after */
	code = sum_of(gi, 0, src >> 8);
	if (code != DP_SUM_CLEAN)
		return v4_detail(ctx, ip, gi, code);
	return v4_l4(c, ip, g, src);
#else
	(void)g;
	return v4_detail(ctx, ip, gi, DP_SUM_DETAIL);
#endif
}

/* Extension headers, L4 and the token bucket of an IPv6 frame whose source passed steps 1-4;
 * key = the first 64 bits of the source (host order). */
static __always_inline int v6_l4(struct cursor *c, const struct ipv6hdr *ip6, const struct dp_gen *g, __u64 key)
{
	__u32 cls = DP_RL_NONE;
	__u8 nh = ip6->nexthdr;
	int r, nonfirst;

	if (v6_ext_walk(c, &nh, &nonfirst))
		return DP_STAT_DROP_MALFORMED;
	if (nonfirst) {
		if (nh == IPPROTO_UDP)
			cls = DP_RL_UDP;
	} else if (nh == IPPROTO_TCP) {
		struct tcphdr *th = cur_pull(c, sizeof(*th));

		if (!th)
			return DP_STAT_DROP_MALFORMED;
		if (th->syn && !th->ack)
			cls = DP_RL_SYN;
	} else if (nh == IPPROTO_UDP) {
		if (!cur_pull(c, sizeof(struct udphdr)))
			return DP_STAT_DROP_MALFORMED;
		cls = DP_RL_UDP;
	} else if (nh == IPPROTO_ICMPV6) {
		struct icmp6hdr *ih = cur_pull(c, sizeof(*ih));

		if (!ih)
			return DP_STAT_DROP_MALFORMED;
		if (ih->icmp6_type == ICMPV6_ECHO_REQUEST)
			cls = DP_RL_ICMP;
	}

	if (cls != DP_RL_NONE && (g->flags & DP_F_RATELIMIT)) {
		r = rl_take(g, cls, key);
		if (r)
			return r;
	}
	return DP_STAT_PASS;
}

/* The IPv6 counterpart of v4_detail; ip6 is the validated header. */
DETAIL int v6_detail(struct xdp_md *ctx, struct ipv6hdr *ip6, __u32 gi, __u32 code)
{
	const struct dp_gen *g = &dp_rt.gen[gi & 1];
	struct cursor c = { .pos = ip6, .end = (void *)(long)ctx->data_end };
	__u32 a[2];
	int r;

	if (!cur_pull(&c, sizeof(*ip6)))
		return DP_STAT_DROP_MALFORMED;
	a[0] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[0]);
	a[1] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[1]);
	if (code != DP_SUM_DETAIL) {
		/* the summary's shortcuts: the /16 gate first, then what the code says */
		r = gate_verdict(gate_of(g->gate6, a[0] >> 16));
		if (r == DP_STAT_DROP_BOGON && up6_hit(ctx->ingress_ifindex, &ip6->saddr))
			r = CONTINUE;
		if (r != CONTINUE)
			return r;
		if (code == DP_SUM_BLOCK)
			return DP_STAT_DROP_BLOCK;
		if (code == DP_SUM_OTHER)
			return DP_STAT_DROP_GEO;
	}
	r = src6_detail(ctx, g, gi, &ip6->saddr, a);
	if (r == CONTINUE) {
		__u64 key = ((__u64)a[0] << 32) | a[1];

		if (dyn_hit(&dp_dyn6, &key))
			return DP_STAT_DROP_DYNAMIC;
		return v6_l4(&c, ip6, g, key);
	}
	return r;
}

/* IPv6 after L2: returns the dp_stat verdict. */
static __always_inline int guard_v6(struct xdp_md *ctx, struct cursor *c, const struct dp_gen *g, __u32 gi)
{
	struct ipv6hdr *ip6 = cur_pull(c, sizeof(*ip6));

	if (!ip6 || ip6->version != 6)
		return DP_STAT_DROP_MALFORMED;
#ifdef BENCH_RANDOM_SRC
	{
		__u64 rnd = bench_next();

		ip6->saddr.in6_u.u6_addr32[0] = (__u32)rnd;
		ip6->saddr.in6_u.u6_addr32[1] = (__u32)(rnd >> 32);
	}
#endif
#ifndef DP_ABL_NO_SUMMARY
	__u32 a0 = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[0]), code = sum_of(gi, 1, a0 >> 8);

	if (code != DP_SUM_CLEAN)
		return v6_detail(ctx, ip6, gi, code);
	return v6_l4(c, ip6, g, ((__u64)a0 << 32) | bpf_ntohl(ip6->saddr.in6_u.u6_addr32[1]));
#else
	(void)g;
	return v6_detail(ctx, ip6, gi, DP_SUM_DETAIL);
#endif
}

/* Adds one frame of len bytes to counter idx of a per-CPU counter array. */
static __always_inline void count(void *map, __u32 idx, __u64 len)
{
	struct dp_counter *ct = bpf_map_lookup_elem(map, &idx);

	if (ct) {
		ct->packets++;
		ct->bytes += len;
	}
}

SEC("xdp")
int wan_guard(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	__u32 gi = dp_rt.active & 1;
	const struct dp_gen *g = &dp_rt.gen[gi];
	struct l2_info l2;
	int verdict;

	if (parse_l2(&c, &l2) < 0)
		verdict = DP_STAT_DROP_MALFORMED;
	else if (l2.proto == bpf_htons(ETH_P_IP))
		verdict = guard_v4(ctx, &c, g, gi);
	else if (l2.proto == bpf_htons(ETH_P_IPV6))
		verdict = guard_v6(ctx, &c, g, gi);
	else
		verdict = DP_STAT_PASS_NONIP;
	/* over its source's UDP limit, but a reply conntrack knows: found again from ctx, so the
	 * checks above keep nothing alive for it */
	if (verdict == DP_STAT_DROP_RL_UDP && ct_replies && udp_reply(ctx))
		verdict = DP_STAT_PASS_REPLY;

	/* the verdict before the VLAN: a reader taking VLAN totals first never over-counts clean;
	 * the length is read from ctx again rather than kept in a register across the checks */
#ifndef DP_ABL_COUNT_ALL
	if (verdict != DP_STAT_PASS)
#endif
		count(&dp_stats, (__u32)verdict, ctx->data_end - ctx->data);
	count(&dp_vlan_stats, l2.outer_vid, ctx->data_end - ctx->data);
	return verdict < DP_STAT_FIRST_DROP ? XDP_PASS : XDP_DROP;
}

/*
 * Clock calibration for the loader (BPF_PROG_TEST_RUN only; never attached): writes the jiffies
 * counter into the first 8 bytes of the frame, which the test run hands back.
 */
SEC("xdp")
int dp_clock(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	__u64 *out = cur_pull(&c, sizeof(*out));

	if (out)
		*out = bpf_jiffies64();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
