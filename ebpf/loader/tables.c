// SPDX-License-Identifier: Apache-2.0
#include "tables.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const dp_table_map_names[DP_T_MAX] = {
	[DP_T_ALLOW4] = "t_allow4", [DP_T_BOGON4] = "t_bogon4", [DP_T_BM24] = "t_bm24",
	[DP_T_HOST4] = "t_host4",   [DP_T_MID4] = "t_mid4",     [DP_T_GEO24] = "t_geo24",
	[DP_T_ALLOW6] = "t_allow6", [DP_T_BOGON6] = "t_bogon6", [DP_T_PFX6] = "t_pfx6",
	[DP_T_BLK48] = "t_blk48",   [DP_T_BLK64] = "t_blk64",   [DP_T_BLK128] = "t_blk128",
	[DP_T_BLK6LPM] = "t_blk6lpm", [DP_T_GEO6] = "t_geo6",
};

/* Sources that must never appear on a WAN (RFC 6890 special-purpose, multicast, reserved). */
const char *const dp_default_bogons4[] = {
	"0.0.0.0/8",      "10.0.0.0/8",     "100.64.0.0/10",  "127.0.0.0/8",     "169.254.0.0/16",
	"172.16.0.0/12",  "192.0.0.0/24",   "192.0.2.0/24",   "192.88.99.0/24",  "192.168.0.0/16",
	"198.18.0.0/15",  "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",     "240.0.0.0/4",
	NULL,
};

/*
 * IPv6: loopback, IPv4-mapped, discard-only, benchmarking, ORCHID, documentation, ULA,
 * site-local and multicast. The unspecified address (DAD probes) and link-local (NDP, RA,
 * DHCPv6 from the upstream router) are legitimate on a WAN link and deliberately absent.
 */
const char *const dp_default_bogons6[] = {
	"::1/128",       "::ffff:0:0/96", "100::/64",  "2001:2::/48", "2001:10::/28", "2001:20::/28",
	"2001:db8::/32", "3fff::/20",     "fc00::/7", "fec0::/10",   "ff00::/8",
	NULL,
};

double dp_jiffy_ns(int clock_prog_fd)
{
	static double cached;
	static const int hz[] = { 100, 250, 300, 1000 };
	__u64 j[2];
	double t[2], est, best = 0;

	if (cached > 0)
		return cached;
	for (int i = 0; i < 2; i++) {
		__u8 in[64] = { 0 }, out[64];
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = sizeof(in), .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);

		if (i)
			usleep(100000);
		t[i] = dp_now_mono();
		if (bpf_prog_test_run_opts(clock_prog_fd, &o) || o.data_size_out < 8)
			return 0;
		memcpy(&j[i], out, 8);
	}
	est = (double)(j[1] - j[0]) / (t[1] - t[0]);
	if (est < 50 || est > 2000) {
		errno = ERANGE; /* the counter did not move as a jiffies counter would */
		return 0;
	}
	for (size_t i = 0; i < sizeof(hz) / sizeof(hz[0]); i++)
		if (best == 0 || fabs(est - hz[i]) < fabs(est - best))
			best = hz[i];
	cached = 1e9 / best;
	return cached;
}

int dp_guard_maps_find(struct bpf_object *obj, struct dp_runtime *rt, __u64 *sum, struct dp_guard_maps *m,
		       struct dp_err *err)
{
	struct bpf_program *clock = bpf_object__find_program_by_name(obj, "dp_clock");

	memset(m, 0, sizeof(*m));
	for (int t = 0; t < DP_T_MAX; t++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, dp_table_map_names[t]);

		if (!map || bpf_map__fd(map) < 0)
			return dp_errf(err, "BPF object has no loaded map %s", dp_table_map_names[t]);
		m->outer[t] = bpf_map__fd(map);
	}
	if (!clock || bpf_program__fd(clock) < 0)
		return dp_errf(err, "BPF object has no loaded dp_clock program");
	m->tick_ns = dp_jiffy_ns(bpf_program__fd(clock));
	if (m->tick_ns <= 0)
		return dp_errf(err, "cannot measure the kernel's jiffy with dp_clock: %s", strerror(errno));
	m->rt = rt;
	m->sum = sum;
	return 0;
}

void dp_rl_params(uint32_t rate, uint32_t burst, double tick_ns, struct dp_rl_params *out)
{
	double units_per_tick = (double)rate * (tick_ns / 1e9) * DP_RL_ONE;
	uint64_t interval;

	/* GCRA: time units of 1/2^24 jiffy per token; rate 0 spreads 2^62 units over the burst,
	 * so a token comes back only after 2^38/burst jiffies (17 minutes at HZ 250 for the
	 * largest burst, days for ordinary ones) and tat - now stays below 2^63 */
	if (rate)
		interval = (uint64_t)llround((double)(1ULL << DP_RL_TIME_SHIFT) * 1e9 / (tick_ns * rate));
	else
		interval = (1ULL << 62) / (burst ? burst : 1);
	if (interval == 0)
		interval = 1;
	out->interval = interval;
	out->tolerance = (uint64_t)(burst ? burst - 1 : 0) * interval;
	/* the token-bucket variant of the benchmark's ablation */
	out->mult = (uint64_t)llround(units_per_tick * (double)(1u << DP_RL_MULT_SHIFT));
	out->burst_fp = burst * DP_RL_ONE;
	out->cap_ticks = rate ? (uint32_t)ceil(out->burst_fp / units_per_tick) + 1 : 0;
}

/* ---- generic helpers ------------------------------------------------------------------------ */

/* Creates a map; max_entries is at least 1. */
static int new_map(enum bpf_map_type type, const char *name, uint32_t ksz, uint32_t vsz, size_t entries,
		   uint32_t flags, struct dp_err *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
	int fd = bpf_map_create(type, name, ksz, vsz, entries ? (uint32_t)entries : 1, &o);

	if (fd < 0)
		dp_errf(err, "cannot create map %s (%zu entries): %s", name, entries, strerror(errno));
	return fd;
}

