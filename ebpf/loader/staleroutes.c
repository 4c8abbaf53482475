// SPDX-License-Identifier: Apache-2.0
#include "staleroutes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netlink.h"
#include "util.h"

/* Seconds between two logged failures: a route that cannot be deleted would otherwise log at every sweep. */
#define FAIL_LOG_S 60.0

/* Mono time of the last failure logged (< 0: none yet); the loader has one sweeper, its main loop. */
static double last_fail_log = -1;

/* True when a failure may be logged now (the first one, or FAIL_LOG_S after the last logged). */
static bool fail_log_due(void)
{
	double now = dp_now_mono();

	if (last_fail_log >= 0 && now - last_fail_log < FAIL_LOG_S)
		return false;
	last_fail_log = now;
	return true;
}

/* A route to delete: its first nexthop as dumped, and every nexthop as text ("via GW dev IF, ..."). */
struct stale_route {
	struct dp_route r;
	char via[256];
};

struct stale_list {
	bool want[256];
	struct stale_route *v;
	size_t n, cap;
	bool oom;
};

/* Appends the nexthop of r to via (", "-separated): "via GW dev IF", "dev IF", or the route's type. */
static void via_append(char *via, size_t cap, const struct dp_route *r)
{
	size_t len = strlen(via);
	char gw[INET6_ADDRSTRLEN] = "", dev[IF_NAMESIZE + 16] = "", hop[INET6_ADDRSTRLEN + sizeof(dev) + 16];

	if (r->has_gw)
		inet_ntop(r->family, r->gw, gw, sizeof(gw));
	if (r->oif && !if_indextoname((unsigned)r->oif, dev))
		snprintf(dev, sizeof(dev), "ifindex %d", r->oif);
	if (r->type == RTN_UNICAST && (gw[0] || dev[0]))
		snprintf(hop, sizeof(hop), "%s%s%s%s", gw[0] ? "via " : "", gw, !dev[0] ? "" : gw[0] ? " dev " : "dev ",
			 dev);
	else
		snprintf(hop, sizeof(hop), "%s", r->type == RTN_BLACKHOLE     ? "blackhole"
						 : r->type == RTN_UNREACHABLE ? "unreachable"
						 : r->type == RTN_PROHIBIT    ? "prohibit"
									      : "(no nexthop)");
	if (len < cap)
		snprintf(via + len, cap - len, "%s%s", len ? ", " : "", hop);
}

/* dp_routes_dump callback: keeps the routes of a wanted protocol; the further nexthops of a multipath
 * route join the route before them. */
static void collect(void *ctx, const struct dp_route *r)
{
	struct stale_list *l = ctx;

	if (!l->want[r->protocol] || l->oom)
		return;
	if (r->nexthop > 0 && l->n > 0) {
		via_append(l->v[l->n - 1].via, sizeof(l->v[l->n - 1].via), r);
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct stale_route *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].r = *r;
	l->v[l->n].via[0] = '\0';
	via_append(l->v[l->n].via, sizeof(l->v[l->n].via), r);
	l->n++;
}

/* Deletes the listed routes of one family's main table, logging each; adds to *c. */
static void sweep_family(int family, struct stale_list *l, struct dp_stale_counts *c)
{
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";
	struct dp_err err = { "" };

	l->n = 0;
	l->oom = false;
	if (dp_routes_dump(family, RT_TABLE_MAIN, collect, l, &err) || l->oom) {
		if (fail_log_due())
			dp_log("error", "stale_routes",
			       "%s; stale routes of the main table are not removed this time (failures are counted, and "
			       "logged at most once a minute)",
			       l->oom ? "out of memory listing the routes" : err.msg);
		c->failures++;
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct stale_route *s = &l->v[i];
		char dst[INET6_ADDRSTRLEN] = "";
		int rc = dp_route_del_dumped(&s->r);

		inet_ntop(family, s->r.dst, dst, sizeof(dst));
		if (rc == -ESRCH || rc == -ENOENT)
			continue; /* gone meanwhile */
		if (rc) {
			if (fail_log_due())
				dp_log("error", "stale_route_failed",
				       "cannot remove the %s route %s/%u %s (protocol %u, metric %u) of a routing daemon "
				       "the site no longer runs: %s; tried again at the next sweep (failures are counted, "
				       "and logged at most once a minute)",
				       fam, dst, s->r.dst_len, s->via, s->r.protocol, s->r.metric, strerror(-rc));
			c->failures++;
			continue;
		}
		dp_log("info", "stale_route_removed",
		       "removed %s/%u %s (protocol %u, metric %u): a route of a routing daemon the site no longer runs",
		       dst, s->r.dst_len, s->via, s->r.protocol, s->r.metric);
		c->removed++;
	}
}

void dp_stale_routes_sweep(const uint8_t *protos, int n, struct dp_stale_counts *c)
{
	struct stale_list l = { 0 };

	if (n <= 0)
		return;
	for (int i = 0; i < n; i++)
		l.want[protos[i]] = true;
	/* never the loader's own routes, whatever the list says (the configuration refuses it too) */
	l.want[DP_RTPROT] = false;
	sweep_family(AF_INET, &l, c);
	sweep_family(AF_INET6, &l, c);
	free(l.v);
}

bool dp_stale_routes_seen(const uint64_t set[4], const uint8_t *protos, int n)
{
	for (int i = 0; i < n; i++)
		if (set[protos[i] / 64] & (1ULL << (protos[i] % 64)))
			return true;
	return false;
}
