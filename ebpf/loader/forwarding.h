/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IP forwarding and the uplinks' router advertisements. Where the machine boots with forwarding off, the
 * loader switches it on only once its ruleset is in, so no packet is ever routed unfiltered.
 */
#ifndef DP_FORWARDING_H
#define DP_FORWARDING_H

#include <net/if.h>

#include "util.h"

/* Reads an integer sysctl file (e.g. /proc/sys/net/ipv4/ip_forward); -1 when absent or unreadable. */
int dp_sysctl_read(const char *path);

/* net.ipv4.ip_forward and net.ipv6.conf.all.forwarding as the kernel has them now (-1: absent). */
struct dp_forwarding {
	int ipv4, ipv6;
};
void dp_forwarding_read(struct dp_forwarding *f);

/*
 * Makes the uplink kname (of [wan NAME] wan, for the log) accept router advertisements while the
 * router forwards: accept_ra 2, written only when it is not 2 already. Logged either way; 0, or -1
 * when it could not be written (a link without IPv6 is fine: 0).
 */
int dp_uplink_accept_ra(const char *wan, const char *kname);

/* An uplink: its configured name and the kernel name it resolved to. */
struct dp_uplink {
	char name[IFNAMSIZ];
	char kname[IFNAMSIZ];
};

/*
 * Switches forwarding on: first accept_ra 2 on each uplink (kernel names) — writing 1 to
 * all.forwarding deletes every RA-learned default route of a link whose accept_ra is not 2, so the
 * WAN would lose its IPv6 default route — then net.ipv4.ip_forward and net.ipv6.conf.all.forwarding,
 * each only when it is not 1 already (a redundant write purges those routes too). Returns 1 when it
 * wrote something, 0 when forwarding was on already, -1 with err when a write failed.
 */
int dp_forwarding_enable(const struct dp_uplink *uplinks, int n, struct dp_err *err);

#endif /* DP_FORWARDING_H */
