/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running router-fetch for one feed (feeds.h describes the whole flow): the protected addresses it
 * is given, the unprivileged child it runs in, the outcome it reports, and taking its output in.
 */
#ifndef DP_FETCHRUN_H
#define DP_FETCHRUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fetch.h"
#include "util.h"

#define DP_FEED_KILL_GRACE_S 10.0 /* the fetcher is killed this long after its own timeout */
#define DP_FEED_MAX_PROTECT 128   /* protected addresses passed to the fetcher */

typedef char dp_addr_text[46];

/* One run of the fetcher. */
struct dp_fetch_job {
	const char *fetcher; /* router-fetch */
	const char *staging; /* its working directory; the output is staging/NAME.txt */
	const char *name;    /* the feed */
	const char *url;     /* passed on stdin, never on the command line */
	const char *kind;    /* cidr or geo */
	uint64_t timeout_ms;
	uint32_t min_entries;
	const dp_addr_text *protect; /* --protect */
	size_t n_protect;
	bool protect_source;
	const char (*countries)[3]; /* --block-country */
	size_t n_countries;
	const char *ca_file; /* --ca-file, or NULL */
	/* the running child is published in *child under *mu (0 once reaped), so a stop can kill it */
	pthread_mutex_t *mu;
	pid_t *child;
};

struct dp_fetch_outcome {
	enum dp_fetch_reason reason; /* DP_FR_NONE: staging/NAME.txt holds the list */
	char why[1024];
};

/*
 * Protected addresses: the gateway of every default route (any table, both families), the
 * nameservers of resolv_conf (a missing file has none) and probes. Up to max, duplicates removed.
 * Returns the count, or -1 with err when the routes or the file cannot be read (then nothing may
 * be fetched: a list could cut off what could not be listed).
 */
int dp_protect_collect(const char *resolv_conf, const dp_addr_text *probes, int n_probes, dp_addr_text *out,
		       size_t max, struct dp_err *err);

/*
 * Runs the fetcher for job as uid/gid DP_FETCH_UID/GID (see feeds.h) and waits for it, killing it
 * DP_FEED_KILL_GRACE_S after job->timeout_ms. Lines it logs before its outcome with level warn are
 * logged again, naming the feed.
 */
void dp_fetch_run(const struct dp_fetch_job *job, struct dp_fetch_outcome *out);

/*
 * Copies staging/NAME.txt to dst (created 0600): only a regular file with one link, owned by the
 * fetcher's uid, opened without following a link, at most 4 × the fetcher's size cap. dst is
 * fsynced. 0 or -1 with why.
 */
int dp_fetch_import(const char *staging, const char *name, const char *dst, char *why, size_t whylen);

#endif /* DP_FETCHRUN_H */
