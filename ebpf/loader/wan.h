/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Multi-WAN: health probes, per-WAN routing tables, mark rules and failover ([wan NAME]).
 *
 * For each WAN the loader keeps table TABLE holding copies of the main table's default routes
 * through that WAN (both families, as networkd installs them), adds `fwmark MARK/0xf0 lookup
 * TABLE` rules (priority 1000 + index), and probes ICMP echo targets through the WAN (SO_MARK =
 * MARK, bound to the link). The active WAN is the healthy WAN with the lowest priority; while it
 * is not the preferred one (lowest priority of all), an override default route via the active WAN
 * with metric 1 sits in the main table. Everything it creates carries rtm_protocol DP_RTPROT; it
 * changes nothing else.
 */
#ifndef DP_WAN_H
#define DP_WAN_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dataplane.h"
#include "netlink.h"

#define DP_WAN_RULE_PRIO 1000 /* rule priority of the WAN with index i: DP_WAN_RULE_PRIO + i */
#define DP_WAN_OVERRIDE_METRIC 1

enum dp_wan_health {
	DP_WAN_UNKNOWN, /* no round finished yet */
	DP_WAN_UP,
	DP_WAN_DOWN,
};

struct dp_wan_run {
	struct dp_wan cfg;
	struct dp_link_res link;
	int sock[2];         /* raw ICMP (IPv4), ICMPv6 sockets; -1 when closed */
	int sock_ifindex;    /* link the sockets are bound to */
	uint16_t ident, seq;
	bool in_round;
	double round_start, round_end, next_round;
	bool answered[DP_MAX_PROBES];
	double round_rtt; /* fastest answer of the round in progress (s) */
	enum dp_wan_health state;
	uint32_t good, bad; /* consecutive good/failed rounds */
	int routes[2];      /* default routes through this WAN in the main table (IPv4, IPv6) */
	bool flush_pending; /* went down: flush its NATed connections once the routes have moved */
	/* metrics */
	double last_rtt; /* fastest answer of the last finished round; NAN when none answered */
	uint64_t probes, probe_failures, rounds, rounds_failed, ct_flushed;
};

struct dp_wan_mgr {
	pthread_mutex_t *lock; /* taken while fields the metrics read change */
	char cfg_path[4096];
	struct dp_wan_run w[DP_MAX_WANS];
	int n;
	int active;    /* index of the active WAN, -1 = none */
	bool decided;  /* every WAN has a first verdict: the override may change */
	bool chosen;   /* the first active WAN was chosen (later changes count as failovers) */
	bool health_changed;
	uint64_t failovers;
	bool dirty;    /* routes or rules need a reconcile */
	double reconcile_due;
	double last_reconcile;
	uint64_t reconcile_errors;
};

/* Starts empty (lock: the daemon lock the metrics take). */
void dp_wan_init(struct dp_wan_mgr *m, pthread_mutex_t *lock);

/*
 * Adopts the [wan] sections of cfg. WANs that keep their name keep their health; probe sockets
 * follow the links in links. Reconciles routes and rules at the next dp_wan_tick().
 */
void dp_wan_configure(struct dp_wan_mgr *m, const struct dp_config *cfg, const struct dp_links *links);

/* Links changed: re-resolves the WANs' links and rebinds their sockets. */
void dp_wan_links(struct dp_wan_mgr *m, const struct dp_links *links);

/* Routes, addresses or rules changed: reconcile soon (debounced). */
void dp_wan_routes_changed(struct dp_wan_mgr *m, double now);

/* Adds the probe sockets to p (at most max); returns how many. */
int dp_wan_pollfds(const struct dp_wan_mgr *m, struct pollfd *p, int max);

/* Reads the answers waiting on fd. */
void dp_wan_readable(struct dp_wan_mgr *m, int fd, double now);

/* Seconds until dp_wan_tick() has work (0 = now), or -1 when never. */
double dp_wan_timeout(const struct dp_wan_mgr *m, double now);

/* Starts and finishes probe rounds that are due, moves health and the active WAN, reconciles. */
void dp_wan_tick(struct dp_wan_mgr *m, double now);

/* Appends the WAN metrics (Prometheus text) via emit; caller holds the lock. */
void dp_wan_metrics(const struct dp_wan_mgr *m, void (*emit)(void *t, const char *fmt, ...), void *t);

/* Closes the sockets; routes and rules stay (the next loader takes them over). */
void dp_wan_close(struct dp_wan_mgr *m);

#endif /* DP_WAN_H */
