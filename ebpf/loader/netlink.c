// SPDX-License-Identifier: Apache-2.0
#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_BUF 65536

/* A request: the header followed by room for its body and attributes. */
struct nl_req {
	union {
		struct nlmsghdr h;
		char raw[2048];
	};
};

/* Appends attribute type with len bytes of data to the message h (its buffer holds cap bytes). */
static void attr_put(struct nlmsghdr *h, size_t cap, unsigned short type, const void *data, size_t len)
{
	char *base = (char *)h;
	struct rtattr *a = (struct rtattr *)(base + NLMSG_ALIGN(h->nlmsg_len));

	if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > cap)
		return;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = (__u32)(NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len));
}

/* Appends a 32-bit attribute. */
static void attr_u32(struct nlmsghdr *h, size_t cap, unsigned short type, uint32_t v)
{
	attr_put(h, cap, type, &v, sizeof(v));
}

/* Opens a netlink socket of protocol proto; fd or -1. */
static int nl_open(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sends req on a fresh socket of protocol proto and reads the answer: with NLM_F_DUMP every
 * message until NLMSG_DONE goes to fn; otherwise the ACK decides. Returns 0 or -errno.
 */
static int nl_call(int proto, struct nlmsghdr *req, int (*fn)(void *ctx, struct nlmsghdr *m), void *ctx)
{
	static __thread unsigned seq;
	char *buf = malloc(NL_BUF);
	int fd = nl_open(proto), rc = -EIO;

	if (fd < 0 || !buf) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	req->nlmsg_seq = ++seq;
	if (send(fd, req, req->nlmsg_len, 0) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, NL_BUF, 0);
		struct nlmsghdr *m;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		for (m = (struct nlmsghdr *)buf; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n)) {
			if (m->nlmsg_seq != req->nlmsg_seq)
				continue;
			if (m->nlmsg_type == NLMSG_DONE) {
				rc = 0;
				goto out;
			}
			if (m->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(m);

				rc = e->error;
				/* NLM_F_EXCL shares its bit with NLM_F_MATCH: a dump is a request with a callback */
				if (rc || !fn)
					goto out;
				continue;
			}
			if (fn && fn(ctx, m)) {
				rc = 0;
				goto out;
			}
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* Indexes the attributes of a message part into tb[0..max]. */
static void parse_attrs(struct rtattr **tb, int max, struct rtattr *a, int len)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		unsigned short t = a->rta_type & NLA_TYPE_MASK;

		if (t <= max && !tb[t])
			tb[t] = a;
	}
}

/* ---- links ------------------------------------------------------------------------------------ */

/* Dump callback: one link into the list. */
static int link_cb(void *ctx, struct nlmsghdr *m)
{
	struct dp_links *l = ctx;
	struct ifinfomsg *ifi = NLMSG_DATA(m);
	struct rtattr *tb[IFLA_MAX + 1];
	struct dp_link *k;

	if (m->nlmsg_type != RTM_NEWLINK || l->n == DP_MAX_LINKS)
		return 0;
	parse_attrs(tb, IFLA_MAX, IFLA_RTA(ifi), (int)IFLA_PAYLOAD(m));
	if (!tb[IFLA_IFNAME])
		return 0;
	k = &l->v[l->n++];
	memset(k, 0, sizeof(*k));
	k->ifindex = ifi->ifi_index;
	k->flags = ifi->ifi_flags;
	if (tb[IFLA_MASTER] && RTA_PAYLOAD(tb[IFLA_MASTER]) >= sizeof(uint32_t))
		k->master = (int)*(uint32_t *)RTA_DATA(tb[IFLA_MASTER]);
	snprintf(k->name, sizeof(k->name), "%.*s", (int)RTA_PAYLOAD(tb[IFLA_IFNAME]), (char *)RTA_DATA(tb[IFLA_IFNAME]));
	if (tb[IFLA_IFALIAS])
		snprintf(k->alias, sizeof(k->alias), "%.*s", (int)RTA_PAYLOAD(tb[IFLA_IFALIAS]),
			 (char *)RTA_DATA(tb[IFLA_IFALIAS]));
	return 0;
}

