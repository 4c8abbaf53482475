/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Layouts shared by the BPF programs and the user-space loader.
 *
 * Everything a packet consults is either in the program's .bss (struct dp_runtime: the active
 * generation, per-generation settings and the two /16 gates) or in an inner map reached through an
 * ARRAY_OF_MAPS with one slot per generation. User space builds a complete generation in the idle
 * slot and then flips dp_runtime.active, so a packet reads one generation from start to end.
 */
#ifndef DP_SHARED_H
#define DP_SHARED_H

#include <linux/types.h>

/* Verdict/statistics index. The first two are passes, the rest are drop reasons. */
enum dp_stat {
	DP_STAT_PASS = 0,       /* passed every check */
	DP_STAT_PASS_ALLOW,     /* source on the allowlist: passed without further checks */
	DP_STAT_PASS_NONIP,     /* neither IPv4 nor IPv6: not the guard's business */
	DP_STAT_PASS_REPLY,     /* UDP with its source's bucket empty, but a reply to a flow started from this
				 * side (conntrack): passed without a token */
	DP_STAT_DROP_MALFORMED, /* truncated/invalid header, > 2 VLAN tags, > DP_MAX_EXTHDRS headers */
	DP_STAT_DROP_BOGON,
	DP_STAT_DROP_BLOCK,
	DP_STAT_DROP_GEO,
	DP_STAT_DROP_RL_SYN,
	DP_STAT_DROP_RL_ICMP,
	DP_STAT_DROP_RL_UDP,
	DP_STAT_DROP_DYNAMIC,   /* source on the dynamic blocklist (an IDS alert), entry not yet expired */
	DP_STAT_MAX,
};
#define DP_STAT_FIRST_DROP DP_STAT_DROP_MALFORMED

struct dp_counter {
	__u64 packets;
	__u64 bytes;
};

/* Per-segment counters of the tc programs, indexed by segment_id. */
struct dp_seg_counter {
	__u64 in_packets;
	__u64 in_bytes;
	__u64 out_packets;
	__u64 out_bytes;
};

/*
 * Dynamic blocklist (dp_dyn4, dp_dyn6): sources an IDS alert blocked, each with its expiry in
 * CLOCK_MONOTONIC ns (bpf_ktime_get_ns); an entry whose expiry has passed no longer blocks, whether
 * or not user space has removed it yet. IPv4 keys are the address in host order; IPv6 keys are the
 * first 64 bits in host order (a /64 is one source, as for the rate limits). Outside the
 * generations: user space adds and removes entries one by one, and marks the /24 of every live
 * entry DP_SUM_DETAIL in both generations of dp_sum, so only sources of such a /24 look the tables
 * up (the clean path never does).
 */
#define DP_DYN_DEFAULT_ENTRIES 65536

#define DP_VLAN_IDS 4096        /* index 0 = untagged */
#define DP_MAX_EXTHDRS 8        /* IPv6 extension headers walked before giving up (malformed) */

/*
 * Rate-limit classes. The bucket array holds one region per class, each [ratelimit] slots long:
 * class k, slot s -> index (k - 1) * slots + s, so a flood of one class touches one region only.
 */
enum dp_rl_class {
	DP_RL_NONE = 0,
	DP_RL_SYN = 1,
	DP_RL_ICMP = 2,
	DP_RL_UDP = 3,
};
#define DP_RL_CLASSES 3
#define DP_RL_DEFAULT_SLOT_BITS 18 /* [ratelimit] slots = 262144 unless configured */
#define DP_RL_MAX_SLOT_BITS 20     /* [ratelimit] slots at most 1048576: the bucket array is sized for it */
#define DP_RL_PARAMS 4          /* dp_gen.rl[] is indexed by class (entry 0 unused) */
#define DP_RL_ONE 4096u         /* token-bucket variant: one token in fixed point (12 fractional bits) */
#define DP_RL_MAX_BURST 1048575u
#define DP_RL_MULT_SHIFT 16
#define DP_RL_HASH_MUL 0x9E3779B97F4A7C15ULL
#define DP_RL_TIME_SHIFT 24     /* bucket time unit: 1/2^24 jiffy */

