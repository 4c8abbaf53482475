// SPDX-License-Identifier: Apache-2.0
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/dp_shared.h"
#include "dynblock.h"
#include "netlink.h"

#define MAX_SEEN 512

struct seen_key {
	char section[64];
	char key[40];
	int line;
};

struct parse_state {
	struct dp_config *cfg;
	struct dp_err *err;
	FILE *f;
	int line;       /* line the reader returned last */
	int long_line;  /* that line was longer than inih's buffer */
	int nerr;
	struct seen_key seen[MAX_SEEN];
	int n_seen;
	int iface_line[DP_MAX_IFACES];
	int mgmt_links_line; /* of [global] management_links */
};

/* Named sections "[KIND NAME]": interface, wan and feed. */
enum named_kind {
	NAMED_NONE,
	NAMED_IFACE,
	NAMED_WAN,
	NAMED_FEED,
};

/* Kind of a section name and, for named sections, where the name starts; NAMED_NONE otherwise. */
static enum named_kind named_section(const char *sec, const char **name)
{
	static const struct {
		const char *word;
		enum named_kind kind;
	} kinds[] = { { "interface", NAMED_IFACE }, { "wan", NAMED_WAN }, { "feed", NAMED_FEED } };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].word);

		if (strncmp(sec, kinds[i].word, n) == 0 && isspace((unsigned char)sec[n])) {
			const char *p = sec + n;

			while (isspace((unsigned char)*p))
				p++;
			*name = p;
			return kinds[i].kind;
		}
	}
	*name = NULL;
	return NAMED_NONE;
}

/* True for a valid interface name: 1-15 characters, no '/', ':' or whitespace, not . or .. */
static bool ifname_ok(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len < IFNAMSIZ && strcmp(name, ".") && strcmp(name, "..") && !strpbrk(name, "/: \t");
}

/* True for a feed name: 1-63 of a-z 0-9 '-', not starting or ending with '-' (it names a file). */
static bool feed_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len < 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len && name[0] != '-' &&
	       name[len - 1] != '-';
}

