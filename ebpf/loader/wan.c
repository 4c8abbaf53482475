// SPDX-License-Identifier: Apache-2.0
#include "wan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/icmp.h>
#include <linux/rtnetlink.h>
#include <math.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forwarding.h"

#define RECONCILE_EVERY 5.0   /* s: reconcile even without events (a safety net) */
#define RECONCILE_DEBOUNCE 0.05
#define PROBE_MAGIC 0x52445057u /* "RDPW" in the echo payload */
#define MAX_ROUTES 256

static const char *const health_name[] = { "unknown", "up", "down" };

/* Locks the metrics' view while fields change. */
static void lock(struct dp_wan_mgr *m)
{
	if (m->lock)
		pthread_mutex_lock(m->lock);
}

/* Releases what lock() took. */
static void unlock(struct dp_wan_mgr *m)
{
	if (m->lock)
		pthread_mutex_unlock(m->lock);
}

void dp_wan_init(struct dp_wan_mgr *m, pthread_mutex_t *lk)
{
	memset(m, 0, sizeof(*m));
	m->lock = lk;
	m->active = -1;
}

/* Closes the probe sockets of w. */
static void close_socks(struct dp_wan_run *w)
{
	for (int f = 0; f < 2; f++) {
		if (w->sock[f] >= 0)
			close(w->sock[f]);
		w->sock[f] = -1;
	}
	w->sock_ifindex = 0;
}

/* True when w has probe targets of family f (0 = IPv4, 1 = IPv6). */
static bool has_targets(const struct dp_wan_run *w, int f)
{
	for (int i = 0; i < w->cfg.n_probes; i++)
		if (w->cfg.probes[i].family == (f ? 6 : 4))
			return true;
	return false;
}

/*
 * Opens w's probe sockets on its link: raw ICMP/ICMPv6 that pass only echo replies, carrying the
 * WAN's mark (so its fwmark rule picks its table) and bound to the link (so nothing else carries
 * them). Without a link the sockets stay closed and every probe fails.
 */
static void open_socks(struct dp_wan_run *w)
{
	if (w->link.state == DP_RESOLVED && w->sock_ifindex == w->link.ifindex)
		return;
	close_socks(w);
	if (w->link.state != DP_RESOLVED)
		return;
	for (int f = 0; f < 2; f++) {
		int fd, idx = w->link.ifindex;
		uint32_t mark = w->cfg.mark;

		if (!has_targets(w, f))
			continue;
		fd = socket(f ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, f ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
		if (fd < 0) {
			dp_log("error", "wan_probe", "[wan %s]: cannot open an ICMP%s socket: %s", w->cfg.name, f ? "v6" : "",
			       strerror(errno));
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) ||
		    setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &idx, sizeof(idx))) {
			dp_log("error", "wan_probe", "[wan %s]: cannot bind the probe socket to %s with mark 0x%x: %s",
			       w->cfg.name, w->link.kname, mark, strerror(errno));
			close(fd);
			continue;
		}
		if (f) {
			struct icmp6_filter flt;

			ICMP6_FILTER_SETBLOCKALL(&flt);
			ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &flt);
			setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &flt, sizeof(flt));
		} else {
			struct icmp_filter flt = { .data = ~(1U << ICMP_ECHOREPLY) };

			setsockopt(fd, SOL_RAW, ICMP_FILTER, &flt, sizeof(flt));
		}
		w->sock[f] = fd;
	}
	w->sock_ifindex = w->link.ifindex;
}

/*
 * Makes an uplink accept router advertisements while the router forwards (accept_ra 2): with forwarding on,
 * the kernel ignores RAs at accept_ra 1, so a SLAAC uplink would get no address and no IPv6 default route.
 * `default.accept_ra` reaches only links created later, and a physical NIC exists before Talos writes its
 * kernel parameters (siderolabs/talos#5632); only the loader knows the uplink's kernel name. Writes only when
 * the link forwards (when the loader switches forwarding on itself, it sets accept_ra first:
 * dp_forwarding_enable); a failure (e.g. a read-only /proc/sys) is logged, never fatal.
 */
static void uplink_accept_ra(const char *wan, const char *kname)
{
	char path[256];

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", kname);
	if (dp_sysctl_read(path) == 1)
		dp_uplink_accept_ra(wan, kname);
}