/*
 * Bucket word: the slot's theoretical arrival time (GCRA, the virtual-scheduling form of a token
 * bucket) in units of 1/2^24 jiffy; 0 = never touched (the bucket starts full). A packet at time
 * now conforms when max(tat, now) - now <= tolerance and then moves tat to max(tat, now) +
 * interval: `burst` packets at once, `rate` per second sustained.
 *
 * (Benchmark ablation only, DP_ABL_TOKEN_BUCKET: low 32 bits tokens in fixed point, high 32
 * bits the tick of the last update.)
 */

struct dp_rl_params {
	__u64 interval;  /* time units per token (1/rate) */
	__u64 tolerance; /* (burst - 1) * interval */
	__u64 mult;      /* token-bucket variant: token units added per tick, << DP_RL_MULT_SHIFT */
	__u32 burst_fp;  /* token-bucket variant: burst * DP_RL_ONE */
	__u32 cap_ticks; /* token-bucket variant: ticks after which the bucket is full again anyway */
};

/* dp_gen.flags */
#define DP_F_BLOCK4 (1u << 0)       /* blocklist enabled and the IPv4 tables are in this generation */
#define DP_F_GEO4 (1u << 1)         /* geo enabled and the /24 country table is in this generation */
#define DP_F_PFX6 (1u << 2)         /* the IPv6 /32 index holds block and/or geo data */
#define DP_F_BLOCK6_SHORT (1u << 3) /* IPv6 blocklist has prefixes shorter than DP_PFX6_EXPAND_MIN */
#define DP_F_GEO6_SHORT (1u << 4)   /* IPv6 geo table has prefixes shorter than DP_PFX6_EXPAND_MIN */
#define DP_F_RATELIMIT (1u << 5)

/* /16 gate: 4 bits per /16 (bits 0-1 allowlist, 2-3 bogons), 16 gates per word. */
#define DP_GATE_NONE 0u
#define DP_GATE_FULL 1u    /* one prefix of length <= 16 covers the whole /16 */
#define DP_GATE_PARTIAL 2u /* only longer prefixes inside the /16: ask the LPM */
#define DP_GATE_WORDS 4096

/* IPv4 blocklist /24 code: 2 bits per /24, 32 codes per u64 word. */
#define DP_BM24_CLEAN 0u
#define DP_BM24_COVERED 1u /* a prefix of length <= 24 covers the /24 */
#define DP_BM24_HOSTS 2u   /* /32 entries inside: ask the host hash */
#define DP_BM24_MIXED 3u   /* /25-/31 entries inside (and maybe /32): ask the hash and the LPM */
#define DP_BM24_WORDS (1u << 19)

/*
 * Per-/24 summary (dp_sum, an array in the program's .bss): 2 bits per /24, built in user space
 * from every source-address table at once, so that one load decides the common case. IPv4 is
 * keyed by the /24 of the address, IPv6 by its first 24 bits. Generation g, family f (0 = IPv4,
 * 1 = IPv6), word w at index (g << 20) | (f << 19) | w; 32 codes per word.
 */
#define DP_SUM_CLEAN 0u  /* no allowlist, bogon, blocklist or blocked-country entry touches the /24 */
#define DP_SUM_BLOCK 1u  /* the blocklist covers the /24, and no allowlist or bogon entry touches it */
#define DP_SUM_OTHER 2u  /* IPv4: only /32 blocklist hosts inside: the host hash decides, else clean;
			  * IPv6: every address resolves to a blocked country, nothing earlier touches it */
#define DP_SUM_DETAIL 3u /* anything else: the full checks */
#define DP_SUM_WORDS (1u << 19) /* per family and generation (4 MiB) */
#define DP_SUM_ENTRIES (4u << 19)