int dp_links_dump(struct dp_links *out, struct dp_err *err)
{
	struct nl_req r = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_GETLINK,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	int rc;

	out->n = 0;
	rc = nl_call(NETLINK_ROUTE, &r.h, link_cb, out);
	if (rc)
		return dp_errf(err, "cannot list the network links: %s", strerror(-rc));
	return 0;
}

const struct dp_link *dp_links_by_name(const struct dp_links *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

const struct dp_link *dp_links_by_index(const struct dp_links *l, int ifindex)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].ifindex == ifindex)
			return &l->v[i];
	return NULL;
}

enum dp_resolve dp_links_resolve(const struct dp_links *l, const char *name, const struct dp_link **out, char *why,
				 size_t whylen)
{
	const struct dp_link *first = NULL;
	size_t n = 0;
	int count = 0;

	why[0] = '\0';
	*out = dp_links_by_name(l, name);
	if (*out)
		return DP_RESOLVED;
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].alias, name) != 0)
			continue;
		if (!count++)
			first = &l->v[i];
		if (n < whylen)
			n += (size_t)snprintf(why + n, whylen - n, "%s%s", count > 1 ? " and " : "", l->v[i].name);
	}
	if (count > 1)
		return DP_RES_AMBIGUOUS;
	*out = first;
	return first ? DP_RESOLVED : DP_RES_MISSING;
}

/* ---- routes ----------------------------------------------------------------------------------- */

struct route_dump {
	int family;
	uint32_t table;
	void (*fn)(void *ctx, const struct dp_route *r);
	void *ctx;
};

/* Dump callback: a route (one call per nexthop of a multipath route). */
static int route_cb(void *ctx, struct nlmsghdr *m)
{
	struct route_dump *d = ctx;
	struct rtmsg *rt = NLMSG_DATA(m);
	struct rtattr *tb[RTA_MAX + 1];
	struct dp_route r = { 0 };
	size_t alen;

	if (m->nlmsg_type != RTM_NEWROUTE || rt->rtm_family != d->family)
		return 0;
	parse_attrs(tb, RTA_MAX, RTM_RTA(rt), (int)RTM_PAYLOAD(m));
	r.family = rt->rtm_family;
	r.table = tb[RTA_TABLE] ? *(uint32_t *)RTA_DATA(tb[RTA_TABLE]) : rt->rtm_table;
	if (d->table && r.table != d->table)
		return 0;
	alen = r.family == AF_INET ? 4 : 16;
	r.dst_len = rt->rtm_dst_len;
	r.protocol = rt->rtm_protocol;
	r.type = rt->rtm_type;
	r.scope = rt->rtm_scope;
	r.tos = rt->rtm_tos;
	r.flags = rt->rtm_flags;
	if (tb[RTA_DST] && RTA_PAYLOAD(tb[RTA_DST]) >= alen)
		memcpy(r.dst, RTA_DATA(tb[RTA_DST]), alen);
	if (tb[RTA_PRIORITY])
		r.metric = *(uint32_t *)RTA_DATA(tb[RTA_PRIORITY]);
	if (tb[RTA_MULTIPATH]) {
		struct rtnexthop *nh = RTA_DATA(tb[RTA_MULTIPATH]);
		int left = (int)RTA_PAYLOAD(tb[RTA_MULTIPATH]);
		uint8_t k = 0;

		while (left >= (int)sizeof(*nh) && nh->rtnh_len >= sizeof(*nh) && nh->rtnh_len <= left) {
			struct rtattr *nt[RTA_MAX + 1];
			struct dp_route p = r;

			p.nexthop = k < 255 ? k++ : 255;
			parse_attrs(nt, RTA_MAX, RTNH_DATA(nh), nh->rtnh_len - (int)sizeof(*nh));
			p.oif = nh->rtnh_ifindex;
			p.flags = nh->rtnh_flags;
			if (nt[RTA_GATEWAY] && RTA_PAYLOAD(nt[RTA_GATEWAY]) >= alen) {
				memcpy(p.gw, RTA_DATA(nt[RTA_GATEWAY]), alen);
				p.has_gw = true;
			}
			d->fn(d->ctx, &p);
			left -= RTNH_ALIGN(nh->rtnh_len);
			nh = RTNH_NEXT(nh);
		}
		return 0;
	}
	if (tb[RTA_OIF])
		r.oif = (int)*(uint32_t *)RTA_DATA(tb[RTA_OIF]);
	if (tb[RTA_GATEWAY] && RTA_PAYLOAD(tb[RTA_GATEWAY]) >= alen) {
		memcpy(r.gw, RTA_DATA(tb[RTA_GATEWAY]), alen);
		r.has_gw = true;
	}
	d->fn(d->ctx, &r);
	return 0;
}

