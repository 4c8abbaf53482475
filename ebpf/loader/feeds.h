/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Feeds ([feed NAME]): lists the router fetches itself over HTTPS (libcurl, TLS verified, size
 * cap, timeout) and caches as state_dir/feeds/NAME.txt, so that a router without internet still
 * boots with the last good lists.
 *
 * A worker thread fetches each feed when due into a temporary file, fsyncs it and checks it with
 * the table-file parser; a good download becomes a candidate (feeds/.NAME.new) and the main loop
 * is told through an eventfd. The main loop reloads the tables with the candidate in place of the
 * cache; only when that works is the candidate renamed over the cache (and the directory
 * fsynced). A failed or malformed download, or one the tables reject, leaves the cache as it was
 * and counts a failure; the feed is tried again with a backoff.
 */
#ifndef DP_FEEDS_H
#define DP_FEEDS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define DP_FEED_MAX_BYTES (64u << 20)  /* a larger download is refused */
#define DP_FEED_TIMEOUT_S 120          /* whole transfer */
#define DP_FEED_RETRY_MIN_S 30.0       /* first retry after a failure, doubling up to refresh */

struct dp_feed_state {
	struct dp_feed cfg;
	char cache[PATH_MAX + 96];     /* state_dir/feeds/NAME.txt */
	char candidate[PATH_MAX + 96]; /* state_dir/feeds/.NAME.new while pending */
	bool pending;             /* a checked download waits for the main loop */
	size_t candidate_entries;
	double next_fetch; /* monotonic time */
	double retry;      /* s until the next attempt after a failure */
	/* metrics */
	uint64_t fetches, failures;
	double last_success; /* wall time of the copy in use (0 = none) */
	size_t entries;      /* entries of the copy in use */
	char last_error[PATH_MAX + 512];
};

struct dp_feeds {
	pthread_mutex_t mu; /* guards everything below; the metrics take it too */
	pthread_cond_t cv;
	pthread_t tid;
	bool started, stop, fetch_all;
	int efd; /* eventfd: readable when candidates are pending */
	char dir[PATH_MAX + 16];
	char cfg_path[PATH_MAX]; /* the configuration file, for messages */
	struct dp_feed_state f[DP_MAX_FEEDS];
	int n;
};

/* Prepares the state (no thread yet); 0 or -1 with err. */
int dp_feeds_init(struct dp_feeds *fs, struct dp_err *err);

/*
 * Adopts the [feed] sections of cfg: creates state_dir/feeds, reads each cache's age and entry
 * count, and schedules fetches (now when there is no cache or it is older than refresh, else
 * when it becomes so; a feed whose URL changed is fetched now).
 */
void dp_feeds_configure(struct dp_feeds *fs, const struct dp_config *cfg);

/* Starts the worker thread; 0 or -1 with err. */
int dp_feeds_start(struct dp_feeds *fs, struct dp_err *err);

/* Asks the worker to fetch every feed now (SIGHUP). */
void dp_feeds_fetch_all(struct dp_feeds *fs);

/*
 * Candidates the main loop should try: paths[i] is the candidate of cfg->feeds[i], or "" for its
 * cache. Returns how many candidates there are and clears the eventfd.
 */
int dp_feeds_candidates(struct dp_feeds *fs, const struct dp_config *cfg, char paths[][PATH_MAX + 96]);

/*
 * Commits (ok: renamed over the cache, directory fsynced) or discards the pending candidates
 * after the main loop's reload; why explains a rejection.
 */
void dp_feeds_settle(struct dp_feeds *fs, bool ok, const char *why);

/* Records what the tables in use hold of each feed of cfg (entries, or not used). */
void dp_feeds_in_use(struct dp_feeds *fs, const struct dp_config *cfg, const size_t *entries, const bool *used);

/* Appends the feed metrics; takes fs->mu. */
void dp_feeds_metrics(struct dp_feeds *fs, void (*emit)(void *t, const char *fmt, ...), void *t);

/* Stops the worker. */
void dp_feeds_stop(struct dp_feeds *fs);

#endif /* DP_FEEDS_H */