/* Resolves w's link; logs changes and ambiguity. */
static void resolve(struct dp_wan_mgr *m, struct dp_wan_run *w, const struct dp_links *links)
{
	struct dp_link_res old = w->link;
	struct dp_err err = { "" };

	dp_link_resolve(links, w->cfg.name, m->cfg_path, w->cfg.line, "wan", &w->link, &err);
	if (err.msg[0] && strcmp(old.why, w->link.why))
		dp_log("error", "link_ambiguous", "%s", err.msg);
	else if (w->link.state == DP_RESOLVED && (old.state != DP_RESOLVED || old.ifindex != w->link.ifindex))
		dp_log("info", "wan_link", "[wan %s]: link %s (ifindex %d)", w->cfg.name, w->link.kname, w->link.ifindex);
	else if (w->link.state == DP_RES_MISSING && old.state == DP_RESOLVED)
		dp_log("warn", "wan_link", "[wan %s]: its link is gone", w->cfg.name);
	if (w->link.state == DP_RESOLVED)
		uplink_accept_ra(w->cfg.name, w->link.kname);
	open_socks(w);
}

void dp_wan_configure(struct dp_wan_mgr *m, const struct dp_config *cfg, const struct dp_links *links)
{
	struct dp_wan_run old[DP_MAX_WANS];
	int n_old = m->n;
	int active_old = m->active;
	char active_name[IFNAMSIZ] = "";

	if (active_old >= 0)
		snprintf(active_name, sizeof(active_name), "%s", m->w[active_old].cfg.name);
	memcpy(old, m->w, sizeof(old));
	lock(m);
	snprintf(m->cfg_path, sizeof(m->cfg_path), "%s", cfg->path);
	m->n = cfg->n_wans;
	m->active = -1;
	for (int i = 0; i < m->n; i++) {
		struct dp_wan_run *w = &m->w[i];
		const struct dp_wan_run *prev = NULL;

		for (int j = 0; j < n_old; j++)
			if (!strcmp(old[j].cfg.name, cfg->wans[i].name))
				prev = &old[j];
		if (prev) {
			*w = *prev;
			old[prev - old].sock[0] = old[prev - old].sock[1] = -1; /* moved */
			if (memcmp(w->cfg.probes, cfg->wans[i].probes, sizeof(w->cfg.probes)) ||
			    w->cfg.n_probes != cfg->wans[i].n_probes || w->cfg.mark != cfg->wans[i].mark) {
				close_socks(w); /* new targets or mark: new sockets, a fresh round */
				w->in_round = false;
				w->next_round = 0;
			}
			if (!strcmp(active_name, cfg->wans[i].name))
				m->active = i;
		} else {
			memset(w, 0, sizeof(*w));
			w->sock[0] = w->sock[1] = -1;
			w->state = DP_WAN_UNKNOWN;
			w->last_rtt = NAN;
			w->ident = (uint16_t)(((unsigned)getpid() << 4) ^ (unsigned)i);
		}
		w->cfg = cfg->wans[i];
	}
	unlock(m);
	for (int j = 0; j < n_old; j++)
		close_socks(&old[j]);
	for (int i = 0; i < m->n; i++)
		resolve(m, &m->w[i], links);
	m->dirty = true;
	m->reconcile_due = 0;
}

void dp_wan_links(struct dp_wan_mgr *m, const struct dp_links *links)
{
	for (int i = 0; i < m->n; i++)
		resolve(m, &m->w[i], links);
	m->dirty = true;
}

void dp_wan_routes_changed(struct dp_wan_mgr *m, double now)
{
	if (!m->dirty || m->reconcile_due > now + RECONCILE_DEBOUNCE) {
		m->dirty = true;
		m->reconcile_due = now + RECONCILE_DEBOUNCE;
	}
}

int dp_wan_pollfds(const struct dp_wan_mgr *m, struct pollfd *p, int max)
{
	int n = 0;

	for (int i = 0; i < m->n; i++)
		for (int f = 0; f < 2; f++)
			if (m->w[i].sock[f] >= 0 && n < max)
				p[n++] = (struct pollfd){ .fd = m->w[i].sock[f], .events = POLLIN };
	return n;
}