int dp_routes_dump(int family, uint32_t table, void (*fn)(void *ctx, const struct dp_route *r), void *ctx,
		   struct dp_err *err)
{
	struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)), .nlmsg_type = RTM_GETROUTE,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	struct rtmsg *rt = NLMSG_DATA(&q.h);
	struct route_dump d = { .family = family, .table = table, .fn = fn, .ctx = ctx };
	int rc;

	rt->rtm_family = (unsigned char)family;
	rc = nl_call(NETLINK_ROUTE, &q.h, route_cb, &d);
	if (rc)
		return dp_errf(err, "cannot list the %s routes: %s", family == AF_INET ? "IPv4" : "IPv6", strerror(-rc));
	return 0;
}

/* Builds an RTM_NEWROUTE/RTM_DELROUTE request for r. */
static void route_msg(struct nl_req *q, const struct dp_route *r, int type, int flags)
{
	struct rtmsg *rt = NLMSG_DATA(&q->h);
	size_t alen = r->family == AF_INET ? 4 : 16;

	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = NLMSG_LENGTH(sizeof(*rt));
	q->h.nlmsg_type = (unsigned short)type;
	q->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
	rt->rtm_family = (unsigned char)r->family;
	rt->rtm_dst_len = r->dst_len;
	rt->rtm_table = r->table < 256 ? (unsigned char)r->table : RT_TABLE_UNSPEC;
	rt->rtm_protocol = r->protocol;
	rt->rtm_scope = r->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	rt->rtm_flags = r->flags & RTNH_F_ONLINK;
	attr_u32(&q->h, sizeof(*q), RTA_TABLE, r->table);
	if (r->dst_len)
		attr_put(&q->h, sizeof(*q), RTA_DST, r->dst, alen);
	if (r->has_gw)
		attr_put(&q->h, sizeof(*q), RTA_GATEWAY, r->gw, alen);
	if (r->oif)
		attr_u32(&q->h, sizeof(*q), RTA_OIF, (uint32_t)r->oif);
	attr_u32(&q->h, sizeof(*q), RTA_PRIORITY, r->metric);
}

