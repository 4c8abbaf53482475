/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The little of rtnetlink and ctnetlink the loader needs, on raw sockets: links (with their
 * ifalias, which Talos' LinkAliasConfig sets), addresses, routes, policy rules, and deleting
 * conntrack entries by their reply destination.
 */
#ifndef DP_NETLINK_H
#define DP_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * rtm_protocol / FRA_PROTOCOL of every route and rule the loader creates: it touches no other, with one
 * exception, the routes of the protocols [global] stale_route_protocols lists (staleroutes.h), which it
 * deletes and never creates.
 */
#define DP_RTPROT 201

#define DP_MAX_LINKS 512

struct dp_link {
	int ifindex;
	char name[IFNAMSIZ];
	char alias[64]; /* IFLA_IFALIAS, "" when none */
	unsigned flags; /* IFF_* */
	int master;     /* IFLA_MASTER: the bond (or bridge) this link is a port of, 0 = none */
};

struct dp_links {
	struct dp_link v[DP_MAX_LINKS];
	int n;
};

/* Lists the links of the current network namespace; 0 or -1 with err. */
int dp_links_dump(struct dp_links *out, struct dp_err *err);

/* Link by kernel name or ifindex, or NULL. */
const struct dp_link *dp_links_by_name(const struct dp_links *l, const char *name);
const struct dp_link *dp_links_by_index(const struct dp_links *l, int ifindex);

enum dp_resolve {
	DP_RESOLVED = 0,    /* *out set */
	DP_RES_MISSING = 1, /* no link has that name or ifalias */
	DP_RES_AMBIGUOUS,   /* several links carry the ifalias: why names them */
};

/*
 * Resolves a configured interface name: the link whose kernel name is name, else the one link
 * whose ifalias is name. On DP_RES_AMBIGUOUS why lists the candidates ("enp1s0 and enp2s0").
 */
enum dp_resolve dp_links_resolve(const struct dp_links *l, const char *name, const struct dp_link **out, char *why,
				 size_t whylen);

struct dp_route {
	int family; /* AF_INET or AF_INET6 */
	uint32_t table;
	uint8_t dst_len, protocol, type, scope;
	uint8_t tos;     /* rtm_tos (IPv4), as dumped */
	uint8_t nexthop; /* as dumped: 0 for a route's first (or only) nexthop, n for the n+1-th of a multipath one */
	uint8_t dst[16];
	uint8_t gw[16];
	bool has_gw;
	int oif;
	uint32_t metric;
	uint32_t flags; /* rtm_flags (RTNH_F_ONLINK, ...) */
};

/*
 * Lists the routes of family (AF_INET, AF_INET6) in table (0 = every table); multipath routes
 * become one entry per nexthop. Calls fn for each; 0 or -1 with err.
 */
int dp_routes_dump(int family, uint32_t table, void (*fn)(void *ctx, const struct dp_route *r), void *ctx,
		   struct dp_err *err);

/* Adds (replace = false: must not exist) or deletes a route; 0 or -errno. */
int dp_route_add(const struct dp_route *r);
int dp_route_del(const struct dp_route *r);

/*
 * Deletes the whole route a dump reported as r, every nexthop of it: matched on family, table,
 * destination, tos, protocol, metric and type, whatever its scope and nexthops (as `ip route del`
 * without a nexthop). 0 or -errno (-ESRCH: no such route, e.g. gone meanwhile).
 */
int dp_route_del_dumped(const struct dp_route *r);

struct dp_rule {
	int family;
	uint32_t priority;
	uint32_t fwmark, fwmask;
	uint32_t table;
	uint8_t protocol;
	uint8_t action; /* FR_ACT_* */
	bool has_other; /* matches on something besides fwmark (then it is not one of ours) */
};

/* Lists the policy rules of family; calls fn for each; 0 or -1 with err. */
int dp_rules_dump(int family, void (*fn)(void *ctx, const struct dp_rule *r), void *ctx, struct dp_err *err);
int dp_rule_add(const struct dp_rule *r);
int dp_rule_del(const struct dp_rule *r);

/* An address as rtnetlink reports it. */
struct dp_addr {
	int ifindex;
	int family;        /* AF_INET or AF_INET6 */
	uint8_t prefixlen;
	uint8_t scope;     /* RT_SCOPE_* */
	uint8_t local[16]; /* the link's own address (IFA_LOCAL, else IFA_ADDRESS) */
	uint8_t peer[16];  /* IFA_ADDRESS: the far end of a point-to-point link, else the same as local */
};

/* Lists the addresses of every link (both families); calls fn for each; 0 or -1 with err. */
int dp_addrs_dump(void (*fn)(void *ctx, const struct dp_addr *a), void *ctx, struct dp_err *err);

/* Addresses of ifindex (family 0 = both): up to max, returns the count (family in fam[]). */
int dp_addrs_of(int ifindex, uint8_t (*addrs)[16], int *fam, int max);

/*
 * Deletes every conntrack entry whose reply tuple's destination is one of addrs (the entries
 * source-NATed to those addresses). Returns the number deleted, or -1 with err.
 */
int dp_conntrack_flush_reply_dst(const uint8_t (*addrs)[16], const int *fam, int n, struct dp_err *err);

/* Netlink socket subscribed to link, address, route and rule changes (non-blocking), or -1. */
int dp_nl_events_open(void);

/*
 * Drains the event socket; returns a mask of DP_NL_EV_* seen (ENOBUFS reports everything). When
 * route_protos is not NULL, bit p of route_protos[p / 64] is set for every protocol p of a route
 * added or changed (all of them on ENOBUFS); the caller clears it.
 */
#define DP_NL_EV_LINK 1
#define DP_NL_EV_ROUTE 2
#define DP_NL_EV_ADDR 4
#define DP_NL_EV_RULE 8
int dp_nl_events_read(int fd, uint64_t route_protos[4]);

#endif /* DP_NETLINK_H */
