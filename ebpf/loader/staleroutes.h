/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sweep of stale routing-daemon routes ([global] stale_route_protocols). A routing daemon that
 * stops leaves its routes in the kernel: BIRD's kernel protocol `persist`s them (protocol bird, 12),
 * the bird pod's start holds a previous pod's routes as protocol 249 (images/services/bird-start),
 * and FRR left protocol ospf (188). When the site no longer runs OSPF, the renderer lists those
 * protocols and the loader deletes their routes: once after the ruleset is in at the start, after
 * every committed reload, every DP_STALE_SWEEP_S, and soon after a route of a listed protocol is
 * added (a pod still terminating). Only the main tables (IPv4 and IPv6) are swept: BIRD's kernel
 * protocol and bird-start use the main table only, and the loader's per-WAN tables hold only its
 * own DP_RTPROT routes. This is the one place the loader deletes routes that are not its own.
 */
#ifndef DP_STALEROUTES_H
#define DP_STALEROUTES_H

#include <stdbool.h>
#include <stdint.h>

/* Seconds between two sweeps while protocols are listed: one route dump per family, no deletes when clean. */
#define DP_STALE_SWEEP_S 10.0
/* Seconds from a route of a listed protocol appearing to the sweep that removes it (a pod adds many at once). */
#define DP_STALE_EVENT_DELAY_S 0.5

struct dp_stale_counts {
	uint64_t removed;  /* routes deleted */
	uint64_t failures; /* route dumps or deletes that failed */
};

/*
 * Deletes every route of the main IPv4 and IPv6 tables whose protocol is one of protos[0..n-1]
 * (a multipath route as a whole), logging one line per route (prefix, nexthops, protocol,
 * metric). A route gone meanwhile is neither removed nor a failure. Failures are counted and
 * logged (at most one line a minute), never fatal. Adds to *c what it did.
 */
void dp_stale_routes_sweep(const uint8_t *protos, int n, struct dp_stale_counts *c);

/* True when the bitmap of route protocols seen (bit p of set[p / 64]) holds one of protos[0..n-1]. */
bool dp_stale_routes_seen(const uint64_t set[4], const uint8_t *protos, int n);

#endif /* DP_STALEROUTES_H */