int dp_route_add(const struct dp_route *r)
{
	struct nl_req q;

	route_msg(&q, r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	return nl_call(NETLINK_ROUTE, &q.h, NULL, NULL);
}

int dp_route_del(const struct dp_route *r)
{
	struct nl_req q;

	route_msg(&q, r, RTM_DELROUTE, 0);
	return nl_call(NETLINK_ROUTE, &q.h, NULL, NULL);
}

int dp_route_del_dumped(const struct dp_route *r)
{
	struct nl_req q;
	struct rtmsg *rt = NLMSG_DATA(&q.h);
	struct dp_route whole = *r;

	/* no nexthop given: the whole route (IPv6: every sibling of a multipath route, net/ipv6/route.c
	 * ip6_route_del) */
	whole.has_gw = false;
	whole.oif = 0;
	whole.flags = 0;
	route_msg(&q, &whole, RTM_DELROUTE, 0);
	rt->rtm_tos = r->tos;
	/* RT_SCOPE_NOWHERE: any scope (net/ipv4/fib_trie.c fib_table_delete) */
	rt->rtm_scope = RT_SCOPE_NOWHERE;
	rt->rtm_type = r->type;
	return nl_call(NETLINK_ROUTE, &q.h, NULL, NULL);
}

/* ---- rules ------------------------------------------------------------------------------------ */

struct rule_dump {
	int family;
	void (*fn)(void *ctx, const struct dp_rule *r);
	void *ctx;
};

/* Dump callback: one policy rule. */
static int rule_cb(void *ctx, struct nlmsghdr *m)
{
	struct rule_dump *d = ctx;
	struct fib_rule_hdr *h = NLMSG_DATA(m);
	struct rtattr *tb[FRA_MAX + 1];
	struct dp_rule r = { 0 };

	if (m->nlmsg_type != RTM_NEWRULE || h->family != d->family)
		return 0;
	parse_attrs(tb, FRA_MAX, (struct rtattr *)((char *)h + NLMSG_ALIGN(sizeof(*h))),
		    (int)(m->nlmsg_len - NLMSG_LENGTH(sizeof(*h))));
	r.family = h->family;
	r.action = h->action;
	r.table = tb[FRA_TABLE] ? *(uint32_t *)RTA_DATA(tb[FRA_TABLE]) : h->table;
	r.priority = tb[FRA_PRIORITY] ? *(uint32_t *)RTA_DATA(tb[FRA_PRIORITY]) : 0;
	r.fwmark = tb[FRA_FWMARK] ? *(uint32_t *)RTA_DATA(tb[FRA_FWMARK]) : 0;
	r.fwmask = tb[FRA_FWMASK] ? *(uint32_t *)RTA_DATA(tb[FRA_FWMASK]) : 0;
	r.protocol = tb[FRA_PROTOCOL] ? *(uint8_t *)RTA_DATA(tb[FRA_PROTOCOL]) : 0;
	r.has_other = h->src_len || h->dst_len || h->tos || (h->flags & FIB_RULE_INVERT) || tb[FRA_IIFNAME] ||
		      tb[FRA_OIFNAME] || tb[FRA_UID_RANGE] || tb[FRA_IP_PROTO] || tb[FRA_SPORT_RANGE] ||
		      tb[FRA_DPORT_RANGE] || tb[FRA_L3MDEV];
	d->fn(d->ctx, &r);
	return 0;
}

int dp_rules_dump(int family, void (*fn)(void *ctx, const struct dp_rule *r), void *ctx, struct dp_err *err)
{
	struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct fib_rule_hdr)), .nlmsg_type = RTM_GETRULE,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	struct fib_rule_hdr *h = NLMSG_DATA(&q.h);
	struct rule_dump d = { .family = family, .fn = fn, .ctx = ctx };
	int rc;

	h->family = (unsigned char)family;
	rc = nl_call(NETLINK_ROUTE, &q.h, rule_cb, &d);
	if (rc)
		return dp_errf(err, "cannot list the %s policy rules: %s", family == AF_INET ? "IPv4" : "IPv6",
			       strerror(-rc));
	return 0;
}

