// SPDX-License-Identifier: Apache-2.0
#include "prefix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dp_pfx_parse(const char *s, struct dp_pfx *p, char *why, size_t whylen)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int maxlen, len;

	memset(p, 0, sizeof(*p));
	if (alen == 0 || alen >= sizeof(buf)) {
		snprintf(why, whylen, "expected an IPv4 or IPv6 address or CIDR");
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (strchr(buf, ':')) {
		if (inet_pton(AF_INET6, buf, p->addr) != 1) {
			snprintf(why, whylen, "'%s' is not an IPv6 address", buf);
			return -1;
		}
		p->family = 6;
		maxlen = 128;
	} else {
		if (inet_pton(AF_INET, buf, p->addr) != 1) {
			snprintf(why, whylen, "'%s' is not an IPv4 address (dotted quad, no leading zeros)", buf);
			return -1;
		}
		p->family = 4;
		maxlen = 32;
	}
	len = maxlen;
	if (slash) {
		const char *d = slash + 1;

		if (!*d || strlen(d) > 3 || strspn(d, "0123456789") != strlen(d)) {
			snprintf(why, whylen, "prefix length '%s' is not a number from 0 to %d", d, maxlen);
			return -1;
		}
		len = atoi(d);
		if (len > maxlen) {
			snprintf(why, whylen, "prefix length %d is longer than %d", len, maxlen);
			return -1;
		}
	}
	p->len = (uint8_t)len;
	for (int bit = len; bit < maxlen; bit++) {
		if (p->addr[bit / 8] & (0x80 >> (bit % 8))) {
			struct dp_pfx fixed = *p;
			char txt[64];

			for (int b = len; b < maxlen; b++)
				fixed.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
			dp_pfx_format(&fixed, txt, sizeof(txt));
			snprintf(why, whylen, "host bits set beyond /%d (did you mean %s?)", len, txt);
			return -1;
		}
	}
	return 0;
}

void dp_pfx_format(const struct dp_pfx *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
}

bool dp_pfx_covers(const struct dp_pfx *a, const struct dp_pfx *b)
{
	int full, rem;

	if (a->family != b->family || a->len > b->len)
		return false;
	full = a->len / 8;
	rem = a->len % 8;
	if (memcmp(a->addr, b->addr, (size_t)full) != 0)
		return false;
	return rem == 0 || ((a->addr[full] ^ b->addr[full]) & (0xff00 >> rem)) == 0;
}

int dp_pfx_list_push(struct dp_pfx_list *l, const struct dp_pfx *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct dp_pfx *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *p;
	return 0;
}

int dp_pfx_list_append(struct dp_pfx_list *dst, const struct dp_pfx_list *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (dp_pfx_list_push(dst, &src->v[i]))
			return -ENOMEM;
	return 0;
}

