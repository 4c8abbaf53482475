/* SPDX-License-Identifier: Apache-2.0 */
/* State of the running loader, shared by the reload loop and the metrics server. */
#ifndef DP_DAEMON_H
#define DP_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "dataplane.h"
#include "feeds.h"
#include "idsblock.h"
#include "netlink.h"
#include "staleroutes.h"
#include "upstream.h"
#include "wan.h"

/* What the loader has put in place of the router's ruleset. */
enum dp_ruleset_state {
	DP_RULESET_NONE,     /* nothing: nftables not managed, or even the fallback was refused */
	DP_RULESET_APPLIED,  /* the configured ruleset (nft_ruleset) */
	DP_RULESET_FALLBACK, /* the built-in fail-closed ruleset: the configured one was refused */
};

/* Why the loader is degraded; each is a `reason` of router_dataplane_degraded and of /health. */
enum dp_degraded {
	DP_DEG_BPF,        /* the programs are not loaded: bpffs, verifier, tables at start */
	DP_DEG_ATTACH,     /* an interface whose link exists runs none of our programs */
	DP_DEG_LINK,       /* a configured interface has no link (missing, or an alias on several) */
	DP_DEG_RULESET,    /* the configured ruleset is not in: the fallback, or nothing at all */
	DP_DEG_FORWARDING, /* enable_forwarding, the ruleset is in, but forwarding could not be switched on */
	DP_DEG_MAX,
};

/* Attach operations on one configured interface since the start (router_dataplane_attach_*_total). */
struct dp_attach_count {
	char name[IFNAMSIZ]; /* the [interface] name ("" = free) */
	uint64_t attempts;   /* attaches tried: start, reloads, link changes, retries */
	uint64_t failures;   /* of those, the ones that left it running none of our programs */
};

struct dp_daemon {
	pthread_mutex_t lock; /* held while the instance, config or statistics change */
	struct dp_config cfg;
	struct dp_instance inst;
	struct dp_sources src;
	struct dp_table_sizes sizes;
	uint64_t seed;
	char *src_fingerprint; /* table files' identity (path, inode, size, mtime) */
	char *nft_applied;     /* text of the ruleset last applied */
	char *nft_link_error;  /* the last ruleset problem caused by the links (reported once) */
	double last_reload_ok; /* wall clock */
	double nft_last_ok;
	uint64_t reloads_ok;
	uint64_t fail_config, fail_tables, fail_nft;
	struct dp_stale_counts stale; /* the sweep of stale routing-daemon routes (staleroutes.h) */
	double stale_due;             /* mono time of the next sweep (< 0: none; no protocols listed) */
	uint64_t clean_reported[2]; /* last clean packets/bytes reported (the derived counter never goes back) */
	uint32_t clean_map_id;      /* dp_stats map those belong to */
	struct MHD_Daemon *httpd;
	struct dp_links links;                 /* the links as last listed */
	struct dp_link_res res[DP_MAX_IFACES]; /* what each [interface] of cfg resolved to */
	struct dp_wan_mgr wan;
	struct dp_feeds feeds;
	struct dp_upstream up; /* the guard's upstream entries as installed */
	double up_due;         /* mono time the upstream tables are to be brought in line (< 0: not pending) */
	struct dp_idsblock ids; /* the dynamic blocklist's intake ([dynamic_block]) */
	/* health: what is in force, and why something is not */
	enum dp_ruleset_state ruleset;
	char ruleset_sha256[65];                 /* of the configured ruleset file as applied ("" = none) */
	char ruleset_error[1024];                /* why the configured ruleset is not in */
	char bpf_error[1024];                    /* why the programs are not loaded ("" = they are) */
	struct dp_iface_attach att[DP_MAX_IFACES]; /* what runs on each [interface] of cfg */
	struct dp_attach_count attach_count[DP_MAX_IFACES];
	double attach_due;     /* mono time of the next attach retry (< 0: none pending) */
	double attach_backoff; /* seconds from that retry to the one after it */
	char forwarding_error[256];
};

/* The attach counters of interface name, taken (or a free or unconfigured entry reclaimed) when create. */
struct dp_attach_count *dp_attach_count_of(struct dp_daemon *d, const char *name, bool create);

/* Label of each dp_degraded reason. */
extern const char *const dp_degraded_label[DP_DEG_MAX];

/*
 * The reasons the loader is degraded now, as a bit mask of dp_degraded (d->lock held); msg[r]
 * (when msg is not NULL) receives what is wrong for each reason set.
 */
unsigned dp_degraded_now(const struct dp_daemon *d, char (*msg)[2048]);

/*
 * Renders /health (JSON, takes d->lock): status ok or degraded, the reasons, the ruleset in force
 * and its digest, the committed configuration's generation, forwarding as /proc has it, the last
 * successful reload, rejected reloads, and what runs on each interface. *healthy tells which.
 */
char *dp_health_render(struct dp_daemon *d, bool *healthy);

/* Renders the Prometheus text exposition of d (takes d->lock). Caller frees. */
char *dp_metrics_render(struct dp_daemon *d);

/* Starts the HTTP server for /metrics and /health on the configured address and port (0 = none). */
int dp_metrics_start(struct dp_daemon *d, struct dp_err *err);
void dp_metrics_stop(struct dp_daemon *d);

#endif /* DP_DAEMON_H */