/* Builds an RTM_NEWRULE/RTM_DELRULE request for an fwmark -> table rule. */
static void rule_msg(struct nl_req *q, const struct dp_rule *r, int type, int flags)
{
	struct fib_rule_hdr *h = NLMSG_DATA(&q->h);

	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = NLMSG_LENGTH(sizeof(*h));
	q->h.nlmsg_type = (unsigned short)type;
	q->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
	h->family = (unsigned char)r->family;
	h->action = FR_ACT_TO_TBL;
	h->table = r->table < 256 ? (unsigned char)r->table : RT_TABLE_UNSPEC;
	attr_u32(&q->h, sizeof(*q), FRA_TABLE, r->table);
	attr_u32(&q->h, sizeof(*q), FRA_PRIORITY, r->priority);
	attr_u32(&q->h, sizeof(*q), FRA_FWMARK, r->fwmark);
	attr_u32(&q->h, sizeof(*q), FRA_FWMASK, r->fwmask);
	attr_put((struct nlmsghdr *)q->raw, sizeof(q->raw), FRA_PROTOCOL, &r->protocol, 1);
}

int dp_rule_add(const struct dp_rule *r)
{
	struct nl_req q;

	rule_msg(&q, r, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
	return nl_call(NETLINK_ROUTE, &q.h, NULL, NULL);
}

int dp_rule_del(const struct dp_rule *r)
{
	struct nl_req q;

	rule_msg(&q, r, RTM_DELRULE, 0);
	return nl_call(NETLINK_ROUTE, &q.h, NULL, NULL);
}

/* ---- addresses -------------------------------------------------------------------------------- */

struct addr_dump {
	int ifindex, max, n;
	uint8_t (*addrs)[16];
	int *fam;
};

/* Dump callback: an address of the wanted link. */
static int addr_cb(void *ctx, struct nlmsghdr *m)
{
	struct addr_dump *d = ctx;
	struct ifaddrmsg *ifa = NLMSG_DATA(m);
	struct rtattr *tb[IFA_MAX + 1], *a;

	if (m->nlmsg_type != RTM_NEWADDR || (int)ifa->ifa_index != d->ifindex || d->n == d->max)
		return 0;
	parse_attrs(tb, IFA_MAX, IFA_RTA(ifa), (int)IFA_PAYLOAD(m));
	a = ifa->ifa_family == AF_INET && tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || RTA_PAYLOAD(a) < (ifa->ifa_family == AF_INET ? 4u : 16u))
		return 0;
	memset(d->addrs[d->n], 0, 16);
	memcpy(d->addrs[d->n], RTA_DATA(a), ifa->ifa_family == AF_INET ? 4 : 16);
	d->fam[d->n++] = ifa->ifa_family;
	return 0;
}

struct addr_all {
	void (*fn)(void *ctx, const struct dp_addr *a);
	void *ctx;
};

/* Dump callback: any address, both forms (local and the point-to-point peer). */
static int addr_all_cb(void *ctx, struct nlmsghdr *m)
{
	struct addr_all *d = ctx;
	struct ifaddrmsg *ifa = NLMSG_DATA(m);
	struct rtattr *tb[IFA_MAX + 1], *local, *peer;
	size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
	struct dp_addr a = { 0 };

	if (m->nlmsg_type != RTM_NEWADDR || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return 0;
	parse_attrs(tb, IFA_MAX, IFA_RTA(ifa), (int)IFA_PAYLOAD(m));
	peer = tb[IFA_ADDRESS] ? tb[IFA_ADDRESS] : tb[IFA_LOCAL];
	local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!peer || RTA_PAYLOAD(peer) < alen || RTA_PAYLOAD(local) < alen)
		return 0;
	a.ifindex = (int)ifa->ifa_index;
	a.family = ifa->ifa_family;
	a.prefixlen = ifa->ifa_prefixlen;
	a.scope = ifa->ifa_scope;
	memcpy(a.local, RTA_DATA(local), alen);
	memcpy(a.peer, RTA_DATA(peer), alen);
	d->fn(d->ctx, &a);
	return 0;
}