void dp_pfx_list_free(struct dp_pfx_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Reads a whole file into a NUL-terminated buffer. */
static char *slurp(const char *path, size_t *size, struct dp_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0) {
		dp_errf(err, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		dp_errf(err, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		dp_errf(err, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*size = got;
	return buf;
}

/* Parses a plain dotted-quad IPv4 address with optional /len quickly; 0 when it is one, -1 to let
 * the general parser decide (and explain). */
static int fast_v4(const char *s, size_t n, struct dp_pfx *p)
{
	uint32_t oct = 0, a = 0;
	int parts = 0, digits = 0, len = 32;
	size_t i;

	for (i = 0; i < n && s[i] != '/'; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			if ((digits == 1 && oct == 0) || ++digits > 3)
				return -1;
			oct = oct * 10 + (uint32_t)(s[i] - '0');
		} else if (s[i] == '.' && digits && parts < 3) {
			if (oct > 255)
				return -1;
			a = (a << 8) | oct;
			parts++;
			oct = 0;
			digits = 0;
		} else {
			return -1;
		}
	}
	if (parts != 3 || !digits || oct > 255)
		return -1;
	a = (a << 8) | oct;
	if (i < n) {
		if (n - i < 2 || n - i > 3)
			return -1;
		len = 0;
		for (i++; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			len = len * 10 + (s[i] - '0');
		}
		if (len > 32 || (len < 32 && (a & (0xffffffffu >> len))))
			return -1;
	}
	memset(p, 0, sizeof(*p));
	p->family = 4;
	p->len = (uint8_t)len;
	p->addr[0] = (uint8_t)(a >> 24);
	p->addr[1] = (uint8_t)(a >> 16);
	p->addr[2] = (uint8_t)(a >> 8);
	p->addr[3] = (uint8_t)a;
	return 0;
}

/* Field separators of table lines. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int dp_table_parse(char *buf, size_t size, enum dp_table_kind kind, struct dp_pfx_list *out, int *bad_line,
		   char *why, size_t whylen)
{
	size_t start_n = out->n;
	char *line, *next;
	int lineno = 0;

	for (line = buf; line < buf + size; line = next) {
		char *end = memchr(line, '\n', (size_t)(buf + size - line)), *tok, *cc = NULL;
		size_t toklen, cclen = 0;
		struct dp_pfx p;

		lineno++;
		next = end ? end + 1 : buf + size;
		if (!end)
			end = buf + size;
		*end = '\0';
		{
			/* '#' and ';' start a comment (';' as in Spamhaus' DROP lists: "1.2.3.0/24 ; SBL123") */
			char *hash = memchr(line, '#', (size_t)(end - line));
			char *semi = memchr(line, ';', (size_t)(end - line));

			if (hash)
				end = hash;
			if (semi && semi < end)
				end = semi;
		}
		for (tok = line; tok < end && is_space(*tok); tok++)
			;
		if (tok == end)
			continue;
		for (toklen = 0; tok + toklen < end && !is_space(tok[toklen]); toklen++)
			;
		{
			char *rest = tok + toklen;

			while (rest < end && is_space(*rest))
				rest++;
			if (rest < end) {
				cc = rest;
				while (cc + cclen < end && !is_space(cc[cclen]))
					cclen++;
				for (rest = cc + cclen; rest < end && is_space(*rest); rest++)
					;
				if (rest < end || kind != DP_TABLE_GEO) {
					snprintf(why, whylen, "expected %s",
						 kind == DP_TABLE_GEO ? "'CIDR CC' (e.g. '192.0.2.0/24 NL')" : "one CIDR per line");
					goto fail;
				}
			}
		}
		if (kind == DP_TABLE_GEO && !cc) {
			snprintf(why, whylen, "expected 'CIDR CC' (e.g. '192.0.2.0/24 NL')");
			goto fail;
		}
		if (fast_v4(tok, toklen, &p)) {
			tok[toklen] = '\0';
			if (dp_pfx_parse(tok, &p, why, whylen) < 0)
				goto fail;
		}
		if (cc) {
			if (cclen != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
				snprintf(why, whylen, "country '%.*s' is not an ISO 3166 alpha-2 code (two letters A-Z)",
					 (int)(cclen > 8 ? 8 : cclen), cc);
				goto fail;
			}
			p.cc[0] = cc[0];
			p.cc[1] = cc[1];
		}
		if (dp_pfx_list_push(out, &p)) {
			lineno = 0;
			snprintf(why, whylen, "out of memory");
			goto fail;
		}
	}
	return 0;
fail:
	*bad_line = lineno;
	out->n = start_n;
	return -1;
}

int dp_table_file_load(const char *path, enum dp_table_kind kind, struct dp_pfx_list *out, struct dp_err *err)
{
	size_t size;
	char *buf = slurp(path, &size, err), why[512];
	int line = 0;

	if (!buf)
		return -1;
	if (dp_table_parse(buf, size, kind, out, &line, why, sizeof(why))) {
		if (line)
			dp_errf(err, "%s:%d: %s", path, line, why);
		else
			dp_errf(err, "%s: %s", path, why);
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}