/* Hash sized for n entries (about 1.3 x n, the data decides the size, not a fixed default). */
static int new_hash(const char *name, uint32_t ksz, uint32_t vsz, size_t n, struct dp_err *err)
{
	return new_map(BPF_MAP_TYPE_HASH, name, ksz, vsz, n + n * 3 / 10 + 1, 0, err);
}

/* Writes keys/values [from, to) of n, batched when the map type supports it; 0 or an errno. */
static int fill_range(int fd, const void *keys, const void *vals, size_t from, size_t to, uint32_t ksz, uint32_t vsz)
{
	const size_t chunk = 1u << 16;
	size_t done = from;

	while (done < to) {
		uint32_t cnt = (uint32_t)(to - done < chunk ? to - done : chunk);
		int rc = bpf_map_update_batch(fd, (const char *)keys + done * ksz, (const char *)vals + done * vsz, &cnt,
					      NULL);

		if (rc && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP) && done == from && cnt == 0)
			break; /* no batch support for this map type: element by element below */
		if (rc)
			return errno;
		done += cnt;
	}
	for (; done < to; done++) {
		if (bpf_map_update_elem(fd, (const char *)keys + done * ksz, (const char *)vals + done * vsz, BPF_ANY))
			return errno;
	}
	return 0;
}

struct fill_job {
	int fd;
	const void *keys, *vals;
	size_t from, to;
	uint32_t ksz, vsz;
	int rc;
	bool started;
	pthread_t tid;
};

/* Thread body of fill(): one slice of the entries. */
static void *fill_thread(void *arg)
{
	struct fill_job *j = arg;

	j->rc = fill_range(j->fd, j->keys, j->vals, j->from, j->to, j->ksz, j->vsz);
	return NULL;
}

/*
 * Writes n key/value pairs. Large hashes are filled from one thread per CPU (up to 4): the
 * kernel's per-element insert dominates a million-entry load and hash buckets lock separately.
 */
static int fill(int fd, const void *keys, const void *vals, size_t n, uint32_t ksz, uint32_t vsz, const char *name,
		struct dp_err *err)
{
	struct fill_job jobs[4];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nt = n >= (1u << 18) ? (int)(cpus < 1 ? 1 : cpus > 4 ? 4 : cpus) : 1, rc = 0;

	for (int i = 0; i < nt; i++) {
		jobs[i] = (struct fill_job){ .fd = fd, .keys = keys, .vals = vals, .from = n * (size_t)i / (size_t)nt,
					     .to = n * (size_t)(i + 1) / (size_t)nt, .ksz = ksz, .vsz = vsz };
		if (i > 0)
			jobs[i].started = !pthread_create(&jobs[i].tid, NULL, fill_thread, &jobs[i]);
	}
	fill_thread(&jobs[0]);
	for (int i = 1; i < nt; i++) {
		if (jobs[i].started)
			pthread_join(jobs[i].tid, NULL);
		else
			fill_thread(&jobs[i]);
	}
	for (int i = 0; i < nt; i++)
		rc = rc ? rc : jobs[i].rc;
	if (rc)
		return dp_errf(err, "cannot fill map %s: %s", name, strerror(rc));
	return 0;
}

/* qsort order of 64-bit keys. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* qsort order of 16-byte keys. */
static int cmp_16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Sorts and removes duplicates; returns the new count. */
static size_t uniq(void *v, size_t n, size_t sz, int (*cmp)(const void *, const void *))
{
	size_t out = 0;

	if (!n)
		return 0;
	qsort(v, n, sz, cmp);
	for (size_t i = 1; i < n; i++) {
		if (cmp((char *)v + out * sz, (char *)v + i * sz) != 0) {
			out++;
			if (out != i)
				memcpy((char *)v + out * sz, (char *)v + i * sz, sz);
		}
	}
	return out + 1;
}

/* LPM map from prefixes of one family; the value of each entry comes from valfn(ctx, ...) (or is 1).
 * Returns the map fd, -2 when there is nothing to store, or -1 with err. */
static int build_lpm(const char *name, int family, struct dp_pfx *const *list, size_t n, uint32_t vsz,
		     void (*valfn)(const void *ctx, const struct dp_pfx *, void *), const void *ctx, size_t *stored,
		     struct dp_err *err)
{
	uint32_t ksz = family == 4 ? sizeof(struct dp_lpm4_key) : sizeof(struct dp_lpm6_key);
	uint8_t *keys, *vals;
	int fd;

	*stored = n;
	if (!n)
		return -2;
	keys = calloc(n, ksz);
	vals = calloc(n, vsz);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return dp_errf(err, "%s: out of memory", name);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *k = keys + i * ksz;
		uint32_t plen = list[i]->len;

		memcpy(k, &plen, 4);
		memcpy(k + 4, list[i]->addr, family == 4 ? 4 : 16);
		if (valfn)
			valfn(ctx, list[i], vals + i * vsz);
		else
			vals[i * vsz] = 1;
	}
	fd = new_map(BPF_MAP_TYPE_LPM_TRIE, name, ksz, vsz, n, BPF_F_NO_PREALLOC, err);
	if (fd >= 0 && fill(fd, keys, vals, n, ksz, vsz, name, err)) {
		close(fd);
		fd = -1;
	}
	free(keys);
	free(vals);
	return fd;
}

/* ---- /16 gates -------------------------------------------------------------------------------- */

/* Raises the gate state of /16s covered or touched by p; shift 0 = allowlist, 2 = bogons. */
static void gate_mark(__u64 *gate, const struct dp_pfx *p, unsigned shift)
{
	uint32_t top16 = ((uint32_t)p->addr[0] << 8) | p->addr[1];
	uint32_t first = top16, count = 1, state = DP_GATE_PARTIAL;

	if (p->len <= 16) {
		count = 1u << (16 - p->len);
		first = top16 & ~(count - 1);
		state = DP_GATE_FULL;
	}
	for (uint32_t i = first; i < first + count; i++) {
		__u64 *w = &gate[i >> 4];
		unsigned sh = (i & 15) * 4 + shift;
		uint32_t cur = (*w >> sh) & 3;

		if (cur == DP_GATE_FULL)
			continue;
		*w = (*w & ~(3ULL << sh)) | ((uint64_t)state << sh);
	}
}

