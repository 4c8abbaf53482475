/* SPDX-License-Identifier: Apache-2.0 */
/* CIDR prefixes and the table files that list them. */
#ifndef DP_PREFIX_H
#define DP_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* One prefix; IPv4 addresses use addr[0..3]. cc is the country of geo entries ("\0\0" otherwise). */
struct dp_pfx {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	char cc[2];
	uint8_t addr[16];
};

struct dp_pfx_list {
	struct dp_pfx *v;
	size_t n, cap;
};

enum dp_table_kind {
	DP_TABLE_PREFIXES, /* "CIDR" per line */
	DP_TABLE_GEO,      /* "CIDR CC" per line */
};

/*
 * Parses "a.b.c.d[/len]" or "ipv6[/len]" (no "/len" = one host). Rejects host bits set beyond the
 * prefix length. On failure returns -1 and writes the reason to why.
 */
int dp_pfx_parse(const char *s, struct dp_pfx *p, char *why, size_t whylen);

/* Formats p as CIDR text. */
void dp_pfx_format(const struct dp_pfx *p, char *buf, size_t len);

/* True when prefix a covers address/prefix b (same family, a->len <= b->len, bits match). */
bool dp_pfx_covers(const struct dp_pfx *a, const struct dp_pfx *b);

/* IPv4 prefix as a host-order word. */
static inline uint32_t dp_pfx_v4(const struct dp_pfx *p)
{
	return ((uint32_t)p->addr[0] << 24) | ((uint32_t)p->addr[1] << 16) | ((uint32_t)p->addr[2] << 8) | p->addr[3];
}

/* Word i (0..3) of an IPv6 prefix, host order. */
static inline uint32_t dp_pfx_w6(const struct dp_pfx *p, int i)
{
	const uint8_t *a = p->addr + 4 * i;

	return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
}

int dp_pfx_list_push(struct dp_pfx_list *l, const struct dp_pfx *p);
int dp_pfx_list_append(struct dp_pfx_list *dst, const struct dp_pfx_list *src);
void dp_pfx_list_free(struct dp_pfx_list *l);

/*
 * Parses the text of a table file (buf, size bytes; lines are cut in place, so buf is changed):
 * one entry per line, '#' or ';' starts a comment, blank lines are ignored. Appends to out. On the
 * first bad line returns -1 with its number in *bad_line (0 when no line is to blame, e.g. out of
 * memory) and the reason in why, and leaves out unchanged.
 */
int dp_table_parse(char *buf, size_t size, enum dp_table_kind kind, struct dp_pfx_list *out, int *bad_line,
		   char *why, size_t whylen);

/*
 * Loads a table file (dp_table_parse of its contents) and appends to out. On the first bad line
 * returns -1 with "FILE:LINE: ..." in err and leaves out unchanged.
 */
int dp_table_file_load(const char *path, enum dp_table_kind kind, struct dp_pfx_list *out, struct dp_err *err);

#endif /* DP_PREFIX_H */
