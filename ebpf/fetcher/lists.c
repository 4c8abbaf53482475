// SPDX-License-Identifier: Apache-2.0
#include "lists.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int dp_list_kind_parse(const char *s, enum dp_list_kind *kind)
{
	if (!strcmp(s, "cidr"))
		*kind = DP_LIST_CIDR;
	else if (!strcmp(s, "geo"))
		*kind = DP_LIST_GEO;
	else if (!strcmp(s, "domains"))
		*kind = DP_LIST_DOMAINS;
	else
		return -1;
	return 0;
}

/* Refuses the list: sets the reason and the message; returns -1. */
static int refuse(struct dp_list_result *res, enum dp_fetch_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(struct dp_list_result *res, enum dp_fetch_reason reason, const char *fmt, ...)
{
	va_list ap;

	res->reason = reason;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
	free(res->text);
	res->text = NULL;
	res->len = 0;
	return -1;
}

/* Order of canonical prefix lists: family, address, length, country. */
static int pfx_cmp(const void *a, const void *b)
{
	const struct dp_pfx *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, x->family == 4 ? 4 : 16);
	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->cc, y->cc, 2);
}

/* True when a geo entry of country cc counts against a protected address. */
static bool country_blocked(const struct dp_list_rules *r, const char cc[2])
{
	if (!r->n_block_countries)
		return true;
	for (size_t i = 0; i < r->n_block_countries; i++)
		if (r->block_countries[i][0] == cc[0] && r->block_countries[i][1] == cc[1])
			return true;
	return false;
}

/* Sorts l and removes duplicates; -1 (refused) when a geo prefix carries two countries. */
static int pfx_unique(struct dp_pfx_list *l, bool geo, struct dp_list_result *res)
{
	size_t w = 0;

	qsort(l->v, l->n, sizeof(l->v[0]), pfx_cmp);
	for (size_t i = 0; i < l->n; i++) {
		const struct dp_pfx *p = &l->v[i];

		if (w && l->v[w - 1].family == p->family && l->v[w - 1].len == p->len &&
		    !memcmp(l->v[w - 1].addr, p->addr, 16)) {
			if (geo && memcmp(l->v[w - 1].cc, p->cc, 2)) {
				char t[64];

				dp_pfx_format(p, t, sizeof(t));
				return refuse(res, DP_FR_MALFORMED, "malformed list: %s is listed with two countries (%.2s and %.2s)",
					      t, l->v[w - 1].cc, p->cc);
			}
			continue;
		}
		l->v[w++] = *p;
	}
	l->n = w;
	return 0;
}

/* The refusals that depend on what a prefix list covers; 0 when none applies. */
static int pfx_rules(const struct dp_pfx_list *l, bool geo, const struct dp_list_rules *r, struct dp_list_result *res)
{
	char t[64], a[64];

	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].len == 0) {
			dp_pfx_format(&l->v[i], t, sizeof(t));
			return refuse(res, DP_FR_DEFAULT_ROUTE,
				      "the list contains %s, which covers every address (a list matching everything would "
				      "cut the router off, or switch the guard off)",
				      t);
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		for (size_t j = 0; j < r->n_protect; j++) {
			if (!dp_pfx_covers(&l->v[i], &r->protect[j]) || (geo && !country_blocked(r, l->v[i].cc)))
				continue;
			dp_pfx_format(&l->v[i], t, sizeof(t));
			dp_pfx_format(&r->protect[j], a, sizeof(a));
			a[strcspn(a, "/")] = '\0';
			return refuse(res, DP_FR_PROTECTED,
				      "the list contains %s%s%.2s, which covers %s, an address the router depends on (its "
				      "gateway, a resolver, a probe target or the list's own server)",
				      t, geo ? " " : "", geo ? l->v[i].cc : "", a);
		}
	}
	if (l->n < r->min_entries)
		return refuse(res, DP_FR_TOO_FEW, "the list has %zu entries, fewer than the %zu required", l->n,
			      r->min_entries);
	return 0;
}

/* cidr and geo lists: the table-file format, then the rules; renders the canonical text. */
static int check_prefixes(bool geo, char *buf, size_t size, const struct dp_list_rules *r, struct dp_list_result *res)
{
	struct dp_pfx_list l = { 0 };
	char why[256];
	int line = 0, rc = -1;

	if (dp_table_parse(buf, size, geo ? DP_TABLE_GEO : DP_TABLE_PREFIXES, &l, &line, why, sizeof(why))) {
		if (line)
			return refuse(res, DP_FR_MALFORMED, "malformed list, line %d: %s", line, why);
		return refuse(res, DP_FR_LOCAL, "%s", why);
	}
	if (l.n == 0) {
		refuse(res, DP_FR_EMPTY, "the list has no entries (an empty download is not trusted)");
		goto out;
	}
	if (pfx_unique(&l, geo, res) || pfx_rules(&l, geo, r, res))
		goto out;
	res->text = malloc(l.n * 64 + 1);
	if (!res->text) {
		refuse(res, DP_FR_LOCAL, "out of memory");
		goto out;
	}
	res->len = 0;
	for (size_t i = 0; i < l.n; i++) {
		char t[64];

		dp_pfx_format(&l.v[i], t, sizeof(t));
		if (geo)
			res->len += (size_t)sprintf(res->text + res->len, "%s %.2s\n", t, l.v[i].cc);
		else
			res->len += (size_t)sprintf(res->text + res->len, "%s\n", t);
	}
	res->entries = l.n;
	rc = 0;
out:
	dp_pfx_list_free(&l);
	return rc;
}