/* Internet checksum of len bytes. */
static uint16_t csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Echo request (ICMP or ICMPv6, same layout) to target t of w. */
static void send_probe(struct dp_wan_run *w, int t)
{
	const struct dp_probe *p = &w->cfg.probes[t];
	int f = p->family == 6, fd = w->sock[f];
	struct {
		uint8_t type, code;
		uint16_t csum, id, seq;
		uint32_t magic;
		uint32_t target;
	} __attribute__((packed)) msg = { .type = f ? ICMP6_ECHO_REQUEST : ICMP_ECHO,
					  .id = htons(w->ident),
					  .seq = htons(w->seq),
					  .magic = htonl(PROBE_MAGIC),
					  .target = htonl((uint32_t)t) };
	struct sockaddr_storage sa = { 0 };
	socklen_t salen;

	w->probes++;
	if (fd < 0)
		return;
	if (f) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, p->addr, 16);
		salen = sizeof(*s6); /* the kernel fills in the ICMPv6 checksum */
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p->addr, 4);
		salen = sizeof(*s4);
		msg.csum = csum(&msg, sizeof(msg));
	}
	/* an unreachable target (no route, link down) simply stays unanswered */
	(void)sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, salen);
}

/* Starts a probe round of w. */
static void start_round(struct dp_wan_run *w, double now)
{
	w->seq++;
	memset(w->answered, 0, sizeof(w->answered));
	w->round_rtt = NAN;
	w->round_start = now;
	w->round_end = now + w->cfg.timeout_ms / 1000.0;
	w->next_round = now + w->cfg.interval_ms / 1000.0;
	w->in_round = true;
	for (int t = 0; t < w->cfg.n_probes; t++)
		send_probe(w, t);
}

/* Moves w's health after a round (ok = some target answered); returns the old health. */
static enum dp_wan_health feed_health(struct dp_wan_run *w, bool ok)
{
	enum dp_wan_health was = w->state;

	if (ok) {
		w->good++;
		w->bad = 0;
	} else {
		w->bad++;
		w->good = 0;
	}
	if (w->state == DP_WAN_UNKNOWN)
		w->state = ok ? DP_WAN_UP : DP_WAN_DOWN; /* the first round decides (a restart keeps its view) */
	else if (w->state == DP_WAN_UP && !ok && w->bad >= w->cfg.down_after)
		w->state = DP_WAN_DOWN;
	else if (w->state == DP_WAN_DOWN && ok && w->good >= w->cfg.up_after)
		w->state = DP_WAN_UP;
	return was;
}

/* Deletes the conntrack entries source-NATed to w's addresses: flows that can no longer work. */
static void flush_conntrack(struct dp_wan_mgr *m, struct dp_wan_run *w)
{
	uint8_t addrs[32][16];
	int fam[32], n, deleted;
	struct dp_err err = { "" };

	if (w->link.state != DP_RESOLVED)
		return;
	n = dp_addrs_of(w->link.ifindex, addrs, fam, 32);
	if (n <= 0)
		return;
	deleted = dp_conntrack_flush_reply_dst((const uint8_t(*)[16])addrs, fam, n, &err);
	if (deleted < 0) {
		dp_log("warn", "wan_conntrack", "[wan %s]: %s", w->cfg.name, err.msg);
		return;
	}
	lock(m);
	w->ct_flushed += (uint64_t)deleted;
	unlock(m);
	if (deleted)
		dp_log("info", "wan_conntrack", "[wan %s]: removed %d connection(s) NATed to its addresses", w->cfg.name,
		       deleted);
}

/* Logs a health change and flushes conntrack when a WAN goes down. */
static void health_changed(struct dp_wan_mgr *m, struct dp_wan_run *w, enum dp_wan_health was, const char *why)
{
	if (w->state == was)
		return;
	m->health_changed = true;
	dp_log(w->state == DP_WAN_DOWN ? "warn" : "info", "wan_health", "[wan %s]: %s -> %s (%s)", w->cfg.name,
	       health_name[was], health_name[w->state], why);
	/* after the routes have moved (end of the reconcile): a flow's next packet must not find the
	 * failed WAN still preferred and be NATed to it again */
	w->flush_pending = w->state == DP_WAN_DOWN;
}

