/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Builds the WAN guard's lookup tables in user space and publishes them as one generation.
 *
 * dp_tables_build() turns prefix lists into freshly created inner maps plus a struct dp_gen
 * (flags, rate parameters, country set, /16 gates); dp_tables_publish() writes them into the idle
 * generation and flips dp_runtime.active. Packets see the old generation or the new one, never a
 * mixture, and the old inner maps are freed by the kernel once nothing references them.
 */
#ifndef DP_TABLES_H
#define DP_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/dp_shared.h"
#include "config.h"
#include "prefix.h"
#include "util.h"

struct bpf_object;

enum dp_table_id {
	DP_T_ALLOW4,
	DP_T_BOGON4,
	DP_T_BM24,
	DP_T_HOST4,
	DP_T_MID4,
	DP_T_GEO24,
	DP_T_ALLOW6,
	DP_T_BOGON6,
	DP_T_PFX6,
	DP_T_BLK48,
	DP_T_BLK64,
	DP_T_BLK128,
	DP_T_BLK6LPM,
	DP_T_GEO6,
	DP_T_MAX,
};

/* Name of the outer map of each table in the BPF object. */
extern const char *const dp_table_map_names[DP_T_MAX];

/* Built-in bogon (martian source) lists, NULL-terminated. */
extern const char *const dp_default_bogons4[];
extern const char *const dp_default_bogons6[];

struct dp_table_input {
	const struct dp_pfx_list *allow, *block, *geo, *bogon_extra;
	bool bogons4, bogons6, blocklist, geoip, ratelimit;
	const char (*block_countries)[3];
	int n_block_countries;
	struct dp_rate syn, icmp, udp;
	uint64_t seed;
};

/* Entry counts as parsed (per family), and entries stored per kernel structure, for metrics. */
struct dp_table_sizes {
	size_t allow4, allow6, bogon4, bogon6, block4, block6, geo4, geo6;
	size_t stored[DP_T_MAX]; /* after splitting and expansion (e.g. a /29 becomes 8 /32 keys) */
};

struct dp_built {
	int inner[DP_T_MAX]; /* -1 = no table: the slot is emptied */
	struct dp_gen *gen;  /* rate parameters are filled in at publish (they depend on the clock) */
	struct dp_rate rates[DP_RL_PARAMS];
	__u64 *sum;          /* per-/24 summary: DP_SUM_WORDS IPv4 words, then DP_SUM_WORDS IPv6 words */
	double summary_s;    /* time the summary took to build (benchmark) */
	struct dp_table_sizes sizes;
};

struct dp_guard_maps {
	int outer[DP_T_MAX];
	struct dp_runtime *rt; /* in the program's .bss, mapped */
	__u64 *sum;            /* dp_sum in the program's .bss (both generations) */
	double tick_ns;        /* length of one bucket clock tick (a jiffy) in ns */
	/* called by dp_tables_publish once a generation's summary is written and before it becomes
	 * active (the dynamic blocklist marks its /24s there, dynblock.h); NULL: nothing */
	void (*on_publish)(void *arg, unsigned gen, __u64 *gen_sum);
	void *on_publish_arg;
};

/*
 * Finds the outer maps in a loaded WAN guard object and measures the kernel's jiffy length with
 * the object's dp_clock program (once per process: ~100 ms). rt and sum are the object's dp_rt
 * and dp_sum in its mapped .bss (skeleton: &skel->bss->dp_rt, skel->bss->dp_sum).
 */
int dp_guard_maps_find(struct bpf_object *obj, struct dp_runtime *rt, __u64 *sum, struct dp_guard_maps *m,
		       struct dp_err *err);

/*
 * Builds a generation from in. On failure nothing is left behind and err says why (e.g. a
 * prefix listed with two countries, more than 255 countries).
 */
int dp_tables_build(const struct dp_table_input *in, struct dp_built *out, struct dp_err *err);

/* Publishes b into the idle generation of m and makes it active. */
int dp_tables_publish(const struct dp_guard_maps *m, const struct dp_built *b, struct dp_err *err);

/* Closes b's inner map descriptors (published maps stay alive through the outer maps). */
void dp_built_free(struct dp_built *b);

/* Rate/burst in tokens per second and the clock tick in ns -> the program's fixed-point parameters. */
void dp_rl_params(uint32_t rate, uint32_t burst, double tick_ns, struct dp_rl_params *out);

/*
 * Length of a jiffy in ns, measured by running clock_prog (the WAN guard's dp_clock) twice 100 ms
 * apart and rounding to the nearest CONFIG_HZ the kernel offers (100, 250, 300, 1000). The result
 * is cached for the process. Returns 0 when the program cannot run.
 */
double dp_jiffy_ns(int clock_prog_fd);


#endif /* DP_TABLES_H */