/*
 * Sets gen->bogon4_from to the start of the longest run of /16s at the top of the IPv4 space
 * that are wholly bogon with no allowlist entry in them (1 << 32 when the top /16 is not).
 */
static void bogon4_tail(struct dp_gen *gen)
{
	uint32_t i = 1u << 16;

	while (i > 0) {
		uint32_t s = (uint32_t)(gen->gate4[(i - 1) >> 4] >> (((i - 1) & 15) * 4)) & 15;

		if ((s & 3) != DP_GATE_NONE || (s >> 2) != DP_GATE_FULL)
			break;
		i--;
	}
	gen->bogon4_from = (uint64_t)i << 16;
}

/* ---- the build -------------------------------------------------------------------------------- */

struct pfx_ptrs {
	struct dp_pfx **v;
	size_t n, cap;
};

/* Appends a prefix pointer; 0 or -1 (out of memory). */
static int ptrs_push(struct pfx_ptrs *l, struct dp_pfx *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dp_pfx **v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
	return 0;
}

struct key6 {
	uint32_t key;
	uint8_t block;
	uint8_t geo;
	uint8_t cc;
	uint8_t cclen; /* length of the geo prefix that gave cc, +1 (0 = none) */
};

/* qsort order of /32 index records by key. */
static int cmp_key6(const void *a, const void *b)
{
	const struct key6 *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

struct short6 {
	uint32_t top; /* first 32 bits, masked to len */
	uint8_t len;
	uint8_t cc;
};

/* qsort/bsearch order of short IPv6 prefixes: by length, then by their first 32 bits. */
static int cmp_short6(const void *a, const void *b)
{
	const struct short6 *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->top < y->top ? -1 : x->top > y->top;
}

/* Longest entry of sorted short list covering key32, or NULL. */
static const struct short6 *short_lookup(const struct short6 *v, size_t n, uint32_t key32)
{
	for (int len = DP_PFX6_EXPAND_MIN - 1; len >= 0; len--) {
		struct short6 probe = { .top = len ? key32 & ~((1ULL << (32 - len)) - 1) : 0, .len = (uint8_t)len };
		const struct short6 *hit = bsearch(&probe, v, n, sizeof(*v), cmp_short6);

		if (hit)
			return hit;
	}
	return NULL;
}

struct build_ctx {
	const struct dp_table_input *in;
	struct dp_built *out;
	struct dp_err *err;
	uint8_t cc_index[26 * 26]; /* country code -> index (0 = none) */
	int n_cc;
	struct pfx_ptrs allow4, allow6, bogon4, bogon6, block4, block6, geo4, geo6;
	struct dp_pfx_list bogon_defaults;
	uint64_t *bm24; /* the IPv4 blocklist's /24 codes, kept for the summary (NULL = none) */
	uint8_t *cc24;  /* the IPv4 country of every /24, kept for the summary (NULL = none) */
};

/* Country index of a geo entry. */
static uint8_t cc_of(const struct build_ctx *b, const struct dp_pfx *p)
{
	return b->cc_index[(p->cc[0] - 'A') * 26 + (p->cc[1] - 'A')];
}

/* Geo LPM value of an IPv6 entry: its country index and length. */
static void geo6_val(const void *ctx, const struct dp_pfx *p, void *v)
{
	struct dp_geo6_value *g = v;

	g->cc = cc_of(ctx, p);
	g->prefixlen = p->len;
}

/* qsort order of prefix pointers by (length, address): least specific first. */
static int cmp_pfx_ptr(const void *a, const void *b)
{
	const struct dp_pfx *x = *(struct dp_pfx *const *)a, *y = *(struct dp_pfx *const *)b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

/* Assigns country indexes (sorted codes -> 1..N) and rejects a prefix listed with two countries. */
static int geo_prepare(struct build_ctx *b)
{
	bool used[26 * 26] = { false };
	struct pfx_ptrs *lists[2] = { &b->geo4, &b->geo6 };
	char a[64];

	for (int l = 0; l < 2; l++) {
		struct pfx_ptrs *g = lists[l];

		qsort(g->v, g->n, sizeof(*g->v), cmp_pfx_ptr);
		for (size_t i = 0; i < g->n; i++) {
			used[(g->v[i]->cc[0] - 'A') * 26 + (g->v[i]->cc[1] - 'A')] = true;
			if (i && cmp_pfx_ptr(&g->v[i - 1], &g->v[i]) == 0 && memcmp(g->v[i - 1]->cc, g->v[i]->cc, 2)) {
				dp_pfx_format(g->v[i], a, sizeof(a));
				return dp_errf(b->err, "geo: %s is listed with two countries, %.2s and %.2s", a,
					       g->v[i - 1]->cc, g->v[i]->cc);
			}
		}
	}
	for (int i = 0; i < 26 * 26; i++) {
		if (!used[i])
			continue;
		if (b->n_cc == 255)
			return dp_errf(b->err, "geo: more than 255 different countries");
		b->cc_index[i] = (uint8_t)++b->n_cc;
	}
	for (int i = 0; i < b->in->n_block_countries; i++) {
		const char *c = b->in->block_countries[i];
		uint8_t idx = b->cc_index[(c[0] - 'A') * 26 + (c[1] - 'A')];

		if (idx)
			b->out->gen->geo_blocked[idx >> 6] |= 1ULL << (idx & 63);
	}
	return 0;
}

/* IPv4 blocklist: /24 codes, /32 hash and /25-/31 LPM. */
static int build_block4(struct build_ctx *b)
{
	uint64_t *bm = calloc(DP_BM24_WORDS, sizeof(uint64_t));
	uint32_t *keys = NULL, *idx = NULL;
	uint8_t *ones = NULL;
	struct pfx_ptrs mid = { 0 };
	size_t nhost = 0;
	int rc = -1;

#define CODE(i) ((bm[(i) >> 5] >> (((i) & 31) * 2)) & 3)
#define SET(i, c) (bm[(i) >> 5] = (bm[(i) >> 5] & ~(3ULL << (((i) & 31) * 2))) | ((uint64_t)(c) << (((i) & 31) * 2)))
	if (!bm)
		return dp_errf(b->err, "blocklist: out of memory");
	for (size_t i = 0; i < b->block4.n; i++) {
		const struct dp_pfx *p = b->block4.v[i];
		uint32_t a = dp_pfx_v4(p);

		if (p->len <= 24) {
			uint32_t count = 1u << (24 - p->len), first = (a >> 8) & ~(count - 1);

			for (uint32_t s = first; s < first + count; s++)
				SET(s, DP_BM24_COVERED);
		}
	}
	keys = malloc(b->block4.n * sizeof(*keys) + 1);
	if (!keys) {
		dp_errf(b->err, "blocklist: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->block4.n; i++) {
		struct dp_pfx *p = b->block4.v[i];
		uint32_t a = dp_pfx_v4(p), s = a >> 8, c = CODE(s);

		if (p->len <= 24 || c == DP_BM24_COVERED)
			continue;
		if (p->len == 32) {
			keys[nhost++] = a;
			if (c == DP_BM24_CLEAN)
				SET(s, DP_BM24_HOSTS);
		} else {
			if (ptrs_push(&mid, p)) {
				dp_errf(b->err, "blocklist: out of memory");
				goto out;
			}
			SET(s, DP_BM24_MIXED);
		}
	}
	/* duplicates are harmless (the batch update overwrites) and cheaper than sorting a million keys */

	idx = malloc(DP_BM24_WORDS * sizeof(*idx));
	if (!idx) {
		dp_errf(b->err, "blocklist: out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < DP_BM24_WORDS; i++)
		idx[i] = i;
	b->out->inner[DP_T_BM24] = new_map(BPF_MAP_TYPE_ARRAY, "dp_bm24", 4, 8, DP_BM24_WORDS, 0, b->err);
	if (b->out->inner[DP_T_BM24] < 0 ||
	    fill(b->out->inner[DP_T_BM24], idx, bm, DP_BM24_WORDS, 4, 8, "dp_bm24", b->err))
		goto out;
	b->out->sizes.stored[DP_T_BM24] = DP_BM24_WORDS;

	if (nhost) {
		ones = malloc(nhost);
		if (!ones) {
			dp_errf(b->err, "blocklist: out of memory");
			goto out;
		}
		memset(ones, 1, nhost);
		b->out->inner[DP_T_HOST4] = new_hash("dp_host4", 4, 1, nhost, b->err);
		if (b->out->inner[DP_T_HOST4] < 0 ||
		    fill(b->out->inner[DP_T_HOST4], keys, ones, nhost, 4, 1, "dp_host4", b->err))
			goto out;
		b->out->sizes.stored[DP_T_HOST4] = nhost;
	}
	if (mid.n) {
		b->out->inner[DP_T_MID4] =
			build_lpm("dp_mid4", 4, mid.v, mid.n, 1, NULL, NULL, &b->out->sizes.stored[DP_T_MID4], b->err);
		if (b->out->inner[DP_T_MID4] < 0)
			goto out;
	}
	b->out->gen->flags |= DP_F_BLOCK4;
	b->bm24 = bm;
	bm = NULL;
	rc = 0;
out:
#undef CODE
#undef SET
	free(bm);
	free(keys);
	free(idx);
	free(ones);
	free(mid.v);
	return rc;
}

/* IPv4 geo: one country byte per /24; entries longer than /24 paint their whole /24, and the
 * most specific entry wins (entries are sorted by length, then address). */
static int build_geo4(struct build_ctx *b)
{
	uint8_t *cc = calloc(1u << 24, 1);
	uint32_t *idx = malloc(DP_GEO24_VALUES * sizeof(*idx));
	int rc = -1;

	if (!cc || !idx) {
		dp_errf(b->err, "geo: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->geo4.n; i++) {
		const struct dp_pfx *p = b->geo4.v[i];
		uint32_t a = dp_pfx_v4(p) >> 8, count = p->len >= 24 ? 1 : 1u << (24 - p->len);
		uint32_t first = a & ~(count - 1);

		memset(cc + first, cc_of(b, p), count);
	}
	for (uint32_t i = 0; i < DP_GEO24_VALUES; i++)
		idx[i] = i;
	b->out->inner[DP_T_GEO24] =
		new_map(BPF_MAP_TYPE_ARRAY, "dp_geo24", 4, sizeof(struct dp_geo24_value), DP_GEO24_VALUES, 0, b->err);
	if (b->out->inner[DP_T_GEO24] < 0 || fill(b->out->inner[DP_T_GEO24], idx, cc, DP_GEO24_VALUES, 4,
						   sizeof(struct dp_geo24_value), "dp_geo24", b->err))
		goto out;
	b->out->sizes.stored[DP_T_GEO24] = DP_GEO24_VALUES;
	b->out->gen->flags |= DP_F_GEO4;
	b->cc24 = cc;
	cc = NULL;
	rc = 0;
out:
	free(cc);
	free(idx);
	return rc;
}

/* Pushes a /32 index record; grows the array. */
static int key6_push(struct key6 **v, size_t *n, size_t *cap, struct key6 k)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 1024;
		struct key6 *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = k;
	return 0;
}

/* IPv6 blocklist and geo: the /32 index and the tables it points to. */
static int build_v6(struct build_ctx *b)
{
	struct key6 *recs = NULL;
	size_t nrec = 0, caprec = 0, n48 = 0, n64 = 0, n128 = 0, nshort_b = 0, nshort_g = 0;
	uint64_t *k48 = NULL, *k64 = NULL;
	uint8_t (*k128)[16] = NULL, *ones = NULL;
	struct short6 *sb = NULL, *sg = NULL;
	struct pfx_ptrs lpmb = { 0 }, lpmg = { 0 };
	const struct pfx_ptrs *blk = &b->block6, *geo = &b->geo6;
	size_t max48 = 1, max64 = 1;
	int rc = -1;

	for (size_t i = 0; i < blk->n; i++) {
		if (blk->v[i]->len >= 41 && blk->v[i]->len <= 48)
			max48 += 1u << (48 - blk->v[i]->len);
		else if (blk->v[i]->len >= 57 && blk->v[i]->len <= 64)
			max64 += 1u << (64 - blk->v[i]->len);
	}
	k48 = malloc(max48 * sizeof(*k48));
	k64 = malloc(max64 * sizeof(*k64));
	k128 = malloc((blk->n + 1) * sizeof(*k128));
	sb = malloc((blk->n + 1) * sizeof(*sb));
	sg = malloc((geo->n + 1) * sizeof(*sg));
	if (!k48 || !k64 || !k128 || !sb || !sg)
		goto oom;

	for (size_t i = 0; i < blk->n; i++) {
		struct dp_pfx *p = blk->v[i];
		uint32_t w0 = dp_pfx_w6(p, 0), w1 = dp_pfx_w6(p, 1);
		struct key6 r = { .key = w0 };

		if (p->len < DP_PFX6_EXPAND_MIN) {
			sb[nshort_b++] = (struct short6){ .top = w0, .len = p->len };
			if (ptrs_push(&lpmb, p))
				goto oom;
			continue;
		}
		if (p->len <= 32) {
			uint32_t count = 1u << (32 - p->len);

			for (uint32_t j = 0; j < count; j++) {
				r.key = w0 + j;
				r.block = DP_B6_COVERED;
				if (key6_push(&recs, &nrec, &caprec, r))
					goto oom;
			}
			continue;
		}
		if (p->len >= 41 && p->len <= 48) {
			uint64_t base = ((uint64_t)w0 << 16) | (w1 >> 16);
			uint32_t count = 1u << (48 - p->len);

			for (uint32_t j = 0; j < count; j++)
				k48[n48++] = base + j;
			r.block = DP_B6_H48;
		} else if (p->len >= 57 && p->len <= 64) {
			uint64_t base = ((uint64_t)w0 << 32) | w1;
			uint32_t count = 1u << (64 - p->len);

			for (uint32_t j = 0; j < count; j++)
				k64[n64++] = base + j;
			r.block = DP_B6_H64;
		} else if (p->len == 128) {
			memcpy(k128[n128++], p->addr, 16);
			r.block = DP_B6_H128;
		} else {
			if (ptrs_push(&lpmb, p))
				goto oom;
			r.block = DP_B6_LPM;
		}
		if (key6_push(&recs, &nrec, &caprec, r))
			goto oom;
	}

	for (size_t i = 0; i < geo->n; i++) {
		struct dp_pfx *p = geo->v[i];
		uint32_t w0 = dp_pfx_w6(p, 0);
		struct key6 r = { .key = w0 };

		if (p->len < DP_PFX6_EXPAND_MIN) {
			sg[nshort_g++] = (struct short6){ .top = w0, .len = p->len, .cc = cc_of(b, p) };
			if (ptrs_push(&lpmg, p))
				goto oom;
		} else if (p->len <= 32) {
			uint32_t count = 1u << (32 - p->len);

			r.cc = cc_of(b, p);
			r.cclen = p->len + 1;
			for (uint32_t j = 0; j < count; j++) {
				r.key = w0 + j;
				if (key6_push(&recs, &nrec, &caprec, r))
					goto oom;
			}
		} else {
			if (ptrs_push(&lpmg, p))
				goto oom;
			r.geo = DP_G6_MIXED;
			if (key6_push(&recs, &nrec, &caprec, r))
				goto oom;
		}
	}

	/* Merge records per /32, then fold in the short prefixes covering each /32. */
	qsort(sb, nshort_b, sizeof(*sb), cmp_short6);
	qsort(sg, nshort_g, sizeof(*sg), cmp_short6);
	if (nrec)
		qsort(recs, nrec, sizeof(*recs), cmp_key6);
	{
		size_t out = 0;

		for (size_t i = 0; i < nrec; i++) {
			if (out && recs[out - 1].key == recs[i].key) {
				struct key6 *m = &recs[out - 1];

				m->block |= recs[i].block;
				m->geo |= recs[i].geo;
				if (recs[i].cclen > m->cclen) {
					m->cc = recs[i].cc;
					m->cclen = recs[i].cclen;
				}
			} else {
				recs[out++] = recs[i];
			}
		}
		nrec = out;
	}
	for (size_t i = 0; i < nrec; i++) {
		const struct short6 *s;

		if (nshort_b && short_lookup(sb, nshort_b, recs[i].key))
			recs[i].block |= DP_B6_COVERED;
		if (!recs[i].cclen && nshort_g && (s = short_lookup(sg, nshort_g, recs[i].key)))
			recs[i].cc = s->cc;
	}

	if (nrec) {
		uint32_t *keys = malloc(nrec * sizeof(*keys));
		struct dp_pfx6_value *vals = calloc(nrec, sizeof(*vals));
		int ok;

		if (!keys || !vals) {
			free(keys);
			free(vals);
			goto oom;
		}
		for (size_t i = 0; i < nrec; i++) {
			keys[i] = recs[i].key;
			vals[i] = (struct dp_pfx6_value){ .block = recs[i].block, .geo = recs[i].geo, .cc = recs[i].cc };
		}
		b->out->inner[DP_T_PFX6] = new_hash("dp_pfx6", 4, sizeof(*vals), nrec, b->err);
		ok = b->out->inner[DP_T_PFX6] >= 0 &&
		     !fill(b->out->inner[DP_T_PFX6], keys, vals, nrec, 4, sizeof(*vals), "dp_pfx6", b->err);
		free(keys);
		free(vals);
		if (!ok)
			goto out;
		b->out->sizes.stored[DP_T_PFX6] = nrec;
		b->out->gen->flags |= DP_F_PFX6;
	}

	n48 = uniq(k48, n48, sizeof(*k48), cmp_u64);
	n64 = uniq(k64, n64, sizeof(*k64), cmp_u64);
	n128 = uniq(k128, n128, 16, cmp_16);
	ones = malloc(n48 + n64 + n128 + 1);
	if (!ones)
		goto oom;
	memset(ones, 1, n48 + n64 + n128 + 1);
	if (n48) {
		b->out->inner[DP_T_BLK48] = new_hash("dp_blk48", 8, 1, n48, b->err);
		if (b->out->inner[DP_T_BLK48] < 0 || fill(b->out->inner[DP_T_BLK48], k48, ones, n48, 8, 1, "dp_blk48", b->err))
			goto out;
		b->out->sizes.stored[DP_T_BLK48] = n48;
	}
	if (n64) {
		b->out->inner[DP_T_BLK64] = new_hash("dp_blk64", 8, 1, n64, b->err);
		if (b->out->inner[DP_T_BLK64] < 0 || fill(b->out->inner[DP_T_BLK64], k64, ones, n64, 8, 1, "dp_blk64", b->err))
			goto out;
		b->out->sizes.stored[DP_T_BLK64] = n64;
	}
	if (n128) {
		b->out->inner[DP_T_BLK128] = new_hash("dp_blk128", 16, 1, n128, b->err);
		if (b->out->inner[DP_T_BLK128] < 0 ||
		    fill(b->out->inner[DP_T_BLK128], k128, ones, n128, 16, 1, "dp_blk128", b->err))
			goto out;
		b->out->sizes.stored[DP_T_BLK128] = n128;
	}
	if (lpmb.n) {
		b->out->inner[DP_T_BLK6LPM] =
			build_lpm("dp_blk6lpm", 6, lpmb.v, lpmb.n, 1, NULL, NULL, &b->out->sizes.stored[DP_T_BLK6LPM], b->err);
		if (b->out->inner[DP_T_BLK6LPM] < 0)
			goto out;
	}
	if (lpmg.n) {
		b->out->inner[DP_T_GEO6] = build_lpm("dp_geo6", 6, lpmg.v, lpmg.n, sizeof(struct dp_geo6_value), geo6_val,
						     b, &b->out->sizes.stored[DP_T_GEO6], b->err);
		if (b->out->inner[DP_T_GEO6] < 0)
			goto out;
	}
	if (nshort_b)
		b->out->gen->flags |= DP_F_BLOCK6_SHORT;
	if (nshort_g)
		b->out->gen->flags |= DP_F_GEO6_SHORT;
	rc = 0;
	goto out;
oom:
	dp_errf(b->err, "IPv6 tables: out of memory");
out:
	free(recs);
	free(k48);
	free(k64);
	free(k128);
	free(ones);
	free(sb);
	free(sg);
	free(lpmb.v);
	free(lpmg.v);
	return rc;
}

/* ---- per-/24 summary ---------------------------------------------------------------------------- */

/* Sets (value 1) or clears bits [first, first + count) of a bitmap. */
static void bits_fill(uint64_t *bm, uint32_t first, uint32_t count, int value)
{
	uint32_t i = first, end = first + count;

	for (; i < end && (i & 63); i++)
		bm[i >> 6] = value ? bm[i >> 6] | (1ULL << (i & 63)) : bm[i >> 6] & ~(1ULL << (i & 63));
	for (; i + 64 <= end; i += 64)
		bm[i >> 6] = value ? ~0ULL : 0;
	for (; i < end; i++)
		bm[i >> 6] = value ? bm[i >> 6] | (1ULL << (i & 63)) : bm[i >> 6] & ~(1ULL << (i & 63));
}

/* Bit i of a bitmap. */
static int bit_of(const uint64_t *bm, uint32_t i)
{
	return (int)((bm[i >> 6] >> (i & 63)) & 1);
}

/* First 24 bits of a prefix and the number of /24 slots it spans (1 when longer than /24). */
static void slots24(const struct dp_pfx *p, uint32_t *first, uint32_t *count)
{
	uint32_t top = ((uint32_t)p->addr[0] << 16) | ((uint32_t)p->addr[1] << 8) | p->addr[2];

	*count = p->len >= 24 ? 1 : 1u << (24 - p->len);
	*first = top & ~(*count - 1);
}

/* Marks every /24 slot that a prefix of the lists touches (covers or lies inside). */
static void mark_touched(uint64_t *bm, const struct pfx_ptrs *a, const struct pfx_ptrs *b)
{
	const struct pfx_ptrs *lists[2] = { a, b };

	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < lists[l]->n; i++) {
			uint32_t first, count;

			slots24(lists[l]->v[i], &first, &count);
			bits_fill(bm, first, count, 1);
		}
	}
}

/* True when country index cc is blocked in generation settings g (0 = unknown: never). */
static bool cc_blocked(const struct dp_gen *g, uint8_t cc)
{
	return cc && ((g->geo_blocked[cc >> 6] >> (cc & 63)) & 1);
}

/*
 * IPv4 summary from the finished /24 structures: a /24 touched by the allowlist or a bogon needs
 * the full checks; otherwise the blocklist's /24 code carries over (covered -> BLOCK, /32 hosts
 * only -> OTHER, /25-/31 -> DETAIL), except that a /24 whose country is blocked needs the full
 * checks unless the blocklist covers it (the blocklist comes first).
 */
static void build_summary4(struct build_ctx *b, __u64 *sum, const uint64_t *touched)
{
	const struct dp_gen *g = b->out->gen;

	for (uint32_t w = 0; w < DP_SUM_WORDS; w++) {
		uint64_t code = b->bm24 ? b->bm24[w] : 0;
		uint32_t t = (uint32_t)(touched[w >> 1] >> ((w & 1) * 32));

		if (!t && !b->cc24) {
			sum[w] = code; /* the common case: the blocklist's codes as they are */
			continue;
		}
		for (uint32_t lane = 0; lane < 32; lane++) {
			uint32_t s24 = w * 32 + lane;
			uint64_t c = (code >> (lane * 2)) & 3;

			if (((t >> lane) & 1) || (c != DP_BM24_COVERED && b->cc24 && cc_blocked(g, b->cc24[s24])))
				code |= 3ULL << (lane * 2);
		}
		/* the blocklist codes are the summary codes: CLEAN, COVERED = BLOCK, HOSTS = OTHER, MIXED = DETAIL */
		sum[w] = code;
	}
}

/*
 * IPv6 summary keyed by the first 24 bits. Geo: a slot's base country is that of the longest
 * geo prefix of length <= 24 covering it (painted shortest first); longer geo prefixes inside
 * the slot mark it as holding a blocked and/or an unblocked country. The slot is uniformly
 * blocked when its base is blocked and nothing inside is unblocked, uniformly clean when its base
 * is not blocked and nothing inside is blocked.
 */
static int build_summary6(struct build_ctx *b, __u64 *sum, uint64_t *touched)
{
	const size_t words = (1u << 24) / 64;
	uint64_t *cov = calloc(words, 8), *part = calloc(words, 8), *base = calloc(words, 8);
	uint64_t *in_blk = calloc(words, 8), *in_ok = calloc(words, 8);
	const struct dp_gen *g = b->out->gen;
	int rc = -1;

	if (!cov || !part || !base || !in_blk || !in_ok) {
		dp_errf(b->err, "summary: out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->block6.n; i++) {
		uint32_t first, count;

		slots24(b->block6.v[i], &first, &count);
		bits_fill(b->block6.v[i]->len <= 24 ? cov : part, first, count, 1);
	}
	/* geo6 is sorted by (length, address): longer prefixes paint over shorter ones */
	for (size_t i = 0; i < b->geo6.n; i++) {
		const struct dp_pfx *p = b->geo6.v[i];
		bool blk = cc_blocked(g, cc_of(b, p));
		uint32_t first, count;

		slots24(p, &first, &count);
		if (p->len <= 24)
			bits_fill(base, first, count, blk);
		else
			bits_fill(blk ? in_blk : in_ok, first, count, 1);
	}
	for (uint32_t w = 0; w < DP_SUM_WORDS; w++) {
		uint32_t k = w >> 1, sh = (w & 1) * 32;
		uint64_t code = 0;

		/* most /24s have nothing at all: 32 of them settled with six loads */
		if (!(uint32_t)((touched[k] | part[k] | cov[k] | base[k] | in_blk[k] | in_ok[k]) >> sh)) {
			sum[w] = 0;
			continue;
		}
		for (uint32_t lane = 0; lane < 32; lane++) {
			uint32_t s = w * 32 + lane;
			uint64_t c;

			if (bit_of(touched, s) || bit_of(part, s))
				c = DP_SUM_DETAIL;
			else if (bit_of(cov, s))
				c = DP_SUM_BLOCK;
			else if (bit_of(base, s))
				c = bit_of(in_ok, s) ? DP_SUM_DETAIL : DP_SUM_OTHER;
			else
				c = bit_of(in_blk, s) ? DP_SUM_DETAIL : DP_SUM_CLEAN;
			code |= c << (lane * 2);
		}
		sum[w] = code;
	}
	rc = 0;
out:
	free(cov);
	free(part);
	free(base);
	free(in_blk);
	free(in_ok);
	return rc;
}

/* Both summaries into out->sum. */
static int build_summary(struct build_ctx *b)
{
	uint64_t *touched = calloc((1u << 24) / 64, 8);
	int rc = -1;

	b->out->sum = calloc(2 * (size_t)DP_SUM_WORDS, sizeof(uint64_t));
	if (!touched || !b->out->sum) {
		free(touched);
		return dp_errf(b->err, "summary: out of memory");
	}
	mark_touched(touched, &b->allow4, &b->bogon4);
	build_summary4(b, b->out->sum, touched);
	memset(touched, 0, (1u << 24) / 8);
	mark_touched(touched, &b->allow6, &b->bogon6);
	rc = build_summary6(b, b->out->sum + DP_SUM_WORDS, touched);
	free(touched);
	return rc;
}

/* Allowlist or bogon list of one family: gate bits plus an LPM of the prefixes longer than /16. */
static int build_gated(struct build_ctx *b, const struct pfx_ptrs *l, int family, unsigned shift, enum dp_table_id t,
		       const char *name)
{
	__u64 *gate = family == 4 ? b->out->gen->gate4 : b->out->gen->gate6;
	struct pfx_ptrs longer = { 0 };

	for (size_t i = 0; i < l->n; i++) {
		gate_mark(gate, l->v[i], shift);
		if (l->v[i]->len > 16 && ptrs_push(&longer, l->v[i])) {
			free(longer.v);
			return dp_errf(b->err, "%s: out of memory", name);
		}
	}
	if (longer.n) {
		b->out->inner[t] = build_lpm(name, family, longer.v, longer.n, 1, NULL, NULL, &b->out->sizes.stored[t], b->err);
		free(longer.v);
		return b->out->inner[t] < 0 ? -1 : 0;
	}
	return 0;
}

/* Splits a list by family into two pointer lists. */
static int split(const struct dp_pfx_list *src, struct pfx_ptrs *v4, struct pfx_ptrs *v6)
{
	if (!src)
		return 0;
	for (size_t i = 0; i < src->n; i++)
		if (ptrs_push(src->v[i].family == 4 ? v4 : v6, &src->v[i]))
			return -1;
	return 0;
}

int dp_tables_build(const struct dp_table_input *in, struct dp_built *out, struct dp_err *err)
{
	struct build_ctx *b = calloc(1, sizeof(*b));
	struct dp_pfx_list bogons = { 0 };
	int rc = -1;

	memset(out, 0, sizeof(*out));
	for (int t = 0; t < DP_T_MAX; t++)
		out->inner[t] = -1;
	out->gen = calloc(1, sizeof(*out->gen));
	if (!b || !out->gen) {
		free(b);
		free(out->gen);
		out->gen = NULL;
		return dp_errf(err, "tables: out of memory");
	}
	b->in = in;
	b->out = out;
	b->err = err;

	/* Bogons: the built-in list plus the extra files, per enabled family. */
	for (int fam = 4; fam <= 6; fam += 2) {
		const char *const *defs = fam == 4 ? dp_default_bogons4 : dp_default_bogons6;
		bool on = fam == 4 ? in->bogons4 : in->bogons6;
		char why[128];

		if (!on)
			continue;
		for (int i = 0; defs[i]; i++) {
			struct dp_pfx p;

			if (dp_pfx_parse(defs[i], &p, why, sizeof(why)) || dp_pfx_list_push(&bogons, &p))
				goto oom;
		}
		for (size_t i = 0; in->bogon_extra && i < in->bogon_extra->n; i++)
			if (in->bogon_extra->v[i].family == fam && dp_pfx_list_push(&bogons, &in->bogon_extra->v[i]))
				goto oom;
	}
	if (split(in->allow, &b->allow4, &b->allow6) || split(&bogons, &b->bogon4, &b->bogon6) ||
	    split(in->block, &b->block4, &b->block6) || split(in->geo, &b->geo4, &b->geo6))
		goto oom;
	out->sizes = (struct dp_table_sizes){
		.allow4 = b->allow4.n, .allow6 = b->allow6.n, .bogon4 = b->bogon4.n, .bogon6 = b->bogon6.n,
		.block4 = b->block4.n, .block6 = b->block6.n, .geo4 = b->geo4.n,   .geo6 = b->geo6.n,
	};

	if (build_gated(b, &b->allow4, 4, 0, DP_T_ALLOW4, "dp_allow4") ||
	    build_gated(b, &b->allow6, 6, 0, DP_T_ALLOW6, "dp_allow6") ||
	    build_gated(b, &b->bogon4, 4, 2, DP_T_BOGON4, "dp_bogon4") ||
	    build_gated(b, &b->bogon6, 6, 2, DP_T_BOGON6, "dp_bogon6"))
		goto fail;

	bogon4_tail(out->gen);

	if (!in->blocklist) {
		b->block4.n = 0;
		b->block6.n = 0;
	}
	if (b->block4.n && build_block4(b))
		goto fail;

	if (geo_prepare(b))
		goto fail;
	{
		bool any_blocked = false;

		for (int i = 0; i < 4; i++)
			any_blocked |= out->gen->geo_blocked[i] != 0;
		/* Geo tables matter only when a country is blocked. */
		if (!in->geoip || !any_blocked) {
			b->geo4.n = 0;
			b->geo6.n = 0;
		}
	}
	if (b->geo4.n && build_geo4(b))
		goto fail;
	if ((b->block6.n || b->geo6.n) && build_v6(b))
		goto fail;

	{
		double t0 = dp_now_mono();

		if (build_summary(b))
			goto fail;
		out->summary_s = dp_now_mono() - t0;
	}

	out->gen->seed = in->seed;
	out->rates[DP_RL_SYN] = in->syn;
	out->rates[DP_RL_ICMP] = in->icmp;
	out->rates[DP_RL_UDP] = in->udp;
	if (in->ratelimit)
		out->gen->flags |= DP_F_RATELIMIT;
	rc = 0;
	goto done;
oom:
	dp_errf(err, "tables: out of memory");
fail:
	dp_built_free(out);
done:
	dp_pfx_list_free(&bogons);
	free(b->allow4.v);
	free(b->allow6.v);
	free(b->bogon4.v);
	free(b->bogon6.v);
	free(b->block4.v);
	free(b->block6.v);
	free(b->geo4.v);
	free(b->geo6.v);
	free(b->bm24);
	free(b->cc24);
	free(b);
	return rc;
}

/*
 * Waits for an RCU grace period: a successful update of a map-in-map slot does (the kernel makes
 * sure no program still uses the map it replaced). slot is idle, and the dummy is removed again.
 */
static int grace_period(const struct dp_guard_maps *m, uint32_t slot, struct dp_err *err)
{
	int fd = new_map(BPF_MAP_TYPE_LPM_TRIE, "dp_sync", sizeof(struct dp_lpm4_key), 1, 1, BPF_F_NO_PREALLOC, err);
	int rc;

	if (fd < 0)
		return -1;
	rc = bpf_map_update_elem(m->outer[DP_T_ALLOW4], &slot, &fd, BPF_ANY);
	close(fd);
	if (rc || bpf_map_delete_elem(m->outer[DP_T_ALLOW4], &slot))
		return dp_errf(err, "cannot wait for a grace period: %s", strerror(errno));
	return 0;
}

int dp_tables_publish(const struct dp_guard_maps *m, const struct dp_built *b, struct dp_err *err)
{
	uint32_t next = (__atomic_load_n(&m->rt->active, __ATOMIC_ACQUIRE) & 1) ^ 1;
	struct dp_gen *g = &m->rt->gen[next];
	bool waited = false;

	/* The inner maps first: each successful slot update waits until no program runs on the
	 * generation it replaces, so afterwards no packet still reads the idle generation's
	 * settings (a packet that began before the last flip has finished). */
	for (int t = 0; t < DP_T_MAX; t++) {
		if (b->inner[t] >= 0) {
			if (bpf_map_update_elem(m->outer[t], &next, &b->inner[t], BPF_ANY))
				return dp_errf(err, "cannot install table %s: %s", dp_table_map_names[t], strerror(errno));
			waited = true;
		} else if (bpf_map_delete_elem(m->outer[t], &next) && errno != ENOENT) {
			return dp_errf(err, "cannot clear table %s: %s", dp_table_map_names[t], strerror(errno));
		}
	}
	if (!waited && grace_period(m, next, err))
		return -1;
	memcpy(g, b->gen, sizeof(*b->gen));
	for (int c = DP_RL_SYN; c <= DP_RL_UDP; c++)
		dp_rl_params(b->rates[c].rate, b->rates[c].burst, m->tick_ns, &g->rl[c]);
	memcpy(m->sum + ((size_t)next << 20), b->sum, 2 * (size_t)DP_SUM_WORDS * sizeof(__u64));
	if (m->on_publish)
		m->on_publish(m->on_publish_arg, next, m->sum + ((size_t)next << 20));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&m->rt->active, next, __ATOMIC_RELEASE);
	return 0;
}

void dp_built_free(struct dp_built *b)
{
	for (int t = 0; t < DP_T_MAX; t++) {
		if (b->inner[t] >= 0)
			close(b->inner[t]);
		b->inner[t] = -1;
	}
	free(b->gen);
	free(b->sum);
	b->gen = NULL;
	b->sum = NULL;
}
