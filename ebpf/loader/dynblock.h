/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WAN guard's dynamic blocklist: sources an IDS alert names, each blocked until its entry
 * expires (dp_shared.h, dp_dyn4/dp_dyn6). This side adds entries after checking them against the
 * protected prefixes (allowlist, management, the router's upstream), refuses them when the table is
 * full, removes expired ones, and keeps the per-/24 summary consistent: the /24 of every live entry
 * is marked DP_SUM_DETAIL in both generations (so the guard consults the table for it), and an
 * unmarked /24 gets back the code its generation was published with. The guard's clean path never
 * looks at the table.
 *
 * Single-threaded: the caller serialises every call with the table publishes (the loader's main
 * loop), because both write dp_sum.
 */
#ifndef DP_DYNBLOCK_H
#define DP_DYNBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prefix.h"
#include "tables.h"

#define DP_DYN_MAX_SECONDS (30u * 86400u)

enum dp_dyn_result {
	DP_DYN_ADDED,     /* a new entry */
	DP_DYN_EXTENDED,  /* the source was blocked already; its expiry moved to the later one */
	DP_DYN_PROTECTED, /* a protected prefix covers the source: refused */
	DP_DYN_FULL,      /* the table holds max entries: refused */
	DP_DYN_INVALID,   /* not an address, or a duration outside 1 s .. DP_DYN_MAX_SECONDS */
	DP_DYN_ERROR,     /* the kernel refused the update */
	DP_DYN_RESULTS,
};

extern const char *const dp_dyn_result_name[DP_DYN_RESULTS];

struct dp_dynblock {
	int fd4, fd6;        /* the guard's dp_dyn4 and dp_dyn6 */
	uint32_t max;        /* entries of both families together */
	__u64 *sum;          /* the guard's dp_sum (both generations) */
	__u64 *base;         /* both generations' dp_sum as published, without marks */
	uint64_t *marked[2]; /* per family: one bit per /24 that is marked now */
	size_t live;         /* entries in the tables */
	uint64_t results[DP_DYN_RESULTS];
	uint64_t expired;    /* entries removed by dp_dyn_sweep */
	uint64_t next_exp;   /* earliest expiry (CLOCK_MONOTONIC ns) of an entry in the tables; UINT64_MAX: none */
	/* called by dp_dyn_sweep for each entry it removes (family 4 or 6, the table's key); NULL: nothing */
	void (*on_expired)(void *arg, unsigned family, uint64_t key);
	void *on_expired_arg;
};

/*
 * Sets d up for the guard maps m whose dynamic tables are fd4/fd6 (max entries in all); takes the
 * summary both generations hold now as their base. Returns -1 (err) when memory runs out.
 */
int dp_dyn_init(struct dp_dynblock *d, const struct dp_guard_maps *m, int fd4, int fd6, uint32_t max,
		struct dp_err *err);
void dp_dyn_free(struct dp_dynblock *d);

/*
 * For dp_guard_maps.on_publish: generation gen's summary (gen_sum) was just written and is not yet
 * active; it becomes gen's base and the live /24s are marked in it.
 */
void dp_dyn_on_publish(void *dynblock, unsigned gen, __u64 *gen_sum);

/*
 * Blocks the source addr (an address, no length) for seconds, unless one of the n lists protect[]
 * covers it. An IPv6 source blocks its /64; a protected prefix anywhere inside that /64 refuses it.
 * why (cap bytes) names the covering prefix or the problem.
 */
enum dp_dyn_result dp_dyn_add(struct dp_dynblock *d, const char *addr, uint32_t seconds,
			      const struct dp_pfx_list *const *protect, size_t n, char *why, size_t cap);

/* Removes every entry whose expiry has passed and unmarks /24s left without entries; returns how many went. */
size_t dp_dyn_sweep(struct dp_dynblock *d);

/*
 * Removes every entry, expired or not (blocking turned off), and restores the published summary
 * codes; on_expired is called for each. Returns how many went.
 */
size_t dp_dyn_clear(struct dp_dynblock *d);

/*
 * Takes up the entries already in d's tables (a restart that reused the pinned tables, or entries
 * dp_dyn_copy brought over): marks the /24 of each, sets live and next_exp (an expired entry stays
 * until the sweep, which is then due at once). Returns how many there are.
 */
size_t dp_dyn_resume(struct dp_dynblock *d);

/*
 * Copies the entries of the tables from4/from6 that have not expired into to4/to6 (new programs
 * with differently sized tables take over the blocks), at most max. Returns how many were copied.
 */
size_t dp_dyn_copy(int from4, int from6, int to4, int to6, uint32_t max);

/* Formats a table key (family 4: the address; 6: the first 64 bits, as a /64) as text. */
void dp_dyn_key_format(unsigned family, uint64_t key, char *buf, size_t cap);

#endif /* DP_DYNBLOCK_H */