int dp_addrs_dump(void (*fn)(void *ctx, const struct dp_addr *a), void *ctx, struct dp_err *err)
{
	struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = RTM_GETADDR,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	struct addr_all d = { .fn = fn, .ctx = ctx };
	int rc = nl_call(NETLINK_ROUTE, &q.h, addr_all_cb, &d);

	if (rc)
		return dp_errf(err, "cannot list the addresses: %s", strerror(-rc));
	return 0;
}

int dp_addrs_of(int ifindex, uint8_t (*addrs)[16], int *fam, int max)
{
	struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)), .nlmsg_type = RTM_GETADDR,
				   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
	struct addr_dump d = { .ifindex = ifindex, .max = max, .addrs = addrs, .fam = fam };

	if (nl_call(NETLINK_ROUTE, &q.h, addr_cb, &d))
		return 0;
	return d.n;
}

/* ---- conntrack -------------------------------------------------------------------------------- */

struct ct_victim {
	int family;
	uint16_t orig_len, zone_len;
	char orig[256]; /* CTA_TUPLE_ORIG attribute as received */
	char zone[8];   /* CTA_ZONE attribute, if any */
};

struct ct_dump {
	const uint8_t (*addrs)[16];
	const int *fam;
	int n;
	struct ct_victim *v;
	size_t nv, cap;
	bool oom;
};

/* Dump callback: remembers an entry whose reply destination is one of the addresses. */
static int ct_cb(void *ctx, struct nlmsghdr *m)
{
	struct ct_dump *d = ctx;
	struct nfgenmsg *g = NLMSG_DATA(m);
	struct rtattr *tb[CTA_MAX + 1], *tu[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *dst;
	int len = (int)(m->nlmsg_len - NLMSG_LENGTH(sizeof(*g)));

	parse_attrs(tb, CTA_MAX, (struct rtattr *)((char *)g + NLMSG_ALIGN(sizeof(*g))), len);
	if (!tb[CTA_TUPLE_REPLY] || !tb[CTA_TUPLE_ORIG] || RTA_LENGTH(RTA_PAYLOAD(tb[CTA_TUPLE_ORIG])) > 256)
		return 0;
	parse_attrs(tu, CTA_TUPLE_MAX, RTA_DATA(tb[CTA_TUPLE_REPLY]), (int)RTA_PAYLOAD(tb[CTA_TUPLE_REPLY]));
	if (!tu[CTA_TUPLE_IP])
		return 0;
	parse_attrs(ip, CTA_IP_MAX, RTA_DATA(tu[CTA_TUPLE_IP]), (int)RTA_PAYLOAD(tu[CTA_TUPLE_IP]));
	dst = g->nfgen_family == AF_INET ? ip[CTA_IP_V4_DST] : ip[CTA_IP_V6_DST];
	if (!dst)
		return 0;
	for (int i = 0; i < d->n; i++) {
		size_t alen = d->fam[i] == AF_INET ? 4 : 16;
		struct ct_victim *v;

		if (d->fam[i] != g->nfgen_family || RTA_PAYLOAD(dst) < alen || memcmp(RTA_DATA(dst), d->addrs[i], alen))
			continue;
		if (d->nv == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 64;
			struct ct_victim *nv = realloc(d->v, cap * sizeof(*nv));

			if (!nv) {
				d->oom = true;
				return 1;
			}
			d->v = nv;
			d->cap = cap;
		}
		v = &d->v[d->nv++];
		v->family = g->nfgen_family;
		v->orig_len = tb[CTA_TUPLE_ORIG]->rta_len;
		memcpy(v->orig, tb[CTA_TUPLE_ORIG], v->orig_len);
		v->zone_len = tb[CTA_ZONE] && tb[CTA_ZONE]->rta_len <= sizeof(v->zone) ? tb[CTA_ZONE]->rta_len : 0;
		if (v->zone_len)
			memcpy(v->zone, tb[CTA_ZONE], v->zone_len);
		break;
	}
	return 0;
}

int dp_conntrack_flush_reply_dst(const uint8_t (*addrs)[16], const int *fam, int n, struct dp_err *err)
{
	struct ct_dump d = { .addrs = addrs, .fam = fam, .n = n };
	int deleted = 0;

	for (int f = 0; f < 2; f++) {
		struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg)),
					   .nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
					   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP } };
		struct nfgenmsg *g = NLMSG_DATA(&q.h);
		int rc;

		g->nfgen_family = f ? AF_INET6 : AF_INET;
		g->version = NFNETLINK_V0;
		rc = nl_call(NETLINK_NETFILTER, &q.h, ct_cb, &d);
		if (rc || d.oom) {
			free(d.v);
			return dp_errf(err, "cannot list conntrack entries: %s", d.oom ? "out of memory" : strerror(-rc));
		}
	}
	for (size_t i = 0; i < d.nv; i++) {
		struct nl_req q = { .h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg)),
					   .nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
					   .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK } };
		struct nfgenmsg *g = NLMSG_DATA(&q.h);
		char *tail;

		g->nfgen_family = (unsigned char)d.v[i].family;
		g->version = NFNETLINK_V0;
		tail = (char *)&q.h + NLMSG_ALIGN(q.h.nlmsg_len);
		memcpy(tail, d.v[i].orig, d.v[i].orig_len);
		q.h.nlmsg_len = (__u32)(NLMSG_ALIGN(q.h.nlmsg_len) + RTA_ALIGN(d.v[i].orig_len));
		if (d.v[i].zone_len) {
			tail = (char *)&q.h + NLMSG_ALIGN(q.h.nlmsg_len);
			memcpy(tail, d.v[i].zone, d.v[i].zone_len);
			q.h.nlmsg_len = (__u32)(NLMSG_ALIGN(q.h.nlmsg_len) + RTA_ALIGN(d.v[i].zone_len));
		}
		/* an entry that expired meanwhile is fine (ENOENT) */
		if (!nl_call(NETLINK_NETFILTER, &q.h, NULL, NULL))
			deleted++;
	}
	free(d.v);
	return deleted;
}