int dp_domain_normalise(char *name, bool *tld_or_root, char *why, size_t whylen)
{
	size_t len = strlen(name), labels = 0, lab = 0;
	bool digits_only = true;

	*tld_or_root = false;
	for (size_t i = 0; i < len; i++)
		name[i] = (char)tolower((unsigned char)name[i]);
	if (len && name[len - 1] == '.')
		name[--len] = '\0';
	if (!len) {
		*tld_or_root = true;
		snprintf(why, whylen, "the root of the DNS (it covers every name)");
		return -1;
	}
	if (len > 253) {
		snprintf(why, whylen, "a name of %zu characters (at most 253)", len);
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];

		if (c == '.' || c == '\0') {
			if (!lab || lab > 63) {
				snprintf(why, whylen, "'%.80s' has a%s label (labels have 1-63 characters)", name,
					 lab ? " longer" : "n empty");
				return -1;
			}
			if (name[i - 1] == '-' || name[i - lab] == '-') {
				snprintf(why, whylen, "'%.80s' has a label starting or ending with '-'", name);
				return -1;
			}
			labels++;
			if (c == '\0')
				break;
			lab = 0;
			digits_only = true;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-' && c != '_') {
			snprintf(why, whylen, c == '*' ? "'%.80s' is a wildcard (a name covers its subdomains already)"
						       : "'%.80s' is not a domain name (letters, digits, '-', '_' and dots)",
				 name);
			return -1;
		}
		digits_only = digits_only && isdigit((unsigned char)c);
		lab++;
	}
	if (digits_only) {
		snprintf(why, whylen, "'%.80s' is an IP address or ends in a numeric label, not a domain name", name);
		return -1;
	}
	if (labels < 2) {
		*tld_or_root = true;
		snprintf(why, whylen, "'%s' is a top-level domain (blocking it blocks every name under it)", name);
		return -1;
	}
	return 0;
}

/* Names hosts files map to themselves or to local addresses (StevenBlack's header, /etc/hosts). */
static bool hosts_boilerplate(const char *name)
{
	static const char *const names[] = { "localhost",     "localhost.localdomain", "local",
					     "broadcasthost", "ip6-localhost",	       "ip6-loopback",
					     "ip6-localnet",  "ip6-mcastprefix",       "ip6-allnodes",
					     "ip6-allrouters", "ip6-allhosts",	       "0.0.0.0" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(name, names[i]))
			return true;
	return false;
}

/* True for an IP literal as hosts files write addresses (IPv6 with an optional %zone). */
static bool ip_literal(const char *s, bool *sink)
{
	unsigned char a[16];
	char buf[64];

	snprintf(buf, sizeof(buf), "%s", s);
	buf[strcspn(buf, "%")] = '\0';
	*sink = !strcmp(buf, "0.0.0.0") || !strcmp(buf, "127.0.0.1") || !strcmp(buf, "::") || !strcmp(buf, "::1");
	return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

struct names {
	char **v;
	size_t n, cap;
};

/* Checks one name of line `line` and adds it; -1 (refused) when it is bad or protected. */
static int add_name(struct names *ns, char *name, int line, const struct dp_list_rules *r, struct dp_list_result *res)
{
	char why[256];
	bool tld = false;
	size_t len;

	if (dp_domain_normalise(name, &tld, why, sizeof(why)))
		return tld ? refuse(res, DP_FR_PROTECTED, "line %d: %s", line, why)
			   : refuse(res, DP_FR_MALFORMED, "malformed list, line %d: %s", line, why);
	len = strlen(name);
	for (size_t i = 0; i < r->n_protect_names; i++) {
		const char *p = r->protect_names[i];
		size_t pl = strlen(p);

		if (!strcmp(p, name) || (pl > len && p[pl - len - 1] == '.' && !strcmp(p + pl - len, name)))
			return refuse(res, DP_FR_PROTECTED, "line %d: '%s' is '%s' or a parent of it, a name the router depends on",
				      line, name, p);
	}
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 1024;
		char **v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return refuse(res, DP_FR_LOCAL, "out of memory");
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n++] = name;
	return 0;
}

/* Splits s at blanks into at most max tokens (NUL-terminated in place); returns the count, max + 1 if more. */
static size_t tokens(char *s, char **tok, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *p = strtok_r(s, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		tok[n++] = p;
	}
	return n;
}