/* Records a problem at the current line; returns 0 so inih carries on (all problems are listed). */
static int bad(struct parse_state *st, const char *section, const char *key, const char *value, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int bad(struct parse_state *st, const char *section, const char *key, const char *value, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	st->nerr++;
	if (key)
		dp_err_append(st->err, "%s:%d: [%s] %s = %s: %s", st->cfg->path, st->line, section, key, value, why);
	else
		dp_err_append(st->err, "%s:%d: %s", st->cfg->path, st->line, why);
	return 0;
}

/* libinih line reader: counts lines, creates interface entries from section headers, and flags
 * lines longer than inih's buffer instead of letting inih split them. */
static char *reader(char *buf, int size, void *user)
{
	struct parse_state *st = user;
	char *s, *e;
	size_t n;

	if (!fgets(buf, size, st->f))
		return NULL;
	st->line++;
	n = strlen(buf);
	st->long_line = 0;
	if (n > 0 && buf[n - 1] != '\n' && !feof(st->f)) {
		int ch;

		while ((ch = fgetc(st->f)) != EOF && ch != '\n')
			;
		st->long_line = 1;
		bad(st, NULL, NULL, NULL, "line longer than %d characters", size - 2);
		buf[0] = '\0';
		return buf;
	}
	for (s = buf; isspace((unsigned char)*s); s++)
		;
	if (*s != '[')
		return buf;
	e = strchr(s, ']');
	if (!e)
		return buf; /* inih reports the syntax error */
	{
		char sec[128], name[64];
		const char *np;
		size_t len = (size_t)(e - s - 1);
		enum named_kind kind;
		struct dp_config *c = st->cfg;

		if (len >= sizeof(sec))
			return buf; /* not a named section we know; the handler reports it */
		memcpy(sec, s + 1, len);
		sec[len] = '\0';
		kind = named_section(sec, &np);
		if (kind == NAMED_NONE && strcmp(sec, "dynamic_block") == 0) {
			c->dyn.enabled = true;
			c->dyn.line = st->line;
		}
		if (kind == NAMED_NONE)
			return buf;
		len = strlen(np);
		while (len > 0 && isspace((unsigned char)np[len - 1]))
			len--;
		if (len == 0 || len >= sizeof(name)) {
			bad(st, NULL, NULL, NULL, "section '[%.*s NAME]' needs a name of 1-%d characters",
			    (int)(np - sec - 1), sec, kind == NAMED_FEED ? 63 : IFNAMSIZ - 1);
			return buf;
		}
		memcpy(name, np, len);
		name[len] = '\0';
		if (kind == NAMED_IFACE) {
			for (int i = 0; i < c->n_ifaces; i++) {
				if (strcmp(c->ifaces[i].name, name) == 0) {
					bad(st, NULL, NULL, NULL, "section [interface %s] appears twice (first at line %d)",
					    name, st->iface_line[i]);
					return buf;
				}
			}
			if (!ifname_ok(name)) {
				bad(st, NULL, NULL, NULL,
				    "'%s' is not a valid interface name (1-15 characters, no '/', ':' or spaces)", name);
				return buf;
			}
			if (c->n_ifaces == DP_MAX_IFACES) {
				bad(st, NULL, NULL, NULL, "more than %d interfaces", DP_MAX_IFACES);
				return buf;
			}
			{
				struct dp_iface *ifc = &c->ifaces[c->n_ifaces];

				memset(ifc, 0, sizeof(*ifc));
				snprintf(ifc->name, sizeof(ifc->name), "%s", name);
				ifc->rewrite_dscp = -1;
				for (int d = 0; d < 64; d++)
					ifc->dscp_priority[d] = DP_SEG_NO_RULE;
				ifc->line = st->line;
				st->iface_line[c->n_ifaces++] = st->line;
			}
		} else if (kind == NAMED_WAN) {
			for (int i = 0; i < c->n_wans; i++) {
				if (strcmp(c->wans[i].name, name) == 0) {
					bad(st, NULL, NULL, NULL, "section [wan %s] appears twice (first at line %d)", name,
					    c->wans[i].line);
					return buf;
				}
			}
			if (!ifname_ok(name)) {
				bad(st, NULL, NULL, NULL,
				    "'%s' is not a valid interface name for [wan NAME] (1-15 characters, no '/', ':' or "
				    "spaces)",
				    name);
				return buf;
			}
			if (c->n_wans == DP_MAX_WANS) {
				bad(st, NULL, NULL, NULL, "more than %d [wan] sections (one per mark value within 0x%x)",
				    DP_MAX_WANS, DP_WAN_MARK_MASK);
				return buf;
			}
			{
				struct dp_wan *w = &c->wans[c->n_wans++];

				memset(w, 0, sizeof(*w));
				snprintf(w->name, sizeof(w->name), "%s", name);
				w->interval_ms = 2000;
				w->timeout_ms = 1000;
				w->down_after = 3;
				w->up_after = 2;
				w->line = st->line;
			}
		} else {
			for (int i = 0; i < c->n_feeds; i++) {
				if (strcmp(c->feeds[i].name, name) == 0) {
					bad(st, NULL, NULL, NULL, "section [feed %s] appears twice (first at line %d)", name,
					    c->feeds[i].line);
					return buf;
				}
			}
			if (!feed_name_ok(name)) {
				bad(st, NULL, NULL, NULL,
				    "'%s' is not a valid feed name (1-63 of a-z 0-9 '-', no leading or trailing '-'; it "
				    "names the cache file)",
				    name);
				return buf;
			}
			if (c->n_feeds == DP_MAX_FEEDS) {
				bad(st, NULL, NULL, NULL, "more than %d [feed] sections", DP_MAX_FEEDS);
				return buf;
			}
			{
				struct dp_feed *f = &c->feeds[c->n_feeds++];

				memset(f, 0, sizeof(*f));
				snprintf(f->name, sizeof(f->name), "%s", name);
				f->refresh_ms = 6ULL * 3600 * 1000;
				f->timeout_ms = 120ULL * 1000;
				f->min_entries = 1;
				f->line = st->line;
			}
		}
	}
	return buf;
}

/* Rejects a second occurrence of a key that may appear once per section. */
static int once(struct parse_state *st, const char *section, const char *key, const char *value)
{
	for (int i = 0; i < st->n_seen; i++) {
		if (strcmp(st->seen[i].section, section) == 0 && strcmp(st->seen[i].key, key) == 0) {
			bad(st, section, key, value, "given twice (first at line %d); only allow, block, geo, extra, "
						     "qos_dscp_priority, probe and protect may repeat",
			    st->seen[i].line);
			return 0;
		}
	}
	if (st->n_seen < MAX_SEEN) {
		struct seen_key *s = &st->seen[st->n_seen++];

		snprintf(s->section, sizeof(s->section), "%s", section);
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->line = st->line;
	}
	return 1;
}

/* Parses true/false into *out; returns 1, or 0 after recording the problem. */
static int parse_bool(struct parse_state *st, const char *sec, const char *key, const char *v, bool *out)
{
	if (strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0)
		*out = false;
	else
		return bad(st, sec, key, v, "expected true or false");
	return 1;
}

static int parse_u32(struct parse_state *st, const char *sec, const char *key, const char *v, uint32_t min,
		     uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (!isdigit((unsigned char)*v))
		return bad(st, sec, key, v, "expected an integer from %u to %u", min, max);
	x = strtoull(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return bad(st, sec, key, v, "expected an integer from %u to %u", min, max);
	*out = (uint32_t)x;
	return 1;
}

static int parse_path(struct parse_state *st, const char *sec, const char *key, const char *v, char *out,
		      size_t cap)
{
	if (v[0] != '/')
		return bad(st, sec, key, v, "expected an absolute path");
	if (strlen(v) >= cap)
		return bad(st, sec, key, v, "path longer than %zu characters", cap - 1);
	snprintf(out, cap, "%s", v);
	return 1;
}

/* Appends an absolute, not yet listed path to a repeatable file list; 1 or 0 (problem recorded). */
static int add_path(struct parse_state *st, const char *sec, const char *key, const char *v, char **list, int *n)
{
	if (v[0] != '/')
		return bad(st, sec, key, v, "expected an absolute path");
	if (*n == DP_MAX_FILES)
		return bad(st, sec, key, v, "more than %d files", DP_MAX_FILES);
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], v) == 0)
			return bad(st, sec, key, v, "file listed twice");
	list[*n] = strdup(v);
	if (!list[*n])
		return bad(st, sec, key, v, "out of memory");
	(*n)++;
	return 1;
}

/*
 * Splits a comma-separated value into trimmed items of at most cap-1 characters, calling item() for each;
 * an empty item is an error. Returns 1, or 0 after recording the problem (item() records its own).
 */
static int comma_list(struct parse_state *st, const char *sec, const char *key, const char *v, size_t cap,
		      int (*item)(struct parse_state *st, const char *sec, const char *key, const char *v, const char *it))
{
	const char *p = v;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p), a = 0, b = n;
		char it[64];

		while (a < n && isspace((unsigned char)p[a]))
			a++;
		while (b > a && isspace((unsigned char)p[b - 1]))
			b--;
		if (b == a)
			return bad(st, sec, key, v, "empty item in the comma-separated list");
		if (b - a >= cap || b - a >= sizeof(it))
			return bad(st, sec, key, v, "'%.*s' is too long", (int)(b - a), p + a);
		memcpy(it, p + a, b - a);
		it[b - a] = '\0';
		if (!item(st, sec, key, v, it))
			return 0;
		if (!comma)
			return 1;
		p = comma + 1;
	}
}