/* IPv4 geo: one country index byte per /24 (0 = unknown), 64 per array value. */
#define DP_GEO24_VALUES (1u << 18)
struct dp_geo24_value {
	__u8 cc[64];
};

/*
 * IPv6 /32 index (hash keyed by the first 32 address bits, host order).
 * Block prefixes of length DP_PFX6_EXPAND_MIN..32 are expanded into /32 keys; longer ones set a
 * flag saying which exact-length hash (or the LPM) to ask; shorter ones live in the LPM and are
 * asked only when the /32 has no key and DP_F_BLOCK6_SHORT is set. Geo works the same way.
 */
#define DP_PFX6_EXPAND_MIN 20
#define DP_B6_COVERED (1u << 0)
#define DP_B6_H48 (1u << 1)  /* /41-/48 prefixes expanded to /48 keys */
#define DP_B6_H64 (1u << 2)  /* /57-/64 prefixes expanded to /64 keys */
#define DP_B6_H128 (1u << 3) /* /128 hosts */
#define DP_B6_LPM (1u << 4)  /* /33-/40, /49-/56, /65-/127 */
#define DP_G6_MIXED (1u << 0) /* geo prefixes longer than /32 inside: ask the geo LPM */
struct dp_pfx6_value {
	__u8 block; /* DP_B6_* */
	__u8 geo;   /* DP_G6_* */
	__u8 cc;    /* country of the longest geo prefix of length <= 32 covering this /32 */
	__u8 pad;
};

struct dp_lpm4_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};
struct dp_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};
struct dp_geo6_value {
	__u8 cc;
	__u8 prefixlen;
};
struct dp_in6_key {
	__u8 addr[16];
};

struct dp_gen {
	__u32 flags;
	__u32 pad;
	__u64 seed;                      /* rate-limit hash seed */
	/* IPv4 sources >= this are bogons that no allowlist entry touches (the top of the address
	 * space, 224.0.0.0/3 with the default bogons); 1 << 32 = no such range */
	__u64 bogon4_from;
	struct dp_rl_params rl[DP_RL_PARAMS];
	__u64 geo_blocked[4];            /* bit per country index */
	__u64 gate4[DP_GATE_WORDS];
	__u64 gate6[DP_GATE_WORDS];      /* keyed by the first 16 bits of the IPv6 source */
};

/*
 * Upstream table (t_up4, t_up6: one slot each, an LPM trie the loader replaces whole whenever a
 * WAN link's addresses or default routes change; an empty slot = no entries): the connected
 * prefixes and default gateways of each WAN link, keyed by the ifindex its frames arrive on (the
 * link itself, or each port of a bond). A bogon source listed for the frame's ingress link is
 * exempt from the bogon check (README, "WAN guard semantics"). The key's prefix length counts the
 * 32 ifindex bits, which are always matched whole: prefixlen = 32 + the prefix's length.
 */
struct dp_up4_key {
	__u32 prefixlen;
	__u32 ifindex;
	__u32 addr; /* network order */
};
struct dp_up6_key {
	__u32 prefixlen;
	__u32 ifindex;
	__u8 addr[16];
};
#define DP_UP_IFINDEX_BITS 32

struct dp_runtime {
	__u32 active; /* generation the packets use (0 or 1) */
	__u32 pad;
	struct dp_gen gen[2];
};

/* Segment policy, keyed by ifindex in the tc programs' hash. */
#define DP_SEG_NO_RULE 0xffffffffu
#define DP_SEG_KEEP_DSCP 0xff
struct dp_seg_policy {
	__u32 segment_id;
	__u32 default_priority;
	__u32 dscp_priority[64]; /* DP_SEG_NO_RULE = use default_priority */
	__u8 rewrite_dscp;       /* DP_SEG_KEEP_DSCP = keep */
	__u8 trust_pcp;
	__u8 pcp_dscp[8];        /* 802.1p -> DSCP when trust_pcp */
	__u8 pad[6];
};

#endif /* DP_SHARED_H */
