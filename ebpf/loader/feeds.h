/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Feeds ([feed NAME]): lists the router downloads and caches as state_dir/feeds/NAME.txt, so that
 * a router without internet still boots with the last good lists.
 *
 * The loader never talks to the list's server and never parses what it sent (DESIGN.md decision
 * 16). A worker thread runs router-fetch (the binary beside the loader's own) for each feed when it
 * is due: fork, and in the child, before exec, drop to uid/gid 65534 with no groups, every
 * capability set empty (bounding set included) and no_new_privs (dp_drop_privileges), with its
 * working directory state_dir/feeds/staging (the one directory that user owns; the fetcher
 * confines its writes to it) and the URL on stdin. The fetcher checks the list whole against the
 * protected addresses the worker passes (every default route's gateway, the nameservers of
 * resolv_conf, every WAN probe target, and the list's own server) and writes a canonical copy to
 * staging/NAME.txt; its last JSON line says what happened. The worker waits for it (killed
 * DP_FEED_KILL_GRACE_S after the feed's timeout), copies the canonical file (a regular file owned by
 * the fetcher's uid, opened without following links) into feeds/.NAME.download, and parses that
 * with its own strict table parser; a good list that differs from the cache becomes a candidate
 * (feeds/.NAME.new) and the main loop is told through an eventfd. The main loop reloads the tables
 * with the candidate in place of the cache; only when that works is the candidate renamed over the
 * cache (and the directory fsynced). Anything else leaves the cache as it was and counts a failure
 * with its reason (fetch.h); the feed is tried again with a backoff.
 *
 * The drop happens in the loader's child so that the fetcher never runs a single instruction as
 * root; router-fetch drops again by itself when someone starts it privileged (defence in depth).
 */
#ifndef DP_FEEDS_H
#define DP_FEEDS_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "fetch.h"

#define DP_FEED_RETRY_MIN_S 30.0 /* first retry after a failure, doubling up to refresh */

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
	uint64_t fail_reason[DP_FR_COUNT];
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
	char staging[PATH_MAX + 32]; /* dir/staging: owned by the fetcher's uid */
	char fetcher[PATH_MAX + 16]; /* router-fetch, beside the loader's executable */
	char cfg_path[PATH_MAX];     /* the configuration file, for messages */
	char resolv_conf[PATH_MAX];
	char probes[DP_MAX_WANS * DP_MAX_PROBES][46]; /* every WAN's probe targets */
	int n_probes;
	char countries[DP_MAX_COUNTRIES][3]; /* geo: the blocked countries (none when geoip is off) */
	int n_countries;
	pid_t child; /* the fetcher running now, 0 when none */
	struct dp_feed_state f[DP_MAX_FEEDS];
	int n;
};

/* Prepares the state (no thread yet) and finds router-fetch; 0 or -1 with err. */
int dp_feeds_init(struct dp_feeds *fs, struct dp_err *err);

/*
 * Adopts the [feed] sections of cfg: creates state_dir/feeds and its staging directory, takes the
 * probe targets, blocked countries and resolv_conf path, reads each cache's age, and schedules
 * fetches (now when there is no cache or it is older than refresh, else when it becomes so; a feed
 * whose URL changed is fetched now).
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

/* Stops the worker (a fetcher that runs is killed). */
void dp_feeds_stop(struct dp_feeds *fs);

#endif /* DP_FEEDS_H */