/* One name of management_links: an interface name, listed once. */
static int mgmt_link_item(struct parse_state *st, const char *sec, const char *key, const char *v, const char *it)
{
	struct dp_config *c = st->cfg;

	if (!ifname_ok(it) || strpbrk(it, "\"\\"))
		return bad(st, sec, key, v, "'%s' is not a valid interface name (1-15 characters, no '/', ':', quotes or "
					    "spaces)", it);
	for (int i = 0; i < c->n_management_links; i++)
		if (strcmp(c->management_links[i], it) == 0)
			return bad(st, sec, key, v, "%s is listed twice", it);
	if (c->n_management_links == DP_MAX_IFACES)
		return bad(st, sec, key, v, "more than %d links", DP_MAX_IFACES);
	snprintf(c->management_links[c->n_management_links++], IFNAMSIZ, "%s", it);
	return 1;
}

/* One port of management_ports: 1-65535, listed once. */
static int mgmt_port_item(struct parse_state *st, const char *sec, const char *key, const char *v, const char *it)
{
	struct dp_config *c = st->cfg;
	uint32_t port;

	if (!parse_u32(st, sec, key, it, 1, 65535, &port))
		return 0;
	for (int i = 0; i < c->n_management_ports; i++)
		if (c->management_ports[i] == port)
			return bad(st, sec, key, v, "port %u is listed twice", port);
	if (c->n_management_ports == DP_MAX_MGMT_PORTS)
		return bad(st, sec, key, v, "more than %d ports", DP_MAX_MGMT_PORTS);
	c->management_ports[c->n_management_ports++] = (uint16_t)port;
	return 1;
}

/*
 * One protocol of stale_route_protocols: 5-255, never the kernel's own (0 unspec, 1 redirect, 2 kernel,
 * 3 boot, 4 static: routes the kernel, networkd or an operator made) nor DP_RTPROT (the loader's own
 * routes), listed once.
 */
static int stale_proto_item(struct parse_state *st, const char *sec, const char *key, const char *v, const char *it)
{
	struct dp_config *c = st->cfg;
	char *end = NULL;
	unsigned long x;

	errno = 0;
	x = isdigit((unsigned char)it[0]) ? strtoul(it, &end, 10) : 0;
	if (!isdigit((unsigned char)it[0]) || errno || *end || x > 255)
		return bad(st, sec, key, v, "'%s' is not a route protocol number (expected 5-255 other than %d)", it,
			   DP_RTPROT);
	if (x <= 4)
		return bad(st, sec, key, v,
			   "protocol %lu is the kernel's own (0 unspec, 1 redirect, 2 kernel, 3 boot, 4 static: routes "
			   "the kernel, the network configuration or an operator made); expected 5-255 other than %d",
			   x, DP_RTPROT);
	if (x == DP_RTPROT)
		return bad(st, sec, key, v, "protocol %d marks the loader's own routes; expected 5-255 other than %d",
			   DP_RTPROT, DP_RTPROT);
	for (int i = 0; i < c->n_stale_route_protocols; i++)
		if (c->stale_route_protocols[i] == x)
			return bad(st, sec, key, v, "protocol %lu is listed twice", x);
	c->stale_route_protocols[c->n_stale_route_protocols++] = (uint8_t)x;
	return 1;
}

/* The keys of [global] that concern the fail-closed start: forwarding, generation, management. */
static int global_failclosed_key(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_config *c = st->cfg;

	if (strcmp(key, "enable_forwarding") == 0)
		return parse_bool(st, sec, key, v, &c->enable_forwarding);
	if (strcmp(key, "generation") == 0) {
		size_t n = strlen(v);

		if (n == 0 || n >= sizeof(c->generation) || strspn(v, "0123456789abcdef") != n)
			return bad(st, sec, key, v, "expected 1-%zu lower-case hexadecimal digits (the renderer's digest)",
				   sizeof(c->generation) - 1);
		snprintf(c->generation, sizeof(c->generation), "%s", v);
		return 1;
	}
	if (strcmp(key, "management_links") == 0) {
		c->n_management_links = 0;
		c->has_management_links = true;
		st->mgmt_links_line = st->line;
		return comma_list(st, sec, key, v, IFNAMSIZ, mgmt_link_item);
	}
	if (strcmp(key, "management_ports") == 0) {
		c->n_management_ports = 0;
		return comma_list(st, sec, key, v, 6, mgmt_port_item);
	}
	return -1;
}

/* One key of [global]; 1 or 0 (problem recorded). */
static int global_key(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_config *c = st->cfg;
	int rc = global_failclosed_key(st, sec, key, v);

	if (rc >= 0)
		return rc;

	if (strcmp(key, "pin_root") == 0)
		return parse_path(st, sec, key, v, c->pin_root, sizeof(c->pin_root));
	if (strcmp(key, "state_dir") == 0)
		return parse_path(st, sec, key, v, c->state_dir, sizeof(c->state_dir));
	if (strcmp(key, "nft_ruleset") == 0)
		return parse_path(st, sec, key, v, c->nft_ruleset, sizeof(c->nft_ruleset));
	if (strcmp(key, "resolv_conf") == 0)
		return parse_path(st, sec, key, v, c->resolv_conf, sizeof(c->resolv_conf));
	if (strcmp(key, "stale_route_protocols") == 0) {
		/* empty: none (the site runs the routing daemon that owns those routes) */
		c->n_stale_route_protocols = 0;
		return v[0] ? comma_list(st, sec, key, v, 16, stale_proto_item) : 1;
	}
	if (strcmp(key, "metrics_address") == 0) {
		unsigned char buf[16];

		if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1)
			return bad(st, sec, key, v, "expected an IPv4 or IPv6 address literal");
		snprintf(c->metrics_address, sizeof(c->metrics_address), "%s", v);
		return 1;
	}
	if (strcmp(key, "metrics_port") == 0) {
		uint32_t port;

		if (!parse_u32(st, sec, key, v, 0, 65535, &port))
			return 0;
		c->metrics_port = (int)port;
		return 1;
	}
	return bad(st, sec, key, v,
		   "unknown key; [global] allows pin_root, metrics_address, metrics_port, nft_ruleset, state_dir, "
		   "resolv_conf, enable_forwarding, generation, management_links, management_ports, "
		   "stale_route_protocols");
}