/* Ends w's round; ok when some target answered. */
static void finish_round(struct dp_wan_mgr *m, struct dp_wan_run *w)
{
	int answered = 0;
	enum dp_wan_health was;
	char why[64];

	for (int t = 0; t < w->cfg.n_probes; t++)
		answered += w->answered[t];
	lock(m);
	w->in_round = false;
	w->rounds++;
	w->rounds_failed += answered == 0;
	w->probe_failures += (uint64_t)(w->cfg.n_probes - answered);
	w->last_rtt = answered ? w->round_rtt : NAN;
	/* a WAN without a default route is down whatever the probes say */
	was = w->state;
	if (w->routes[0] + w->routes[1] > 0)
		was = feed_health(w, answered > 0);
	unlock(m);
	snprintf(why, sizeof(why), "%d consecutive %s round(s)", answered ? w->good : w->bad,
		 answered ? "good" : "failed");
	health_changed(m, w, was, why);
}

void dp_wan_readable(struct dp_wan_mgr *m, int fd, double now)
{
	for (int i = 0; i < m->n; i++) {
		struct dp_wan_run *w = &m->w[i];

		for (int f = 0; f < 2; f++) {
			if (w->sock[f] != fd)
				continue;
			for (;;) {
				uint8_t buf[512];
				struct sockaddr_storage sa;
				socklen_t salen = sizeof(sa);
				ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sa, &salen);
				const uint8_t *icmp = buf, *src;
				size_t len;
				uint32_t t;

				if (n < 0)
					break;
				len = (size_t)n;
				if (!f) {
					size_t ihl = (size_t)(buf[0] & 15) * 4;

					if (len < 20 || ihl < 20 || len < ihl + 16)
						continue;
					src = buf + 12;
					icmp = buf + ihl;
					len -= ihl;
				} else {
					src = (const uint8_t *)&((struct sockaddr_in6 *)&sa)->sin6_addr;
				}
				if (len < 16 || icmp[0] != (f ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) ||
				    ntohs(*(uint16_t *)(icmp + 4)) != w->ident || ntohs(*(uint16_t *)(icmp + 6)) != w->seq ||
				    ntohl(*(uint32_t *)(icmp + 8)) != PROBE_MAGIC || !w->in_round)
					continue;
				t = ntohl(*(uint32_t *)(icmp + 12));
				if (t >= (uint32_t)w->cfg.n_probes || w->answered[t] ||
				    w->cfg.probes[t].family != (f ? 6 : 4) || memcmp(src, w->cfg.probes[t].addr, f ? 16 : 4))
					continue;
				w->answered[t] = true;
				if (isnan(w->round_rtt) || now - w->round_start < w->round_rtt)
					w->round_rtt = now - w->round_start;
			}
		}
		if (w->in_round) {
			bool all = true;

			for (int t = 0; t < w->cfg.n_probes; t++)
				all &= w->answered[t];
			if (all)
				finish_round(m, w);
		}
	}
}

double dp_wan_timeout(const struct dp_wan_mgr *m, double now)
{
	double due = INFINITY;

	for (int i = 0; i < m->n; i++) {
		const struct dp_wan_run *w = &m->w[i];

		if (w->cfg.n_probes)
			due = fmin(due, w->in_round ? w->round_end : w->next_round);
	}
	if (m->n || m->dirty)
		due = fmin(due, m->dirty ? m->reconcile_due : m->last_reconcile + RECONCILE_EVERY);
	if (isinf(due))
		return -1;
	return due > now ? due - now : 0;
}

/* ---- routes and rules ------------------------------------------------------------------------- */

struct route_set {
	struct dp_route v[MAX_ROUTES];
	int n;
};

/* Dump callback collecting routes into a set. */
static void collect(void *ctx, const struct dp_route *r)
{
	struct route_set *s = ctx;

	if (s->n < MAX_ROUTES)
		s->v[s->n++] = *r;
}

/* True when two routes are the same kernel route (table, prefix, nexthop, metric). */
static bool same_route(const struct dp_route *a, const struct dp_route *b)
{
	size_t alen = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && a->table == b->table && a->dst_len == b->dst_len &&
	       !memcmp(a->dst, b->dst, alen) && a->has_gw == b->has_gw && (!a->has_gw || !memcmp(a->gw, b->gw, alen)) &&
	       a->oif == b->oif && a->metric == b->metric;
}

