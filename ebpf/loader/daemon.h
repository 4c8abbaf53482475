/* SPDX-License-Identifier: Apache-2.0 */
/* State of the running loader, shared by the reload loop and the metrics server. */
#ifndef DP_DAEMON_H
#define DP_DAEMON_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "dataplane.h"
#include "feeds.h"
#include "netlink.h"
#include "upstream.h"
#include "wan.h"

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
	uint64_t clean_reported[2]; /* last clean packets/bytes reported (the derived counter never goes back) */
	uint32_t clean_map_id;      /* dp_stats map those belong to */
	struct MHD_Daemon *httpd;
	struct dp_links links;                 /* the links as last listed */
	struct dp_link_res res[DP_MAX_IFACES]; /* what each [interface] of cfg resolved to */
	struct dp_wan_mgr wan;
	struct dp_feeds feeds;
	struct dp_upstream up; /* the guard's upstream entries as installed */
	double up_due;         /* mono time the upstream tables are to be brought in line (< 0: not pending) */
};

/* Renders the Prometheus text exposition of d (takes d->lock). Caller frees. */
char *dp_metrics_render(struct dp_daemon *d);

/* Starts the HTTP server for /metrics on the configured address and port (0 = none). */
int dp_metrics_start(struct dp_daemon *d, struct dp_err *err);
void dp_metrics_stop(struct dp_daemon *d);

#endif /* DP_DAEMON_H */
