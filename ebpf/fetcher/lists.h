/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation and normalisation of downloaded lists (router-fetch). Pure: text in, canonical text
 * out, no I/O. A list is taken whole or refused whole; the refusal names the reason (fetch.h) and,
 * where one line is to blame, that line.
 *
 * Canonical forms (sorted, duplicates removed, one entry per line, "\n" line ends, no comments):
 *   cidr     "PREFIX/LEN"       IPv4 before IPv6, by address then length
 *   geo      "PREFIX/LEN CC"    the same order; a prefix listed with two countries is malformed
 *   domains  "name"             lower case, no trailing dot, by byte order
 */
#ifndef DP_LISTS_H
#define DP_LISTS_H

#include <stdbool.h>
#include <stddef.h>

#include "fetch.h"
#include "prefix.h"

enum dp_list_kind {
	DP_LIST_CIDR,
	DP_LIST_GEO,
	DP_LIST_DOMAINS,
};

/* What a list must not touch, and how many entries it must have. */
struct dp_list_rules {
	const struct dp_pfx *protect; /* addresses (/32 or /128) no cidr/geo entry may cover */
	size_t n_protect;
	const char *const *protect_names; /* canonical names no domain entry may equal or be a parent of */
	size_t n_protect_names;
	const char (*block_countries)[3]; /* geo: a covering entry matters only with one of these; none = all */
	size_t n_block_countries;
	size_t min_entries; /* at least 1 */
};

/* Result of a check: reason DP_FR_NONE when the list was taken. */
struct dp_list_result {
	enum dp_fetch_reason reason;
	char why[512];   /* what was wrong, with the line when one line is to blame */
	char *text;      /* canonical text (malloc'ed; caller frees) when taken */
	size_t len;      /* bytes of text */
	size_t entries;  /* distinct entries */
};

/* Parses a kind name (cidr, geo, domains); 0 or -1. */
int dp_list_kind_parse(const char *s, enum dp_list_kind *kind);

/*
 * Checks the download buf (size bytes; changed in place) as a list of kind under rules and, when
 * it is taken, renders its canonical text. Returns 0 when taken, -1 when refused (res->reason and
 * res->why say why).
 */
int dp_list_check(enum dp_list_kind kind, char *buf, size_t size, const struct dp_list_rules *rules,
		  struct dp_list_result *res);

/*
 * Normalises a domain name in place (lower case, one trailing dot dropped) and checks it: ASCII
 * letters, digits, '-' and '_', labels of 1-63 characters not starting or ending with '-', at most
 * 253 characters, at least two labels, a top-level label that is not all digits (IP literals).
 * Returns 0, or -1 with why (and *tld_or_root true when the name is well formed but a top-level
 * domain or the root).
 */
int dp_domain_normalise(char *name, bool *tld_or_root, char *why, size_t whylen);

#endif /* DP_LISTS_H */