/* ---- events ----------------------------------------------------------------------------------- */

int dp_nl_events_open(void)
{
	static const unsigned groups[] = { RTNLGRP_LINK,       RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
					   RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE,  RTNLGRP_IPV4_RULE,
					   RTNLGRP_IPV6_RULE };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int rcvbuf = 4 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i], sizeof(groups[i]))) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

int dp_nl_events_read(int fd, uint64_t route_protos[4])
{
	char buf[16384] __attribute__((aligned(4)));
	int seen = 0;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *m;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOBUFS)
				return seen;
			/* events were lost: assume everything changed */
			seen |= DP_NL_EV_LINK | DP_NL_EV_ROUTE | DP_NL_EV_ADDR | DP_NL_EV_RULE;
			if (route_protos)
				memset(route_protos, 0xff, 4 * sizeof(uint64_t));
			continue;
		}
		if (n == 0)
			return seen;
		for (m = (struct nlmsghdr *)buf; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n)) {
			switch (m->nlmsg_type) {
			case RTM_NEWLINK:
			case RTM_DELLINK: seen |= DP_NL_EV_LINK; break;
			case RTM_NEWROUTE:
				if (route_protos && m->nlmsg_len >= NLMSG_LENGTH(sizeof(struct rtmsg))) {
					const struct rtmsg *rt = NLMSG_DATA(m);

					route_protos[rt->rtm_protocol / 64] |= 1ULL << (rt->rtm_protocol % 64);
				}
				seen |= DP_NL_EV_ROUTE;
				break;
			case RTM_DELROUTE: seen |= DP_NL_EV_ROUTE; break;
			case RTM_NEWADDR:
			case RTM_DELADDR: seen |= DP_NL_EV_ADDR; break;
			case RTM_NEWRULE:
			case RTM_DELRULE: seen |= DP_NL_EV_RULE; break;
			default: break;
			}
		}
	}
}
