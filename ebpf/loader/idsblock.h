/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dynamic blocklist's intake ([dynamic_block]): a unix datagram socket on which the IDS block
 * agent (images/ids/router-ids-block) names the sources of severe alerts, one request per datagram:
 *
 *   block ADDRESS [SID]
 *
 * Only datagrams the kernel reports (SCM_CREDENTIALS) as sent by agent_uid are taken; the socket is
 * owned by that uid with mode 0600. The agent decides nothing but which alert to pass on: the loader
 * checks each source against the sources never blocked — the protect files, the guard's allowlist
 * (files and feeds), and, read from the kernel and refreshed on route and address changes (at least
 * every 10 s), every default route's gateway, the nameservers of resolv_conf, the WAN probe targets
 * and the router's own addresses — and blocks it for the configured duration (dynblock.h: an IPv6
 * source's /64, a bounded table). When those live addresses cannot be read nothing is blocked.
 *
 * One log line per entry added and per entry removed; refusals and extensions are counted and
 * logged at most 10 lines a second. The sweep runs when the earliest entry expires, at most once a
 * second (the guard stops dropping at the expiry by itself; the sweep frees the slot and the /24).
 *
 * Everything runs in the loader's main loop, serialised with the table publishes (dynblock.h).
 */
#ifndef DP_IDSBLOCK_H
#define DP_IDSBLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dataplane.h"
#include "dynblock.h"
#include "prefix.h"

/* What became of a request: dp_dyn_result, then the intake's own refusals. */
enum dp_ids_result {
	DP_IDS_FOREIGN = DP_DYN_RESULTS, /* sent by another uid than the agent's */
	DP_IDS_MALFORMED,                /* not "block ADDRESS [SID]" */
	DP_IDS_RESULTS,
};

struct dp_idsblock {
	int fd;              /* the socket; -1: none */
	char path[108];      /* where it is bound (or was tried) */
	double socket_due;   /* mono time a socket that could not be bound is tried again */
	bool ready;          /* dyn is set up for the running programs */
	const void *owner;   /* the programs dyn belongs to (their skeleton) */
	struct dp_dynblock dyn;
	struct dp_pfx_list live; /* gateways, resolvers, probe targets, the router's addresses */
	bool live_ok;
	double live_due;     /* mono time to read them again */
	char live_error[512];
	double swept;        /* mono time of the last sweep */
	uint64_t requests[DP_IDS_RESULTS];
	uint64_t removed;    /* entries removed (expired, or blocking turned off) */
	double log_second;   /* the second the limited log lines count in */
	unsigned log_lines;
	uint64_t log_skipped;
};

/* Labels of the results (metrics). */
extern const char *const dp_ids_result_name[DP_IDS_RESULTS];

void dp_ids_init(struct dp_idsblock *b);

/*
 * Brings the intake in line with cfg and the running programs inst: binds, moves or closes the
 * socket; sets the dynamic blocklist up for inst (taking up the entries its tables hold) when the
 * programs are new, or clears and drops it when [dynamic_block] is gone. Failures are logged (the
 * loader runs on without blocking). Call with the lock not held.
 */
void dp_ids_sync(struct dp_idsblock *b, const struct dp_config *cfg, struct dp_instance *inst, pthread_mutex_t *lock);

/* New programs fresh are about to replace the running ones: they take over the blocks now in force. */
void dp_ids_carry(struct dp_idsblock *b, const struct dp_instance *fresh);

/* Reads the waiting requests (at most 256 at a time) and acts on them. */
void dp_ids_readable(struct dp_idsblock *b, const struct dp_config *cfg, const struct dp_sources *src,
		     pthread_mutex_t *lock);

/* Mono time of the next sweep, or -1 when none is due. */
double dp_ids_due(const struct dp_idsblock *b);

/* Sweeps when due (now: mono time). */
void dp_ids_tick(struct dp_idsblock *b, double now, pthread_mutex_t *lock);

/* Routes or addresses changed: the live addresses never blocked are read again before the next request. */
void dp_ids_routes_changed(struct dp_idsblock *b);

/* The intake's metrics (lock held by the caller). */
void dp_ids_metrics(const struct dp_idsblock *b, const struct dp_config *cfg,
		    void (*emit)(void *t, const char *fmt, ...), void *t);

/* Closes the socket (removing it) and frees the blocklist state; the guard's tables keep their entries. */
void dp_ids_close(struct dp_idsblock *b);

#endif /* DP_IDSBLOCK_H */