/* One key of an [interface NAME] section; role-specific checks wait for the end of the file. */
static int iface_key(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_iface *ifc = NULL;
	const char *name = sec + 9;

	while (isspace((unsigned char)*name))
		name++;
	for (int i = 0; i < st->cfg->n_ifaces; i++)
		if (strcmp(st->cfg->ifaces[i].name, name) == 0)
			ifc = &st->cfg->ifaces[i];
	if (!ifc)
		return 0; /* the section header was rejected already */

	if (strcmp(key, "role") == 0) {
		if (strcmp(v, "wan") == 0)
			ifc->role = DP_ROLE_WAN;
		else if (strcmp(v, "segment") == 0)
			ifc->role = DP_ROLE_SEGMENT;
		else
			return bad(st, sec, key, v, "expected wan or segment");
		return 1;
	}
	if (strcmp(key, "xdp_mode") == 0) {
		if (strcmp(v, "native") == 0)
			ifc->xdp_mode = DP_XDP_NATIVE;
		else if (strcmp(v, "native-only") == 0)
			ifc->xdp_mode = DP_XDP_NATIVE_ONLY;
		else if (strcmp(v, "generic") == 0)
			ifc->xdp_mode = DP_XDP_GENERIC;
		else
			return bad(st, sec, key, v,
				   "expected native (driver mode, generic where the driver has none), native-only or "
				   "generic");
		return 1;
	}
	if (strcmp(key, "segment") == 0) {
		size_t n = strlen(v);

		if (n == 0 || n > 32 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
			return bad(st, sec, key, v, "expected 1-32 characters from A-Z a-z 0-9 _ . -");
		snprintf(ifc->segment, sizeof(ifc->segment), "%s", v);
		return 1;
	}
	if (strcmp(key, "segment_id") == 0) {
		if (!parse_u32(st, sec, key, v, 0, DP_VLAN_IDS - 1, &ifc->segment_id))
			return 0;
		ifc->has_segment_id = true;
		return 1;
	}
	if (strcmp(key, "qos_default_priority") == 0)
		return parse_u32(st, sec, key, v, 0, DP_SEG_NO_RULE - 1, &ifc->default_priority);
	if (strcmp(key, "qos_dscp_priority") == 0) {
		char dscp_s[16];
		const char *colon = strchr(v, ':');
		uint32_t dscp, prio;

		if (!colon || (size_t)(colon - v) >= sizeof(dscp_s))
			return bad(st, sec, key, v, "expected DSCP:PRIORITY, e.g. 46:6");
		memcpy(dscp_s, v, (size_t)(colon - v));
		dscp_s[colon - v] = '\0';
		if (!parse_u32(st, sec, key, dscp_s, 0, 63, &dscp) ||
		    !parse_u32(st, sec, key, colon + 1, 0, DP_SEG_NO_RULE - 1, &prio))
			return 0;
		if (ifc->dscp_priority[dscp] != DP_SEG_NO_RULE)
			return bad(st, sec, key, v, "DSCP %u already has a priority", dscp);
		ifc->dscp_priority[dscp] = prio;
		return 1;
	}
	if (strcmp(key, "qos_rewrite_dscp") == 0) {
		uint32_t d;

		if (!parse_u32(st, sec, key, v, 0, 63, &d))
			return 0;
		ifc->rewrite_dscp = (int)d;
		return 1;
	}
	if (strcmp(key, "qos_trust_pcp") == 0)
		return parse_bool(st, sec, key, v, &ifc->trust_pcp);
	return bad(st, sec, key, v,
		   "unknown key; an interface allows role, xdp_mode (wan), segment, segment_id, qos_default_priority, "
		   "qos_dscp_priority, qos_rewrite_dscp, qos_trust_pcp (segment)");
}

int dp_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t total = 0;
	const char *p = s;

	if (!*p)
		return -1;
	while (*p) {
		uint64_t n = 0, unit;
		int digits = 0;

		while (isdigit((unsigned char)*p)) {
			if (n > 1000000000ULL)
				return -1;
			n = n * 10 + (uint64_t)(*p++ - '0');
			digits++;
		}
		if (!digits)
			return -1;
		if (p[0] == 'm' && p[1] == 's') {
			unit = 1;
			p += 2;
		} else if (*p == 'h' || *p == 'm' || *p == 's') {
			unit = *p == 'h' ? 3600000 : *p == 'm' ? 60000 : 1000;
			p++;
		} else {
			return -1;
		}
		total += n * unit;
		if (total > 100ULL * 24 * 3600 * 1000)
			return -1;
	}
	*ms = total;
	return 0;
}

/* Parses a duration key into *out (ms) within [min, max] ms; 1 or 0 (problem recorded). */
static int parse_dur(struct parse_state *st, const char *sec, const char *key, const char *v, uint64_t min,
		     uint64_t max, const char *range, uint64_t *out)
{
	uint64_t ms;

	if (dp_parse_duration(v, &ms))
		return bad(st, sec, key, v, "expected a duration such as 500ms, 2s, 5m or 1h30m (units h, m, s, ms), %s",
			   range);
	if (ms < min || ms > max)
		return bad(st, sec, key, v, "expected a duration %s", range);
	*out = ms;
	return 1;
}