/* One line of a domain list (NUL-terminated, CR and comments still in it) into ns; -1 when refused. */
static int domain_line(struct names *ns, char *s, int line, const struct dp_list_rules *r, struct dp_list_result *res)
{
	char *tok[64];
	size_t n, len;
	bool sink;

	s[strcspn(s, "#\r")] = '\0';
	s += strspn(s, " \t");
	len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
	if (!len || s[0] == '!' || (s[0] == '[' && s[len - 1] == ']'))
		return 0; /* blank, an adblock comment, or an adblock header such as [Adblock Plus 2.0] */
	if (!strncmp(s, "||", 2)) {
		if (len < 4 || s[len - 1] != '^' || strpbrk(s + 2, "|^$/* \t") != s + len - 1)
			return refuse(res, DP_FR_MALFORMED,
				      "malformed list, line %d: '%.80s' is not an adblock rule of the form ||name^ (the "
				      "only one supported)",
				      line, s);
		s[len - 1] = '\0';
		return add_name(ns, s + 2, line, r, res);
	}
	n = tokens(s, tok, sizeof(tok) / sizeof(tok[0]));
	if (n == 1)
		return add_name(ns, tok[0], line, r, res);
	if (n > sizeof(tok) / sizeof(tok[0]) || !ip_literal(tok[0], &sink))
		return refuse(res, DP_FR_MALFORMED,
			      "malformed list, line %d: expected one name, 'ADDRESS name...' (hosts file) or '||name^'",
			      line);
	{
		bool all_boilerplate = true;

		for (size_t i = 1; i < n; i++)
			all_boilerplate = all_boilerplate && hosts_boilerplate(tok[i]);
		if (all_boilerplate)
			return 0;
	}
	if (!sink)
		return refuse(res, DP_FR_MALFORMED,
			      "malformed list, line %d: a hosts entry sends names to %.64s (allowed: 0.0.0.0, 127.0.0.1, "
			      "::, ::1; a blocklist sends names nowhere)",
			      line, tok[0]);
	for (size_t i = 1; i < n; i++)
		if (!hosts_boilerplate(tok[i]) && add_name(ns, tok[i], line, r, res))
			return -1;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Domain lists: plain, hosts-file and ||name^ lines; renders the canonical text. */
static int check_domains(char *buf, size_t size, const struct dp_list_rules *r, struct dp_list_result *res)
{
	struct names ns = { 0 };
	size_t w = 0, total = 0;
	int line = 0, rc = -1;

	for (size_t i = 0; i < size; i++) {
		if ((unsigned char)buf[i] >= 0x80) {
			for (size_t j = 0; j < i; j++)
				line += buf[j] == '\n';
			return refuse(res, DP_FR_MALFORMED,
				      "malformed list, line %d: a byte outside ASCII (internationalised names must be "
				      "written in punycode, xn--...)",
				      line + 1);
		}
	}
	for (char *s = buf, *next; s < buf + size; s = next) {
		char *nl = memchr(s, '\n', (size_t)(buf + size - s));

		next = nl ? nl + 1 : buf + size;
		if (nl)
			*nl = '\0';
		if (domain_line(&ns, s, ++line, r, res))
			goto out;
	}
	if (!ns.n) {
		refuse(res, DP_FR_EMPTY, "the list has no entries (an empty download is not trusted)");
		goto out;
	}
	qsort(ns.v, ns.n, sizeof(ns.v[0]), str_cmp);
	for (size_t i = 0; i < ns.n; i++)
		if (!w || strcmp(ns.v[w - 1], ns.v[i]))
			ns.v[w++] = ns.v[i];
	ns.n = w;
	if (ns.n < r->min_entries) {
		refuse(res, DP_FR_TOO_FEW, "the list has %zu entries, fewer than the %zu required", ns.n, r->min_entries);
		goto out;
	}
	for (size_t i = 0; i < ns.n; i++)
		total += strlen(ns.v[i]) + 1;
	res->text = malloc(total + 1);
	if (!res->text) {
		refuse(res, DP_FR_LOCAL, "out of memory");
		goto out;
	}
	res->len = 0;
	for (size_t i = 0; i < ns.n; i++)
		res->len += (size_t)sprintf(res->text + res->len, "%s\n", ns.v[i]);
	res->entries = ns.n;
	rc = 0;
out:
	free(ns.v);
	return rc;
}

int dp_list_check(enum dp_list_kind kind, char *buf, size_t size, const struct dp_list_rules *rules,
		  struct dp_list_result *res)
{
	const char *nul = memchr(buf, '\0', size);

	memset(res, 0, sizeof(*res));
	res->reason = DP_FR_NONE;
	if (nul)
		return refuse(res, DP_FR_MALFORMED, "malformed list: binary data (a NUL byte at offset %zu)",
			      (size_t)(nul - buf));
	if (kind == DP_LIST_DOMAINS)
		return check_domains(buf, size, rules, res);
	return check_prefixes(kind == DP_LIST_GEO, buf, size, rules, res);
}
