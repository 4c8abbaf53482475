// SPDX-License-Identifier: Apache-2.0
/*
 * The WAN guard's dynamic blocklist (dynblock.h).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dynblock.h"

const char *const dp_dyn_result_name[DP_DYN_RESULTS] = {
	"added", "extended", "protected", "full", "invalid", "error",
};

#define GEN_WORDS (2 * (size_t)DP_SUM_WORDS) /* both families of one generation */
#define MARK_WORDS ((1u << 24) / 64)         /* one bit per /24 key of a family */

/* CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns, which the guard compares expiries with. */
static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The summary code of /24 key24 of family fam in one generation's summary. */
static unsigned code_of(const __u64 *gen_sum, unsigned fam, uint32_t key24)
{
	return (gen_sum[((size_t)fam << 19) | (key24 >> 5)] >> ((key24 & 31) * 2)) & 3;
}

/* Sets that code; one aligned 64-bit store, so a packet reads the word before or after, whole. */
static void set_code(__u64 *gen_sum, unsigned fam, uint32_t key24, unsigned code)
{
	__u64 *w = &gen_sum[((size_t)fam << 19) | (key24 >> 5)];
	unsigned sh = (key24 & 31) * 2;
	__u64 v = __atomic_load_n(w, __ATOMIC_RELAXED);

	__atomic_store_n(w, (v & ~(3ull << sh)) | ((__u64)code << sh), __ATOMIC_RELEASE);
}

static bool bit(const uint64_t *set, uint32_t k)
{
	return (set[k >> 6] >> (k & 63)) & 1;
}

/* Marks /24 key24 of fam DETAIL in both generations. */
static void mark(struct dp_dynblock *d, unsigned fam, uint32_t key24)
{
	if (bit(d->marked[fam], key24))
		return;
	for (unsigned g = 0; g < 2; g++)
		set_code(d->sum + ((size_t)g << 20), fam, key24, DP_SUM_DETAIL);
	d->marked[fam][key24 >> 6] |= 1ull << (key24 & 63);
}

int dp_dyn_init(struct dp_dynblock *d, const struct dp_guard_maps *m, int fd4, int fd6, uint32_t max,
		struct dp_err *err)
{
	memset(d, 0, sizeof(*d));
	d->fd4 = fd4;
	d->fd6 = fd6;
	d->max = max;
	d->next_exp = UINT64_MAX;
	d->sum = m->sum;
	d->base = malloc(2 * GEN_WORDS * sizeof(__u64));
	d->marked[0] = calloc(MARK_WORDS, sizeof(uint64_t));
	d->marked[1] = calloc(MARK_WORDS, sizeof(uint64_t));
	if (!d->base || !d->marked[0] || !d->marked[1]) {
		dp_dyn_free(d);
		return dp_errf(err, "dynamic blocklist: out of memory");
	}
	memcpy(d->base, m->sum, 2 * GEN_WORDS * sizeof(__u64));
	return 0;
}

void dp_dyn_free(struct dp_dynblock *d)
{
	free(d->base);
	free(d->marked[0]);
	free(d->marked[1]);
	d->base = NULL;
	d->marked[0] = d->marked[1] = NULL;
}

void dp_dyn_on_publish(void *dynblock, unsigned gen, __u64 *gen_sum)
{
	struct dp_dynblock *d = dynblock;

	memcpy(d->base + (size_t)(gen & 1) * GEN_WORDS, gen_sum, GEN_WORDS * sizeof(__u64));
	for (unsigned fam = 0; fam < 2; fam++)
		for (uint32_t w = 0; w < MARK_WORDS; w++)
			for (uint64_t bits = d->marked[fam][w]; bits; bits &= bits - 1)
				set_code(gen_sum, fam, w * 64 + (uint32_t)__builtin_ctzll(bits), DP_SUM_DETAIL);
}

/* True when a prefix of the lists covers src (for IPv6: overlaps its /64, the unit that is blocked). */
static bool is_protected(const struct dp_pfx *src, const struct dp_pfx_list *const *protect, size_t n, char *why,
			 size_t cap)
{
	struct dp_pfx unit = *src;

	if (src->family == 6) {
		unit.len = 64;
		memset(unit.addr + 8, 0, 8);
	}
	for (size_t l = 0; l < n; l++)
		for (size_t i = 0; i < protect[l]->n; i++) {
			const struct dp_pfx *p = &protect[l]->v[i];

			if (dp_pfx_covers(p, &unit) || dp_pfx_covers(&unit, p)) {
				dp_pfx_format(p, why, cap);
				return true;
			}
		}
	return false;
}