/* Parses a decimal or 0x-hexadecimal 32-bit number; 0 or -1. */
static int parse_num(const char *v, uint32_t *out)
{
	char *end;
	unsigned long long x;
	int base = (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) ? 16 : 10;

	if (!isdigit((unsigned char)v[0]) || (base == 16 && !isxdigit((unsigned char)v[2])))
		return -1;
	errno = 0;
	x = strtoull(base == 16 ? v + 2 : v, &end, base);
	if (errno || *end || x > 0xffffffffULL)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* One key of a [wan NAME] section; cross-field checks wait for the end of the file. */
static int wan_key(struct parse_state *st, const char *sec, const char *name, const char *key, const char *v)
{
	struct dp_wan *w = NULL;
	uint64_t ms;

	for (int i = 0; i < st->cfg->n_wans; i++)
		if (strcmp(st->cfg->wans[i].name, name) == 0)
			w = &st->cfg->wans[i];
	if (!w)
		return 0; /* the section header was rejected already */
	if (strcmp(key, "priority") == 0) {
		w->has_priority = parse_u32(st, sec, key, v, 0, 65535, &w->priority);
		return w->has_priority;
	}
	if (strcmp(key, "mark") == 0) {
		uint32_t m;

		if (parse_num(v, &m) || m == 0 || (m & ~DP_WAN_MARK_MASK))
			return bad(st, sec, key, v,
				   "expected a non-zero mark within 0x%x (bits 4-7, e.g. 0x10, 0x20, ... 0xf0)",
				   DP_WAN_MARK_MASK);
		w->mark = m;
		w->has_mark = true;
		return 1;
	}
	if (strcmp(key, "table") == 0) {
		uint32_t t;

		if (parse_num(v, &t) || t == 0 || (t >= 253 && t <= 255))
			return bad(st, sec, key, v,
				   "expected a routing table number from 1 to 4294967295 other than 253, 254 and 255 "
				   "(default, main, local)");
		w->table = t;
		w->has_table = true;
		return 1;
	}
	if (strcmp(key, "probe") == 0) {
		struct dp_probe *p;

		if (w->n_probes == DP_MAX_PROBES)
			return bad(st, sec, key, v, "more than %d probe targets", DP_MAX_PROBES);
		p = &w->probes[w->n_probes];
		memset(p, 0, sizeof(*p));
		if (inet_pton(AF_INET, v, p->addr) == 1)
			p->family = 4;
		else if (inet_pton(AF_INET6, v, p->addr) == 1)
			p->family = 6;
		else
			return bad(st, sec, key, v, "expected an IPv4 or IPv6 address literal to send ICMP echo requests to");
		for (int i = 0; i < w->n_probes; i++)
			if (w->probes[i].family == p->family && !memcmp(w->probes[i].addr, p->addr, 16))
				return bad(st, sec, key, v, "probe target listed twice");
		snprintf(p->text, sizeof(p->text), "%s", v);
		w->n_probes++;
		return 1;
	}
	if (strcmp(key, "probe_interval") == 0) {
		if (!parse_dur(st, sec, key, v, 100, 3600000, "from 100ms to 1h", &ms))
			return 0;
		w->interval_ms = (uint32_t)ms;
		return 1;
	}
	if (strcmp(key, "probe_timeout") == 0) {
		if (!parse_dur(st, sec, key, v, 10, 3600000, "from 10ms to 1h (at most probe_interval)", &ms))
			return 0;
		w->timeout_ms = (uint32_t)ms;
		return 1;
	}
	if (strcmp(key, "down_after") == 0)
		return parse_u32(st, sec, key, v, 1, 100, &w->down_after);
	if (strcmp(key, "up_after") == 0)
		return parse_u32(st, sec, key, v, 1, 100, &w->up_after);
	return bad(st, sec, key, v,
		   "unknown key; [wan NAME] allows priority, mark, table, probe, probe_interval, probe_timeout, "
		   "down_after, up_after");
}

/* One key of a [feed NAME] section. */
static int feed_key(struct parse_state *st, const char *sec, const char *name, const char *key, const char *v)
{
	struct dp_feed *f = NULL;

	for (int i = 0; i < st->cfg->n_feeds; i++)
		if (strcmp(st->cfg->feeds[i].name, name) == 0)
			f = &st->cfg->feeds[i];
	if (!f)
		return 0;
	if (strcmp(key, "url") == 0) {
		const char *host = v + 8;

		if (strncmp(v, "https://", 8) != 0 || !*host || *host == '/' || strpbrk(v, " \t\"'\\<>") ||
		    strlen(v) >= sizeof(f->url))
			return bad(st, sec, key, v,
				   "expected an https:// URL with a host, without spaces or quotes, up to %zu characters "
				   "(feeds are fetched with TLS verification)",
				   sizeof(f->url) - 1);
		snprintf(f->url, sizeof(f->url), "%s", v);
		return 1;
	}
	if (strcmp(key, "kind") == 0) {
		if (strcmp(v, "block") == 0)
			f->kind = DP_FEED_BLOCK;
		else if (strcmp(v, "allow") == 0)
			f->kind = DP_FEED_ALLOW;
		else if (strcmp(v, "geo") == 0)
			f->kind = DP_FEED_GEO;
		else
			return bad(st, sec, key, v, "expected block, allow or geo (the table the list feeds)");
		f->has_kind = true;
		return 1;
	}
	if (strcmp(key, "refresh") == 0)
		return parse_dur(st, sec, key, v, 1000, 30ULL * 24 * 3600 * 1000, "from 1s to 720h", &f->refresh_ms);
	if (strcmp(key, "timeout") == 0)
		return parse_dur(st, sec, key, v, 1000, 3600ULL * 1000, "from 1s to 1h", &f->timeout_ms);
	if (strcmp(key, "min_entries") == 0)
		return parse_u32(st, sec, key, v, 1, 100000000, &f->min_entries);
	return bad(st, sec, key, v, "unknown key; [feed NAME] allows url, kind, refresh, timeout, min_entries");
}

/* One key of [ratelimit]; 1 or 0 (problem recorded). */
static int rate_key(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_config *c = st->cfg;
	static const struct {
		const char *name;
		size_t off;
		int burst;
	} keys[] = {
		{ "syn_rate", offsetof(struct dp_config, syn.rate), 0 },
		{ "syn_burst", offsetof(struct dp_config, syn.burst), 1 },
		{ "icmp_rate", offsetof(struct dp_config, icmp.rate), 0 },
		{ "icmp_burst", offsetof(struct dp_config, icmp.burst), 1 },
		{ "udp_rate", offsetof(struct dp_config, udp.rate), 0 },
		{ "udp_burst", offsetof(struct dp_config, udp.burst), 1 },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].name) == 0) {
			uint32_t *dst = (uint32_t *)((char *)c + keys[i].off);

			return keys[i].burst ? parse_u32(st, sec, key, v, 1, DP_RL_MAX_BURST, dst)
					     : parse_u32(st, sec, key, v, 0, 100000000, dst);
		}
	}
	if (strcmp(key, "slots") == 0) {
		char *end;
		unsigned long long s;

		errno = 0;
		s = isdigit((unsigned char)*v) ? strtoull(v, &end, 10) : 0;
		if (!s || errno || *end || s < 1024 || s > 1u << DP_RL_MAX_SLOT_BITS || (s & (s - 1)))
			return bad(st, sec, key, v, "expected a power of two from 1024 to %u (the size of the bucket array)",
				   1u << DP_RL_MAX_SLOT_BITS);
		c->slots = (uint32_t)s;
		return 1;
	}
	return bad(st, sec, key, v,
		   "unknown key; [ratelimit] allows syn_rate, syn_burst, icmp_rate, icmp_burst, udp_rate, udp_burst, slots");
}