/* Adds r, falling back to an on-link nexthop when the kernel cannot resolve the gateway in r's table. */
static int add_route(const struct dp_route *r)
{
	int rc = dp_route_add(r);

	if (rc == -ENETUNREACH || rc == -EINVAL) {
		struct dp_route o = *r;

		o.flags |= RTNH_F_ONLINK;
		rc = dp_route_add(&o);
	}
	return rc == -EEXIST ? 0 : rc;
}

/* Text of a route for the log. */
static void route_text(const struct dp_route *r, char *buf, size_t len)
{
	char gw[64] = "";

	if (r->has_gw)
		inet_ntop(r->family, r->gw, gw, sizeof(gw));
	snprintf(buf, len, "%s default%s%s dev #%d metric %u table %u", r->family == AF_INET ? "IPv4" : "IPv6",
		 r->has_gw ? " via " : "", gw, r->oif, r->metric, r->table);
}

struct rule_set {
	struct dp_rule v[64];
	int n;
};

/* Dump callback collecting the rules the loader made. */
static void collect_rule(void *ctx, const struct dp_rule *r)
{
	struct rule_set *s = ctx;

	if (r->protocol == DP_RTPROT && s->n < 64)
		s->v[s->n++] = *r;
}

/* Brings the policy rules in line: one fwmark rule per WAN and family; removes the loader's others. */
static int reconcile_rules(struct dp_wan_mgr *m, struct dp_err *err)
{
	int rc = 0;

	for (int f = 0; f < 2; f++) {
		int fam = f ? AF_INET6 : AF_INET;
		struct rule_set have = { .n = 0 };
		struct dp_rule want[DP_MAX_WANS];

		if (dp_rules_dump(fam, collect_rule, &have, err))
			return -1;
		for (int i = 0; i < m->n; i++)
			want[i] = (struct dp_rule){ .family = fam, .priority = DP_WAN_RULE_PRIO + (uint32_t)i,
						    .fwmark = m->w[i].cfg.mark, .fwmask = DP_WAN_MARK_MASK,
						    .table = m->w[i].cfg.table, .protocol = DP_RTPROT,
						    .action = FR_ACT_TO_TBL };
		for (int h = 0; h < have.n; h++) {
			const struct dp_rule *r = &have.v[h];
			bool keep = false;

			for (int i = 0; i < m->n; i++)
				keep |= !r->has_other && r->priority == want[i].priority && r->fwmark == want[i].fwmark &&
					r->fwmask == want[i].fwmask && r->table == want[i].table &&
					r->action == FR_ACT_TO_TBL;
			if (!keep) {
				int e = dp_rule_del(r);

				dp_log(e ? "error" : "info", "wan_rule", "removed %s rule priority %u fwmark 0x%x/0x%x lookup %u%s%s",
				       f ? "IPv6" : "IPv4", r->priority, r->fwmark, r->fwmask, r->table, e ? ": " : "",
				       e ? strerror(-e) : "");
				rc |= e;
			}
		}
		for (int i = 0; i < m->n; i++) {
			bool there = false;

			for (int h = 0; h < have.n; h++)
				there |= !have.v[h].has_other && have.v[h].priority == want[i].priority &&
					 have.v[h].fwmark == want[i].fwmark && have.v[h].fwmask == want[i].fwmask &&
					 have.v[h].table == want[i].table && have.v[h].action == FR_ACT_TO_TBL;
			if (!there) {
				int e = dp_rule_add(&want[i]);

				if (e && e != -EEXIST) {
					dp_log("error", "wan_rule", "[wan %s]: cannot add %s rule fwmark 0x%x/0x%x lookup %u: %s",
					       m->w[i].cfg.name, f ? "IPv6" : "IPv4", want[i].fwmark, want[i].fwmask,
					       want[i].table, strerror(-e));
					rc |= e;
				} else {
					dp_log("info", "wan_rule", "[wan %s]: %s rule priority %u fwmark 0x%x/0x%x lookup %u",
					       m->w[i].cfg.name, f ? "IPv6" : "IPv4", want[i].priority, want[i].fwmark,
					       want[i].fwmask, want[i].table);
				}
			}
		}
	}
	(void)err;
	return rc ? -1 : 0;
}