enum dp_dyn_result dp_dyn_add(struct dp_dynblock *d, const char *addr, uint32_t seconds,
			      const struct dp_pfx_list *const *protect, size_t n, char *why, size_t cap)
{
	struct dp_pfx src;
	__u64 key6, exp, old;
	__u32 key4;
	void *key;
	int fd;
	enum dp_dyn_result r;

	why[0] = '\0';
	if (dp_pfx_parse(addr, &src, why, cap) || src.len != (src.family == 4 ? 32 : 128))
		r = DP_DYN_INVALID;
	else if (seconds < 1 || seconds > DP_DYN_MAX_SECONDS)
		r = (snprintf(why, cap, "duration %u s outside 1..%u", seconds, DP_DYN_MAX_SECONDS), DP_DYN_INVALID);
	else if (is_protected(&src, protect, n, why, cap))
		r = DP_DYN_PROTECTED;
	else
		r = DP_DYN_ADDED;
	if (r != DP_DYN_ADDED) {
		d->results[r]++;
		return r;
	}
	key4 = dp_pfx_v4(&src);
	key6 = ((__u64)dp_pfx_w6(&src, 0) << 32) | dp_pfx_w6(&src, 1);
	fd = src.family == 4 ? d->fd4 : d->fd6;
	key = src.family == 4 ? (void *)&key4 : (void *)&key6;
	exp = now_ns() + (__u64)seconds * 1000000000ull;
	if (!bpf_map_lookup_elem(fd, key, &old)) {
		r = DP_DYN_EXTENDED;
		if (old > exp)
			exp = old;
	} else if (d->live >= d->max) {
		r = DP_DYN_FULL;
	}
	if (r != DP_DYN_FULL && bpf_map_update_elem(fd, key, &exp, BPF_ANY)) {
		snprintf(why, cap, "%s", strerror(errno));
		r = errno == E2BIG ? DP_DYN_FULL : DP_DYN_ERROR;
	}
	d->results[r]++;
	if (r == DP_DYN_ADDED)
		d->live++;
	if (r == DP_DYN_ADDED || r == DP_DYN_EXTENDED) {
		mark(d, src.family == 4 ? 0 : 1, src.family == 4 ? key4 >> 8 : dp_pfx_w6(&src, 0) >> 8);
		if (exp < d->next_exp)
			d->next_exp = exp;
	}
	return r;
}

/* The /24 key (the summary's index) of a table key of family 4 or 6. */
static uint32_t key24_of(unsigned family, uint64_t key)
{
	return family == 4 ? (uint32_t)(key & 0xffffffffu) >> 8 : (uint32_t)(key >> 40);
}

/* Reads the whole of one table (family 4: 4-byte keys, 6: 8-byte keys): its keys in *k and expiries in *e. */
static size_t table_read(int fd, unsigned family, uint64_t **k, uint64_t **e)
{
	__u64 key = 0, next = 0, exp;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	*k = *e = NULL;
	/* a 4-byte key is read into the low half of a zeroed u64 (little-endian: the same value) */
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		prev = &key;
		key = family == 4 ? (next & 0xffffffffu) : next;
		if (bpf_map_lookup_elem(fd, &key, &exp))
			continue;
		if (n == cap) {
			uint64_t *gk = realloc(*k, (cap = cap ? 2 * cap : 256) * sizeof(uint64_t));
			uint64_t *ge = gk ? realloc(*e, cap * sizeof(uint64_t)) : NULL;

			if (gk)
				*k = gk;
			if (!ge)
				break; /* what was read is handled; the rest waits for the next sweep */
			*e = ge;
		}
		(*k)[n] = key;
		(*e)[n++] = exp;
	}
	return n;
}

/*
 * Deletes the expired entries of one table and sets the /24 bit of every remaining key in keep;
 * returns how many were deleted, and adds the remaining ones to *live. The walk finishes before
 * anything is deleted (a deletion would restart it).
 */