/* Parses block_countries (comma-separated ISO 3166 alpha-2 codes). */
static int countries(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_config *c = st->cfg;
	const char *p = v;

	c->n_block_countries = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char code[8] = "";
		size_t a = 0, b = n;

		while (a < n && isspace((unsigned char)p[a]))
			a++;
		while (b > a && isspace((unsigned char)p[b - 1]))
			b--;
		if (b - a != 2 || !isupper((unsigned char)p[a]) || !isupper((unsigned char)p[a + 1])) {
			snprintf(code, sizeof(code), "%.*s", (int)(b - a > 6 ? 6 : b - a), p + a);
			return bad(st, sec, key, v, "'%s' is not an ISO 3166 alpha-2 code (two letters A-Z, comma separated)",
				   code);
		}
		if (c->n_block_countries == DP_MAX_COUNTRIES)
			return bad(st, sec, key, v, "more than %d countries", DP_MAX_COUNTRIES);
		memcpy(c->block_countries[c->n_block_countries], p + a, 2);
		c->block_countries[c->n_block_countries++][2] = '\0';
		if (!comma)
			break;
		p = comma + 1;
	}
	return 1;
}

/* One key of [dynamic_block]; 1 or 0 (problem recorded). */
static int dyn_key(struct parse_state *st, const char *sec, const char *key, const char *v)
{
	struct dp_dynamic_block *b = &st->cfg->dyn;
	uint64_t ms;

	if (strcmp(key, "socket") == 0)
		return parse_path(st, sec, key, v, b->socket, sizeof(b->socket));
	if (strcmp(key, "agent_uid") == 0) {
		/* the agent reads what Suricata makes of hostile traffic: it never runs as root */
		if (!parse_u32(st, sec, key, v, 1, 4294967294u, &b->agent_uid))
			return 0;
		b->has_agent_uid = true;
		return 1;
	}
	if (strcmp(key, "duration") == 0) {
		if (!parse_dur(st, sec, key, v, 1000, (uint64_t)DP_DYN_MAX_SECONDS * 1000, "from 1s to 720h", &ms))
			return 0;
		if (ms % 1000)
			return bad(st, sec, key, v, "expected whole seconds (e.g. 90s, 1h)");
		b->seconds = (uint32_t)(ms / 1000);
		return 1;
	}
	if (strcmp(key, "max_entries") == 0)
		return parse_u32(st, sec, key, v, 16, 1u << 20, &b->max_entries);
	if (strcmp(key, "protect") == 0)
		return add_path(st, sec, key, v, b->protect, &b->n_protect);
	return bad(st, sec, key, v, "unknown key; [dynamic_block] allows socket, agent_uid, duration, max_entries, protect");
}