/* Index of the preferred WAN (lowest priority of all), or -1. */
static int preferred(const struct dp_wan_mgr *m)
{
	int best = -1;

	for (int i = 0; i < m->n; i++)
		if (best < 0 || m->w[i].cfg.priority < m->w[best].cfg.priority)
			best = i;
	return best;
}

/* Index of the healthy WAN with the lowest priority, or -1. */
static int healthiest(const struct dp_wan_mgr *m)
{
	int best = -1;

	for (int i = 0; i < m->n; i++)
		if (m->w[i].state == DP_WAN_UP && (best < 0 || m->w[i].cfg.priority < m->w[best].cfg.priority))
			best = i;
	return best;
}

/*
 * One pass over routes, health and rules: mirrors each WAN's main-table default routes into its
 * table, derives route-based health (no usable default route = down; no probe targets = up while it
 * has one), picks the active WAN, sets or removes the override route, and fixes the rules.
 */
static void reconcile(struct dp_wan_mgr *m, double now)
{
	static struct route_set main4, main6, ours, want;
	struct dp_err err = { "" };
	int pref, act;
	bool ok = true;

	m->dirty = false;
	m->last_reconcile = now;
	main4.n = main6.n = ours.n = want.n = 0;
	if (dp_routes_dump(AF_INET, RT_TABLE_MAIN, collect, &main4, &err) ||
	    dp_routes_dump(AF_INET6, RT_TABLE_MAIN, collect, &main6, &err)) {
		dp_log("error", "wan_routes", "%s", err.msg);
		m->reconcile_errors++;
		return;
	}
	{
		struct route_set all;

		for (int f = 0; f < 2; f++) {
			all.n = 0;
			if (dp_routes_dump(f ? AF_INET6 : AF_INET, 0, collect, &all, &err)) {
				dp_log("error", "wan_routes", "%s", err.msg);
				m->reconcile_errors++;
				return;
			}
			for (int i = 0; i < all.n; i++)
				if (all.v[i].protocol == DP_RTPROT && ours.n < MAX_ROUTES)
					ours.v[ours.n++] = all.v[i];
		}
	}

	/* the per-WAN tables: copies of the main table's default routes through each WAN */
	for (int i = 0; i < m->n; i++) {
		struct dp_wan_run *w = &m->w[i];
		int routes[2] = { 0, 0 }, no_carrier = 0;

		for (int f = 0; f < 2; f++) {
			const struct route_set *s = f ? &main6 : &main4;

			for (int r = 0; r < s->n; r++) {
				struct dp_route c = s->v[r];

				if (c.dst_len || c.type != RTN_UNICAST || c.protocol == DP_RTPROT ||
				    w->link.state != DP_RESOLVED || c.oif != w->link.ifindex || want.n == MAX_ROUTES)
					continue;
				/* the link lost its carrier (cable pulled, modem off): the kernel keeps the route
				 * but marks it; nothing gets through it, so it counts as gone */
				if (c.flags & (RTNH_F_LINKDOWN | RTNH_F_DEAD)) {
					no_carrier++;
					continue;
				}
				c.table = w->cfg.table;
				c.protocol = DP_RTPROT;
				c.flags &= RTNH_F_ONLINK;
				want.v[want.n++] = c;
				routes[f]++;
			}
		}
		lock(m);
		w->routes[0] = routes[0];
		w->routes[1] = routes[1];
		unlock(m);
		if (routes[0] + routes[1] == 0 && w->state != DP_WAN_DOWN) {
			enum dp_wan_health was = w->state;

			lock(m);
			w->state = DP_WAN_DOWN;
			w->good = 0;
			unlock(m);
			health_changed(m, w, was,
				       no_carrier ? "its link has no carrier" : "no default route through it");
		} else if (routes[0] + routes[1] > 0 && !w->cfg.n_probes && w->state != DP_WAN_UP) {
			enum dp_wan_health was = w->state;

			lock(m);
			w->state = DP_WAN_UP;
			unlock(m);
			health_changed(m, w, was, "has a default route and no probe targets");
		}
	}

	/* the active WAN; before every WAN has a verdict, the override stays as it is */
	m->decided = true;
	for (int i = 0; i < m->n; i++)
		m->decided &= m->w[i].state != DP_WAN_UNKNOWN;
	pref = preferred(m);
	act = healthiest(m);
	if (m->decided && !m->chosen) {
		/* the first decision is where the loader starts, not a failover */
		dp_log("info", "wan_active", "active WAN: %s", act >= 0 ? m->w[act].cfg.name : "none (all down)");
		lock(m);
		m->chosen = true;
		m->active = act;
		unlock(m);
	} else if (m->decided && act != m->active) {
		dp_log("warn", "wan_failover", "active WAN: %s -> %s", m->active >= 0 ? m->w[m->active].cfg.name : "none",
		       act >= 0 ? m->w[act].cfg.name : "none (all down)");
		lock(m);
		m->failovers++;
		m->active = act;
		unlock(m);
	}
	if (m->decided) {
		if (m->active >= 0 && m->active != pref) {
			/* the best default route of each family through the active WAN, with a metric below Talos' */
			for (int f = 0; f < 2; f++) {
				const struct route_set *s = f ? &main6 : &main4;
				const struct dp_route *best = NULL;

				for (int r = 0; r < s->n; r++) {
					const struct dp_route *c = &s->v[r];

					if (!c->dst_len && c->type == RTN_UNICAST && c->protocol != DP_RTPROT &&
					    c->oif == m->w[m->active].link.ifindex && (!best || c->metric < best->metric))
						best = c;
				}
				if (best && want.n < MAX_ROUTES) {
					struct dp_route o = *best;

					o.protocol = DP_RTPROT;
					o.metric = DP_WAN_OVERRIDE_METRIC;
					o.flags &= RTNH_F_ONLINK;
					want.v[want.n++] = o;
				}
			}
		}
	} else {
		for (int r = 0; r < ours.n; r++)
			if (ours.v[r].table == RT_TABLE_MAIN && want.n < MAX_ROUTES)
				want.v[want.n++] = ours.v[r];
	}

	/* apply the difference; only routes of our protocol are ever deleted */
	for (int r = 0; r < ours.n; r++) {
		bool keep = false;
		char t[160];

		for (int k = 0; k < want.n; k++)
			keep |= same_route(&ours.v[r], &want.v[k]);
		if (keep)
			continue;
		route_text(&ours.v[r], t, sizeof(t));
		if (dp_route_del(&ours.v[r])) {
			ok = false;
			dp_log("error", "wan_routes", "cannot remove %s", t);
		} else {
			dp_log("info", "wan_routes", "removed %s", t);
		}
	}
	for (int k = 0; k < want.n; k++) {
		bool there = false;
		char t[160];
		int rc;

		for (int r = 0; r < ours.n; r++)
			there |= same_route(&ours.v[r], &want.v[k]);
		if (there)
			continue;
		route_text(&want.v[k], t, sizeof(t));
		rc = add_route(&want.v[k]);
		if (rc) {
			ok = false;
			dp_log("error", "wan_routes", "cannot add %s: %s", t, strerror(-rc));
		} else {
			dp_log("info", "wan_routes", "added %s", t);
		}
	}
	if (reconcile_rules(m, &err))
		ok = false;
	for (int i = 0; i < m->n; i++) {
		if (m->w[i].flush_pending) {
			m->w[i].flush_pending = false;
			flush_conntrack(m, &m->w[i]);
		}
	}
	if (!ok) {
		m->reconcile_errors++;
		dp_wan_routes_changed(m, now + 1.0); /* try again in a second */
	}
}

