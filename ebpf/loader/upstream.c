// SPDX-License-Identifier: Apache-2.0
#include "upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefix.h"

struct collect_ctx {
	const struct dp_config *cfg;
	const struct dp_link_res *res;
	const struct dp_links *links;
	struct dp_upstream *out;
};

/* Index of the WAN [interface] whose resolved link is ifindex, or -1. */
static int wan_iface_of(const struct collect_ctx *c, int ifindex)
{
	for (int i = 0; i < c->cfg->n_ifaces; i++)
		if (c->cfg->ifaces[i].role == DP_ROLE_WAN && c->res[i].state == DP_RESOLVED && c->res[i].ifindex == ifindex)
			return i;
	return -1;
}

/* True for an IPv6 link-local address (fe80::/10): legitimate on a WAN anyway. */
static bool link_local6(int family, const uint8_t *a)
{
	return family == 6 && a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

/* Appends one entry for ingress link ifindex (counted in dropped when the table is full). */
static void push(struct dp_upstream *u, int ifindex, int iface, const struct dp_pfx *p)
{
	if (u->n == DP_UP_MAX) {
		u->dropped++;
		return;
	}
	u->v[u->n++] = (struct dp_up_entry){ .ifindex = ifindex, .family = p->family, .len = p->len, .iface = iface };
	memcpy(u->v[u->n - 1].addr, p->addr, 16);
}

/* Adds prefix p of WAN [interface] iface for its link and every port of it. */
static void add_for_wan(struct collect_ctx *c, int iface, const struct dp_pfx *p)
{
	int link = c->res[iface].ifindex;

	push(c->out, link, iface, p);
	for (int i = 0; i < c->links->n; i++)
		if (c->links->v[i].master == link)
			push(c->out, c->links->v[i].ifindex, iface, p);
}

/* Clears the host bits of p beyond its length. */
static void mask(struct dp_pfx *p)
{
	for (int b = p->len; b < (p->family == 4 ? 32 : 128); b++)
		p->addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
}

/* Address dump callback: the connected prefix of an address on a WAN link. */
static void on_addr(void *ctx, const struct dp_addr *a)
{
	struct collect_ctx *c = ctx;
	int iface = wan_iface_of(c, a->ifindex);
	struct dp_pfx p = { .family = (uint8_t)(a->family == AF_INET ? 4 : 6), .len = a->prefixlen };

	if (iface < 0 || a->prefixlen == 0)
		return;
	/* the peer's prefix, as the kernel's connected route has it (the same as local but on a
	 * point-to-point link) */
	memcpy(p.addr, a->peer, p.family == 4 ? 4 : 16);
	if (link_local6(p.family, p.addr))
		return;
	mask(&p);
	add_for_wan(c, iface, &p);
}

/* Route dump callback: the gateway of a default route through a WAN link. */
static void on_route(void *ctx, const struct dp_route *r)
{
	struct collect_ctx *c = ctx;
	int iface = (r->dst_len || !r->has_gw) ? -1 : wan_iface_of(c, r->oif);
	struct dp_pfx p = { .family = (uint8_t)(r->family == AF_INET ? 4 : 6) };

	if (iface < 0)
		return;
	p.len = p.family == 4 ? 32 : 128;
	memcpy(p.addr, r->gw, p.family == 4 ? 4 : 16);
	if (!link_local6(p.family, p.addr))
		add_for_wan(c, iface, &p);
}

/* qsort order: ingress link, family, length, address. */
static int cmp_entry(const void *x, const void *y)
{
	const struct dp_up_entry *a = x, *b = y;

	if (a->ifindex != b->ifindex)
		return a->ifindex < b->ifindex ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->addr, b->addr, 16);
}

int dp_upstream_collect(const struct dp_config *cfg, const struct dp_link_res *res, struct dp_upstream *out,
			struct dp_err *err)
{
	static struct dp_links links;
	struct collect_ctx c = { .cfg = cfg, .res = res, .links = &links, .out = out };
	int n = 0;

	out->n = 0;
	out->dropped = 0;
	if (dp_links_dump(&links, err) || dp_addrs_dump(on_addr, &c, err) ||
	    dp_routes_dump(AF_INET, 0, on_route, &c, err) || dp_routes_dump(AF_INET6, 0, on_route, &c, err))
		return -1;
	qsort(out->v, (size_t)out->n, sizeof(out->v[0]), cmp_entry);
	for (int i = 0; i < out->n; i++)
		if (!n || cmp_entry(&out->v[n - 1], &out->v[i]))
			out->v[n++] = out->v[i];
	out->n = n;
	return 0;
}

