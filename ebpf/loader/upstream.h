/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The WAN guard's upstream table (dp_shared.h): what the bogon check lets through on each WAN link
 * because the network right above it uses bogon addresses — an ISP box or LTE modem handing out
 * 192.168.x by DHCP, a CGNAT uplink in 100.64.0.0/10, a ULA prefix from the upstream router.
 * Learnt from the kernel, never configured: a DHCP WAN's subnet is known only once it has a lease,
 * and it changes with the lease.
 */
#ifndef DP_UPSTREAM_H
#define DP_UPSTREAM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dataplane.h"

#define DP_UP_MAX 512 /* entries in all (several addresses and gateways per WAN, at most 15 WANs) */

struct dp_up_entry {
	int ifindex;      /* ingress link the entry is for: the WAN link, or a port of it when it is a bond */
	int family;       /* 4 or 6 */
	uint8_t len;      /* prefix length */
	uint8_t addr[16]; /* network order, host bits clear */
	int iface;        /* index of the [interface] section in the configuration */
};

struct dp_upstream {
	struct dp_up_entry v[DP_UP_MAX];
	int n;
	int dropped; /* entries beyond DP_UP_MAX, left out (their sources stay bogons) */
};

/*
 * Collects the upstream entries of every [interface] with role wan that resolved (res[i]): the
 * connected prefix of each of its addresses (for a point-to-point address the peer's, e.g. a PPP
 * peer /32), and the gateway of each default route through it in any table, as a /32 or /128 (a
 * gateway may lie outside the connected prefix: on-link /32 gateways). IPv6 link-local prefixes
 * and gateways are left out (fe80::/10 is never a bogon), so is a prefix of length 0 (an address
 * without a subnet would exempt every bogon). Each entry is listed for the link and for every
 * port of it (a bond's frames arrive on its ports). Sorted, without duplicates. 0, or -1 with err
 * when the kernel cannot be asked.
 */
int dp_upstream_collect(const struct dp_config *cfg, const struct dp_link_res *res, struct dp_upstream *out,
			struct dp_err *err);

/* True when a and b hold the same entries. */
bool dp_upstream_equal(const struct dp_upstream *a, const struct dp_upstream *b);

/* Number of distinct prefixes of family (4 or 6) listed for [interface] number iface. */
int dp_upstream_count(const struct dp_upstream *u, int iface, int family);

/* Writes the prefixes of [interface] number iface as "a/len, b/len" into buf ("none" when empty). */
void dp_upstream_text(const struct dp_upstream *u, int iface, char *buf, size_t len);

/*
 * Brings the guard's upstream tables in line with the kernel: collects the entries for cfg and
 * res, and when they differ from *cur (or force) installs them into inst, logs the prefixes per
 * WAN, and replaces *cur (under lock, which the metrics take). Returns 0, or -1 after logging when
 * the kernel could not be asked or the tables not be written (the old tables stay: retry later).
 */
int dp_upstream_sync(struct dp_upstream *cur, struct dp_instance *inst, const struct dp_config *cfg,
		     const struct dp_link_res *res, pthread_mutex_t *lock, bool force);

/* Appends the upstream and conntrack-reply metrics (Prometheus text) via emit; caller holds the lock. */
void dp_upstream_metrics(const struct dp_upstream *u, const struct dp_config *cfg, bool ct_replies,
			 void (*emit)(void *t, const char *fmt, ...), void *t);

#endif /* DP_UPSTREAM_H */