static size_t sweep_table(struct dp_dynblock *d, unsigned family, uint64_t now, uint64_t *keep, size_t *live)
{
	int fd = family == 4 ? d->fd4 : d->fd6;
	uint64_t *k, *e;
	size_t n = table_read(fd, family, &k, &e), gone = 0;

	for (size_t i = 0; i < n; i++) {
		if (e[i] <= now) {
			__u64 key = k[i];

			if (!bpf_map_delete_elem(fd, &key)) {
				gone++;
				if (d->on_expired)
					d->on_expired(d->on_expired_arg, family, k[i]);
			}
			continue;
		}
		uint32_t key24 = key24_of(family, k[i]);

		keep[key24 >> 6] |= 1ull << (key24 & 63);
		(*live)++;
		if (e[i] < d->next_exp)
			d->next_exp = e[i];
	}
	free(k);
	free(e);
	return gone;
}

/* Removes the entries that expired at now (UINT64_MAX: all) and restores the codes of /24s left without any. */
static size_t sweep_at(struct dp_dynblock *d, uint64_t now)
{
	uint64_t *keep[2] = { calloc(MARK_WORDS, sizeof(uint64_t)), calloc(MARK_WORDS, sizeof(uint64_t)) };
	size_t gone = 0, live = 0;

	if (!keep[0] || !keep[1]) {
		free(keep[0]);
		free(keep[1]);
		return 0; /* tried again at the next sweep; entries past their expiry block nothing meanwhile */
	}
	d->next_exp = UINT64_MAX;
	gone += sweep_table(d, 4, now, keep[0], &live);
	gone += sweep_table(d, 6, now, keep[1], &live);
	for (unsigned fam = 0; fam < 2; fam++) {
		for (uint32_t w = 0; w < MARK_WORDS; w++)
			for (uint64_t bits = d->marked[fam][w] & ~keep[fam][w]; bits; bits &= bits - 1) {
				uint32_t key24 = w * 64 + (uint32_t)__builtin_ctzll(bits);

				for (unsigned g = 0; g < 2; g++)
					set_code(d->sum + ((size_t)g << 20), fam, key24,
						 code_of(d->base + (size_t)g * GEN_WORDS, fam, key24));
			}
		free(d->marked[fam]);
		d->marked[fam] = keep[fam];
	}
	d->live = live;
	d->expired += gone;
	return gone;
}

size_t dp_dyn_sweep(struct dp_dynblock *d)
{
	return sweep_at(d, now_ns());
}

size_t dp_dyn_clear(struct dp_dynblock *d)
{
	return sweep_at(d, UINT64_MAX);
}

size_t dp_dyn_resume(struct dp_dynblock *d)
{
	size_t n_all = 0;

	for (unsigned family = 4; family <= 6; family += 2) {
		uint64_t *k, *e;
		size_t n = table_read(family == 4 ? d->fd4 : d->fd6, family, &k, &e);

		/* an expired entry stays until the sweep, which is then due at once */
		for (size_t i = 0; i < n; i++) {
			mark(d, family == 4 ? 0 : 1, key24_of(family, k[i]));
			if (e[i] < d->next_exp)
				d->next_exp = e[i];
		}
		n_all += n;
		free(k);
		free(e);
	}
	d->live = n_all;
	return n_all;
}

size_t dp_dyn_copy(int from4, int from6, int to4, int to6, uint32_t max)
{
	uint64_t now = now_ns();
	size_t copied = 0;

	for (unsigned family = 4; family <= 6; family += 2) {
		uint64_t *k, *e;
		size_t n = table_read(family == 4 ? from4 : from6, family, &k, &e);

		for (size_t i = 0; i < n; i++) {
			__u64 key = k[i], exp = e[i];

			if (exp > now && copied < max &&
			    !bpf_map_update_elem(family == 4 ? to4 : to6, &key, &exp, BPF_NOEXIST))
				copied++;
		}
		free(k);
		free(e);
	}
	return copied;
}

void dp_dyn_key_format(unsigned family, uint64_t key, char *buf, size_t cap)
{
	unsigned char a[16] = { 0 };
	char t[INET6_ADDRSTRLEN];

	if (family == 4) {
		uint32_t v = htonl((uint32_t)key);

		memcpy(a, &v, 4);
		inet_ntop(AF_INET, a, t, sizeof(t));
		snprintf(buf, cap, "%s", t);
		return;
	}
	for (int i = 0; i < 8; i++)
		a[i] = (unsigned char)(key >> (56 - 8 * i));
	inet_ntop(AF_INET6, a, t, sizeof(t));
	snprintf(buf, cap, "%s/64", t);
}