/* libinih callback: strips " # comment", rejects repeats of single-valued keys, dispatches by section. Always returns 1 so every problem of the file is collected. */
static int handler(void *user, const char *section, const char *name, const char *value_in)
{
	struct parse_state *st = user;
	struct dp_config *c = st->cfg;
	char value[PATH_MAX + 64];
	char *hash;
	const char *sname;
	enum named_kind kind;
	int repeatable;

	if (st->long_line)
		return 1;
	/* inih strips " ; comment"; strip " # comment" the same way. */
	snprintf(value, sizeof(value), "%s", value_in);
	for (hash = strchr(value, '#'); hash; hash = strchr(hash + 1, '#')) {
		if (hash == value || isspace((unsigned char)hash[-1])) {
			*hash = '\0';
			break;
		}
	}
	for (size_t n = strlen(value); n > 0 && isspace((unsigned char)value[n - 1]); n--)
		value[n - 1] = '\0';

	repeatable = (strcmp(section, "tables") == 0 &&
		      (!strcmp(name, "allow") || !strcmp(name, "block") || !strcmp(name, "geo"))) ||
		     (strcmp(section, "bogons") == 0 && !strcmp(name, "extra")) ||
		     (strncmp(section, "interface", 9) == 0 && !strcmp(name, "qos_dscp_priority")) ||
		     (strncmp(section, "wan", 3) == 0 && !strcmp(name, "probe")) ||
		     (strcmp(section, "dynamic_block") == 0 && !strcmp(name, "protect"));
	if (!repeatable && !once(st, section, name, value))
		return 1;

	kind = named_section(section, &sname);
	if (strcmp(section, "global") == 0) {
		global_key(st, section, name, value);
	} else if (kind == NAMED_IFACE) {
		iface_key(st, section, name, value);
	} else if (kind == NAMED_WAN) {
		wan_key(st, section, sname, name, value);
	} else if (kind == NAMED_FEED) {
		feed_key(st, section, sname, name, value);
	} else if (strcmp(section, "features") == 0) {
		bool *dst = !strcmp(name, "bogons_ipv4") ? &c->bogons4
			    : !strcmp(name, "bogons_ipv6") ? &c->bogons6
			    : !strcmp(name, "blocklist")   ? &c->blocklist
			    : !strcmp(name, "geoip")       ? &c->geoip
			    : !strcmp(name, "ratelimit")   ? &c->ratelimit
							   : NULL;

		if (!dst)
			bad(st, section, name, value,
			    "unknown key; [features] allows bogons_ipv4, bogons_ipv6, blocklist, geoip, ratelimit");
		else
			parse_bool(st, section, name, value, dst);
	} else if (strcmp(section, "bogons") == 0) {
		if (strcmp(name, "extra") == 0)
			add_path(st, section, name, value, c->bogon_extra, &c->n_bogon_extra);
		else
			bad(st, section, name, value, "unknown key; [bogons] allows extra");
	} else if (strcmp(section, "tables") == 0) {
		if (strcmp(name, "allow") == 0)
			add_path(st, section, name, value, c->allow, &c->n_allow);
		else if (strcmp(name, "block") == 0)
			add_path(st, section, name, value, c->block, &c->n_block);
		else if (strcmp(name, "geo") == 0)
			add_path(st, section, name, value, c->geo, &c->n_geo);
		else if (strcmp(name, "block_countries") == 0)
			countries(st, section, name, value);
		else
			bad(st, section, name, value, "unknown key; [tables] allows allow, block, geo, block_countries");
	} else if (strcmp(section, "ratelimit") == 0) {
		rate_key(st, section, name, value);
	} else if (strcmp(section, "dynamic_block") == 0) {
		dyn_key(st, section, name, value);
	} else {
		bad(st, section, name, value,
		    "unknown section [%s]; allowed: [global], [interface NAME], [features], [bogons], [tables], "
		    "[ratelimit], [wan NAME], [feed NAME], [dynamic_block]",
		    section);
	}
	return 1;
}

/* Cross-field checks after the whole file has been read. */
static void check_ifaces(struct parse_state *st)
{
	struct dp_config *c = st->cfg;

	for (int i = 0; i < c->n_ifaces; i++) {
		struct dp_iface *ifc = &c->ifaces[i];
		int segkeys = ifc->segment[0] || ifc->has_segment_id || ifc->default_priority || ifc->rewrite_dscp >= 0 ||
			      ifc->trust_pcp;

		st->line = st->iface_line[i];
		for (int d = 0; d < 64; d++)
			segkeys |= ifc->dscp_priority[d] != DP_SEG_NO_RULE;
		if (ifc->role == DP_ROLE_NONE) {
			bad(st, NULL, NULL, NULL, "[interface %s]: role is required (wan or segment)", ifc->name);
		} else if (ifc->role == DP_ROLE_WAN && segkeys) {
			bad(st, NULL, NULL, NULL,
			    "[interface %s]: segment and qos_* keys apply to role = segment only, this interface is wan",
			    ifc->name);
		} else if (ifc->role == DP_ROLE_SEGMENT) {
			if (ifc->xdp_mode != DP_XDP_NATIVE)
				bad(st, NULL, NULL, NULL, "[interface %s]: xdp_mode applies to role = wan only",
				    ifc->name);
			if (!ifc->segment[0])
				bad(st, NULL, NULL, NULL, "[interface %s]: segment (the segment's name) is required",
				    ifc->name);
			if (!ifc->has_segment_id)
				bad(st, NULL, NULL, NULL, "[interface %s]: segment_id (0-4095, the VLAN id) is required",
				    ifc->name);
			for (int j = 0; j < i; j++) {
				if (c->ifaces[j].role == DP_ROLE_SEGMENT && c->ifaces[j].segment_id == ifc->segment_id)
					bad(st, NULL, NULL, NULL,
					    "[interface %s]: segment_id %u is already used by [interface %s]", ifc->name,
					    ifc->segment_id, c->ifaces[j].name);
			}
		}
	}
}

/* Cross-field checks of the [wan] and [feed] sections. */
static void check_wans_feeds(struct parse_state *st)
{
	struct dp_config *c = st->cfg;

	for (int i = 0; i < c->n_wans; i++) {
		struct dp_wan *w = &c->wans[i];

		st->line = w->line;
		if (!w->has_priority || !w->has_mark || !w->has_table) {
			char missing[64] = "";

			snprintf(missing, sizeof(missing), "%s%s%s%s%s", w->has_priority ? "" : "priority",
				 !w->has_priority && !w->has_mark ? ", " : "", w->has_mark ? "" : "mark",
				 (!w->has_priority || !w->has_mark) && !w->has_table ? ", " : "", w->has_table ? "" : "table");
			bad(st, NULL, NULL, NULL, "[wan %s]: %s required (priority 0-65535, mark within 0x%x, table)", w->name,
			    missing, DP_WAN_MARK_MASK);
		}
		if (w->timeout_ms > w->interval_ms)
			bad(st, NULL, NULL, NULL,
			    "[wan %s]: probe_timeout (%u ms) is longer than probe_interval (%u ms); a round must end "
			    "before the next one starts",
			    w->name, w->timeout_ms, w->interval_ms);
		for (int j = 0; j < i; j++) {
			const struct dp_wan *o = &c->wans[j];

			if (w->has_priority && o->has_priority && w->priority == o->priority)
				bad(st, NULL, NULL, NULL,
				    "[wan %s]: priority %u is already used by [wan %s] (line %d); each WAN needs its own",
				    w->name, w->priority, o->name, o->line);
			if (w->has_mark && o->has_mark && w->mark == o->mark)
				bad(st, NULL, NULL, NULL, "[wan %s]: mark 0x%x is already used by [wan %s] (line %d)", w->name,
				    w->mark, o->name, o->line);
			if (w->has_table && o->has_table && w->table == o->table)
				bad(st, NULL, NULL, NULL, "[wan %s]: table %u is already used by [wan %s] (line %d)", w->name,
				    w->table, o->name, o->line);
		}
	}
	for (int i = 0; i < c->n_feeds; i++) {
		struct dp_feed *f = &c->feeds[i];

		st->line = f->line;
		if (!f->url[0] || !f->has_kind)
			bad(st, NULL, NULL, NULL, "[feed %s]: %s required (url = https://..., kind = block|allow|geo)", f->name,
			    !f->url[0] && !f->has_kind ? "url, kind" : f->url[0] ? "kind" : "url");
	}
}