void dp_wan_tick(struct dp_wan_mgr *m, double now)
{
	if (!m->n && !m->dirty)
		return;
	for (int i = 0; i < m->n; i++) {
		struct dp_wan_run *w = &m->w[i];

		if (!w->cfg.n_probes)
			continue;
		if (w->in_round && now >= w->round_end)
			finish_round(m, w);
		if (!w->in_round && now >= w->next_round)
			start_round(w, now);
	}
	/* a health change acts at once; route changes after the debounce; and now and then anyway */
	if (m->health_changed || (m->dirty && now >= m->reconcile_due) || now >= m->last_reconcile + RECONCILE_EVERY) {
		m->health_changed = false;
		reconcile(m, now);
	}
}

void dp_wan_metrics(const struct dp_wan_mgr *m, void (*emit)(void *t, const char *fmt, ...), void *t)
{
	if (!m->n)
		return;
	emit(t, "# HELP router_dataplane_wan_up Whether the WAN is healthy (1) or down/not yet probed (0).\n"
		"# TYPE router_dataplane_wan_up gauge\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_up{wan=\"%s\"} %d\n", m->w[i].cfg.name, m->w[i].state == DP_WAN_UP);
	emit(t, "# HELP router_dataplane_wan_active Whether new connections leave through this WAN.\n"
		"# TYPE router_dataplane_wan_active gauge\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_active{wan=\"%s\"} %d\n", m->w[i].cfg.name, m->active == i);
	emit(t, "# HELP router_dataplane_wan_probe_rtt_seconds Fastest answer of the last finished probe round (NaN: none).\n"
		"# TYPE router_dataplane_wan_probe_rtt_seconds gauge\n");
	for (int i = 0; i < m->n; i++) {
		if (isnan(m->w[i].last_rtt))
			emit(t, "router_dataplane_wan_probe_rtt_seconds{wan=\"%s\"} NaN\n", m->w[i].cfg.name);
		else
			emit(t, "router_dataplane_wan_probe_rtt_seconds{wan=\"%s\"} %.6f\n", m->w[i].cfg.name, m->w[i].last_rtt);
	}
	emit(t, "# HELP router_dataplane_wan_probes_total ICMP echo probes sent through the WAN.\n"
		"# TYPE router_dataplane_wan_probes_total counter\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_probes_total{wan=\"%s\"} %llu\n", m->w[i].cfg.name,
		     (unsigned long long)m->w[i].probes);
	emit(t, "# HELP router_dataplane_wan_probe_failures_total Probes not answered within probe_timeout.\n"
		"# TYPE router_dataplane_wan_probe_failures_total counter\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_probe_failures_total{wan=\"%s\"} %llu\n", m->w[i].cfg.name,
		     (unsigned long long)m->w[i].probe_failures);
	emit(t, "# HELP router_dataplane_wan_probe_rounds_failed_total Probe rounds in which no target answered.\n"
		"# TYPE router_dataplane_wan_probe_rounds_failed_total counter\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_probe_rounds_failed_total{wan=\"%s\"} %llu\n", m->w[i].cfg.name,
		     (unsigned long long)m->w[i].rounds_failed);
	emit(t, "# HELP router_dataplane_wan_default_routes Usable default routes through the WAN in the main table "
		"(routes on a link without carrier do not count).\n"
		"# TYPE router_dataplane_wan_default_routes gauge\n");
	for (int i = 0; i < m->n; i++)
		for (int f = 0; f < 2; f++)
			emit(t, "router_dataplane_wan_default_routes{wan=\"%s\",family=\"%s\"} %d\n", m->w[i].cfg.name,
			     f ? "ipv6" : "ipv4", m->w[i].routes[f]);
	emit(t, "# HELP router_dataplane_wan_conntrack_flushed_total Connections NATed to the WAN removed when it went down.\n"
		"# TYPE router_dataplane_wan_conntrack_flushed_total counter\n");
	for (int i = 0; i < m->n; i++)
		emit(t, "router_dataplane_wan_conntrack_flushed_total{wan=\"%s\"} %llu\n", m->w[i].cfg.name,
		     (unsigned long long)m->w[i].ct_flushed);
	emit(t, "# HELP router_dataplane_wan_failovers_total Changes of the active WAN (failovers and failbacks).\n"
		"# TYPE router_dataplane_wan_failovers_total counter\n"
		"router_dataplane_wan_failovers_total %llu\n",
	     (unsigned long long)m->failovers);
	emit(t, "# HELP router_dataplane_wan_reconcile_errors_total Route or rule changes the kernel refused.\n"
		"# TYPE router_dataplane_wan_reconcile_errors_total counter\n"
		"router_dataplane_wan_reconcile_errors_total %llu\n",
	     (unsigned long long)m->reconcile_errors);
}

void dp_wan_close(struct dp_wan_mgr *m)
{
	for (int i = 0; i < m->n; i++)
		close_socks(&m->w[i]);
}