bool dp_upstream_equal(const struct dp_upstream *a, const struct dp_upstream *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (cmp_entry(&a->v[i], &b->v[i]) || a->v[i].iface != b->v[i].iface)
			return false;
	return true;
}

/* True when entry i repeats an earlier entry's prefix for the same [interface] (a bond port's copy). */
static bool seen_before(const struct dp_upstream *u, int i)
{
	for (int j = 0; j < i; j++)
		if (u->v[j].iface == u->v[i].iface && u->v[j].family == u->v[i].family && u->v[j].len == u->v[i].len &&
		    !memcmp(u->v[j].addr, u->v[i].addr, 16))
			return true;
	return false;
}

int dp_upstream_count(const struct dp_upstream *u, int iface, int family)
{
	int n = 0;

	for (int i = 0; i < u->n; i++)
		n += u->v[i].iface == iface && u->v[i].family == family && !seen_before(u, i);
	return n;
}

void dp_upstream_text(const struct dp_upstream *u, int iface, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < u->n && o < len; i++) {
		struct dp_pfx p = { .family = (uint8_t)u->v[i].family, .len = u->v[i].len };
		char t[64];

		if (u->v[i].iface != iface || seen_before(u, i))
			continue;
		memcpy(p.addr, u->v[i].addr, 16);
		dp_pfx_format(&p, t, sizeof(t));
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", t);
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

int dp_upstream_sync(struct dp_upstream *cur, struct dp_instance *inst, const struct dp_config *cfg,
		     const struct dp_link_res *res, pthread_mutex_t *lock, bool force)
{
	static struct dp_upstream next;
	struct dp_err err = { "" };

	if (dp_upstream_collect(cfg, res, &next, &err)) {
		dp_log("error", "upstream", "%s; the upstream tables stay as they are", err.msg);
		return -1;
	}
	if (!force && dp_upstream_equal(cur, &next))
		return 0;
	if (dp_instance_upstream(inst, &next, &err)) {
		dp_log("error", "upstream", "%s; the upstream tables stay as they are", err.msg);
		return -1;
	}
	if (next.dropped)
		dp_log("warn", "upstream", "more than %d upstream entries: %d left out (their sources stay bogons)",
		       DP_UP_MAX, next.dropped);
	for (int i = 0; i < cfg->n_ifaces; i++) {
		char was[2048], now[2048];

		if (cfg->ifaces[i].role != DP_ROLE_WAN)
			continue;
		dp_upstream_text(cur, i, was, sizeof(was));
		dp_upstream_text(&next, i, now, sizeof(now));
		if (force || strcmp(was, now))
			dp_log("info", "upstream", "[interface %s]: bogon sources let through from its upstream: %s",
			       cfg->ifaces[i].name, now);
	}
	if (lock)
		pthread_mutex_lock(lock);
	*cur = next;
	if (lock)
		pthread_mutex_unlock(lock);
	return 0;
}

void dp_upstream_metrics(const struct dp_upstream *u, const struct dp_config *cfg, bool ct_replies,
			 void (*emit)(void *t, const char *fmt, ...), void *t)
{
	emit(t, "# HELP router_dataplane_upstream_prefixes Prefixes of a WAN's upstream (connected subnets and "
		"default gateways) whose bogon sources the guard lets through on it.\n"
		"# TYPE router_dataplane_upstream_prefixes gauge\n");
	for (int i = 0; i < cfg->n_ifaces; i++) {
		if (cfg->ifaces[i].role != DP_ROLE_WAN)
			continue;
		for (int f = 4; f <= 6; f += 2)
			emit(t, "router_dataplane_upstream_prefixes{interface=\"%s\",family=\"ipv%d\"} %d\n", cfg->ifaces[i].name,
			     f, dp_upstream_count(u, i, f));
	}
	emit(t, "# HELP router_dataplane_conntrack_replies Whether UDP replies over their source's limit are looked up in "
		"conntrack (1) or charged like other UDP because the kernel lacks bpf_xdp_ct_lookup (0).\n"
		"# TYPE router_dataplane_conntrack_replies gauge\n"
		"router_dataplane_conntrack_replies %d\n",
	     ct_replies);
}