/* [dynamic_block] needs its socket and the agent's uid. */
static void check_dyn(struct parse_state *st)
{
	const struct dp_dynamic_block *b = &st->cfg->dyn;

	st->line = b->line;
	if (b->enabled && (!b->socket[0] || !b->has_agent_uid))
		bad(st, NULL, NULL, NULL, "[dynamic_block]: %s%s%s required (socket = /absolute/path, agent_uid = 1-4294967294)",
		    b->socket[0] ? "" : "socket", !b->socket[0] && !b->has_agent_uid ? ", " : "",
		    b->has_agent_uid ? "" : "agent_uid");
}

/* management_links never names an uplink: the fallback ruleset would open the management ports to the WAN. */
static void check_management(struct parse_state *st)
{
	struct dp_config *c = st->cfg;

	st->line = st->mgmt_links_line;
	for (int i = 0; i < c->n_management_links; i++) {
		const char *l = c->management_links[i];
		const struct dp_iface *ifc = dp_config_iface(c, l);
		bool wan = ifc && ifc->role == DP_ROLE_WAN;

		for (int w = 0; w < c->n_wans; w++)
			wan |= strcmp(c->wans[w].name, l) == 0;
		if (wan)
			bad(st, NULL, NULL, NULL,
			    "[global] management_links: %s is a WAN link; management is never accepted from a WAN (allowed: "
			    "segment links)",
			    l);
	}
}

void dp_feed_path(const struct dp_config *cfg, const struct dp_feed *f, char *buf, size_t len)
{
	snprintf(buf, len, "%s/feeds/%s.txt", cfg->state_dir, f->name);
}

int dp_config_load(const char *path, struct dp_config *cfg, struct dp_err *err)
{
	struct parse_state *st;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	err->msg[0] = '\0';
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	snprintf(cfg->pin_root, sizeof(cfg->pin_root), "/sys/fs/bpf/router-dataplane");
	snprintf(cfg->metrics_address, sizeof(cfg->metrics_address), "0.0.0.0");
	cfg->metrics_port = 9430;
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/router-dataplane");
	snprintf(cfg->resolv_conf, sizeof(cfg->resolv_conf), "/etc/resolv.conf");
	cfg->bogons4 = cfg->bogons6 = cfg->blocklist = cfg->geoip = cfg->ratelimit = true;
	cfg->syn = (struct dp_rate){ 200, 400 };
	cfg->icmp = (struct dp_rate){ 20, 40 };
	cfg->udp = (struct dp_rate){ 5000, 10000 };
	cfg->slots = 1u << DP_RL_DEFAULT_SLOT_BITS;
	cfg->dyn.seconds = 3600;
	cfg->dyn.max_entries = DP_DYN_DEFAULT_ENTRIES;
	/* Talos' apid and trustd, the Kubernetes API: what a management session needs */
	cfg->management_ports[0] = 50000;
	cfg->management_ports[1] = 50001;
	cfg->management_ports[2] = 6443;
	cfg->n_management_ports = 3;

	st = calloc(1, sizeof(*st));
	if (!st)
		return dp_errf(err, "%s: out of memory", path);
	st->cfg = cfg;
	st->err = err;
	st->f = fopen(path, "re");
	if (!st->f) {
		dp_errf(err, "%s: cannot open: %s", path, strerror(errno));
		free(st);
		return -1;
	}
	rc = ini_parse_stream(reader, st, handler, st);
	fclose(st->f);
	if (rc > 0) {
		/* inih found a line that is neither a section, a key = value pair nor a comment */
		st->line = rc;
		bad(st, NULL, NULL, NULL, "syntax error: expected '[section]', 'key = value' or a comment");
	} else if (rc < 0) {
		bad(st, NULL, NULL, NULL, "cannot parse (inih error %d)", rc);
	}
	check_ifaces(st);
	check_wans_feeds(st);
	check_management(st);
	check_dyn(st);
	rc = st->nerr ? -1 : 0;
	free(st);
	if (rc)
		dp_config_free(cfg);
	return rc;
}

void dp_config_free(struct dp_config *cfg)
{
	for (int i = 0; i < cfg->n_bogon_extra; i++)
		free(cfg->bogon_extra[i]);
	for (int i = 0; i < cfg->n_allow; i++)
		free(cfg->allow[i]);
	for (int i = 0; i < cfg->n_block; i++)
		free(cfg->block[i]);
	for (int i = 0; i < cfg->n_geo; i++)
		free(cfg->geo[i]);
	for (int i = 0; i < cfg->dyn.n_protect; i++)
		free(cfg->dyn.protect[i]);
	cfg->n_bogon_extra = cfg->n_allow = cfg->n_block = cfg->n_geo = cfg->dyn.n_protect = 0;
}

const struct dp_iface *dp_config_iface(const struct dp_config *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_ifaces; i++)
		if (strcmp(cfg->ifaces[i].name, name) == 0)
			return &cfg->ifaces[i];
	return NULL;
}
