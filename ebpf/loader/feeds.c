// SPDX-License-Identifier: Apache-2.0
#include "feeds.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "fetchrun.h"
#include "prefix.h"

static const char *const kind_name[] = { "block", "allow", "geo" };

int dp_feeds_init(struct dp_feeds *fs, struct dp_err *err)
{
	pthread_condattr_t ca;
	char exe[PATH_MAX];
	ssize_t n;

	memset(fs, 0, sizeof(*fs));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return dp_errf(err, "cannot find the loader's own executable: %s", strerror(errno));
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(fs->fetcher, sizeof(fs->fetcher), "%s/router-fetch", exe);
	pthread_mutex_init(&fs->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->cv, &ca);
	pthread_condattr_destroy(&ca);
	fs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fs->efd < 0)
		return dp_errf(err, "cannot create an eventfd: %s", strerror(errno));
	return 0;
}

/* Monotonic time at which a cache written at wall time mtime is refresh_ms old. */
static double due_from_mtime(double mtime, uint64_t refresh_ms)
{
	return dp_now_mono() + (mtime + refresh_ms / 1000.0 - dp_now_wall());
}

/*
 * Creates the fetcher's staging directory (or takes the existing one over): a real directory,
 * owned by the fetcher's uid/gid, mode 0700. Its parent is the loader's, so the fetcher cannot
 * swap it for a link. 0 or -1 with err.
 */
static int staging_dir(const char *path, struct dp_err *err)
{
	struct stat st;
	int fd;

	if (mkdir(path, 0700) && errno != EEXIST)
		return dp_errf(err, "cannot create %s: %s", path, strerror(errno));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return dp_errf(err, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) || ((st.st_uid != DP_FETCH_UID || st.st_gid != DP_FETCH_GID) &&
			       fchown(fd, DP_FETCH_UID, DP_FETCH_GID)) || ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700))) {
		close(fd);
		return dp_errf(err, "cannot give %s to uid %d: %s", path, DP_FETCH_UID, strerror(errno));
	}
	close(fd);
	return 0;
}

void dp_feeds_configure(struct dp_feeds *fs, const struct dp_config *cfg)
{
	struct dp_feed_state old[DP_MAX_FEEDS];
	int n_old;
	struct dp_err err = { "" };

	pthread_mutex_lock(&fs->mu);
	snprintf(fs->dir, sizeof(fs->dir), "%s/feeds", cfg->state_dir);
	snprintf(fs->staging, sizeof(fs->staging), "%s/staging", fs->dir);
	snprintf(fs->cfg_path, sizeof(fs->cfg_path), "%s", cfg->path);
	snprintf(fs->resolv_conf, sizeof(fs->resolv_conf), "%s", cfg->resolv_conf);
	fs->n_probes = 0;
	for (int w = 0; w < cfg->n_wans; w++)
		for (int p = 0; p < cfg->wans[w].n_probes; p++)
			snprintf(fs->probes[fs->n_probes++], sizeof(fs->probes[0]), "%s", cfg->wans[w].probes[p].text);
	fs->n_countries = cfg->geoip ? cfg->n_block_countries : 0;
	memcpy(fs->countries, cfg->block_countries, sizeof(fs->countries));
	if (cfg->n_feeds && (dp_mkdirs(fs->dir, &err) || staging_dir(fs->staging, &err)))
		dp_log("error", "feed", "%s", err.msg);
	memcpy(old, fs->f, sizeof(old));
	n_old = fs->n;
	fs->n = cfg->n_feeds;
	for (int i = 0; i < fs->n; i++) {
		struct dp_feed_state *f = &fs->f[i];
		const struct dp_feed_state *prev = NULL;
		struct stat st;

		for (int j = 0; j < n_old; j++)
			if (!strcmp(old[j].cfg.name, cfg->feeds[i].name))
				prev = &old[j];
		if (prev) {
			*f = *prev;
			if (strcmp(prev->cfg.url, cfg->feeds[i].url) || prev->cfg.kind != cfg->feeds[i].kind) {
				f->next_fetch = 0; /* another list now: fetch it at once */
				f->retry = 0;
			} else if (prev->cfg.refresh_ms != cfg->feeds[i].refresh_ms && f->last_success > 0) {
				f->next_fetch = due_from_mtime(f->last_success, cfg->feeds[i].refresh_ms);
			}
			f->cfg = cfg->feeds[i];
			continue;
		}
		memset(f, 0, sizeof(*f));
		f->cfg = cfg->feeds[i];
		dp_feed_path(cfg, &f->cfg, f->cache, sizeof(f->cache));
		snprintf(f->candidate, sizeof(f->candidate), "%s/.%s.new", fs->dir, f->cfg.name);
		/* a cache younger than refresh is not fetched again at start (list providers rate-limit) */
		if (!stat(f->cache, &st)) {
			f->last_success = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
			f->next_fetch = due_from_mtime(f->last_success, f->cfg.refresh_ms);
		}
	}
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
}

void dp_feeds_fetch_all(struct dp_feeds *fs)
{
	pthread_mutex_lock(&fs->mu);
	for (int i = 0; i < fs->n; i++) {
		fs->f[i].next_fetch = 0;
		fs->f[i].retry = 0;
	}
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
}

/* True when files a and b exist and hold the same bytes. */
static bool same_content(const char *a, const char *b)
{
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	bool same = fa && fb;
	char x[8192], y[8192];

	while (same) {
		size_t na = fread(x, 1, sizeof(x), fa), nb = fread(y, 1, sizeof(y), fb);

		same = na == nb && !memcmp(x, y, na);
		if (na < sizeof(x))
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Delay before the next attempt after a failure: 30 s doubling, never beyond refresh. */
static double next_retry(const struct dp_feed_state *f)
{
	double cap = f->cfg.refresh_ms / 1000.0;

	return fmin(f->retry ? f->retry * 2 : DP_FEED_RETRY_MIN_S, cap);
}

/* What one fetch needs of the feeds' state, copied under the lock. */
struct fetch_ctx {
	struct dp_feed_state snap;
	char dir[PATH_MAX + 16], staging[PATH_MAX + 32], fetcher[PATH_MAX + 16];
	char cfg_path[PATH_MAX], resolv_conf[PATH_MAX];
	dp_addr_text probes[DP_MAX_WANS * DP_MAX_PROBES];
	int n_probes;
	char countries[DP_MAX_COUNTRIES][3];
	int n_countries;
};

enum fetch_result {
	FETCH_FAILED,
	FETCH_UNCHANGED, /* the fetched list is the cache's */
	FETCH_CANDIDATE, /* a new list waits for the tables */
};

/*
 * Checks the fetcher's list with the loader's own table parser (feeds/.NAME.download) and, when it
 * differs from the cache, makes it the candidate. The fetcher has checked it already; a list it
 * passed that this parser refuses means the fetcher is broken or not ours.
 */
static enum fetch_result take_in(const struct fetch_ctx *x, const char *tmp, size_t *entries,
				 enum dp_fetch_reason *reason, char *why, size_t whylen)
{
	const struct dp_feed_state *f = &x->snap;
	struct dp_pfx_list l = { 0 };
	struct dp_err err = { "" };
	enum fetch_result r = FETCH_FAILED;

	*reason = DP_FR_MALFORMED;
	if (dp_table_file_load(tmp, f->cfg.kind == DP_FEED_GEO ? DP_TABLE_GEO : DP_TABLE_PREFIXES, &l, &err)) {
		/* the parser names the temporary file ("TMP:LINE: what"); the operator knows the feed by name */
		const char *at = strstr(err.msg, tmp);
		int line = 0;

		if (at && sscanf(at + strlen(tmp), ":%d:", &line) == 1) {
			const char *what = strchr(at + strlen(tmp) + 1, ':');

			snprintf(why, whylen, "the fetcher's list is malformed, line %d:%s", line, what ? what + 1 : "");
		} else {
			snprintf(why, whylen, "the fetcher's list is malformed: %s", err.msg);
		}
	} else if (l.n == 0) {
		*reason = DP_FR_EMPTY;
		snprintf(why, whylen, "the fetcher's list has no entries");
	} else if (same_content(tmp, f->cache)) {
		r = FETCH_UNCHANGED;
	} else if (rename(tmp, f->candidate)) {
		*reason = DP_FR_CACHE;
		snprintf(why, whylen, "cannot rename %s: %s", tmp, strerror(errno));
	} else {
		r = FETCH_CANDIDATE;
	}
	*entries = l.n;
	if (r != FETCH_CANDIDATE)
		unlink(tmp);
	dp_pfx_list_free(&l);
	return r;
}

/*
 * One attempt for the feed of x: the protected addresses (block lists, and geo lists while
 * countries are blocked), the fetcher, then the loader's own check of what it wrote.
 */
static enum fetch_result attempt(struct dp_feeds *fs, const struct fetch_ctx *x, size_t *entries,
				 enum dp_fetch_reason *reason, char *why, size_t whylen)
{
	const struct dp_feed *c = &x->snap.cfg;
	bool guarded = c->kind == DP_FEED_BLOCK || (c->kind == DP_FEED_GEO && x->n_countries > 0);
	static dp_addr_text protect[DP_FEED_MAX_PROTECT]; /* the worker is the only caller */
	struct dp_fetch_outcome o;
	struct dp_err err = { "" };
	char tmp[PATH_MAX + 128];
	int n = 0;

	if (guarded) {
		n = dp_protect_collect(x->resolv_conf, x->probes, x->n_probes, protect, DP_FEED_MAX_PROTECT, &err);
		if (n < 0) {
			*reason = DP_FR_LOCAL;
			snprintf(why, whylen, "nothing fetched, the addresses to protect are unknown: %s", err.msg);
			return FETCH_FAILED;
		}
	}
	dp_fetch_run(&(struct dp_fetch_job){ .fetcher = x->fetcher,
					     .staging = x->staging,
					     .name = c->name,
					     .url = c->url,
					     .kind = c->kind == DP_FEED_GEO ? "geo" : "cidr",
					     .timeout_ms = c->timeout_ms,
					     .min_entries = c->min_entries,
					     .protect = protect,
					     .n_protect = (size_t)n,
					     .protect_source = guarded,
					     .countries = (const char(*)[3])x->countries,
					     .n_countries = c->kind == DP_FEED_GEO ? (size_t)x->n_countries : 0,
					     .ca_file = getenv("CURL_CA_BUNDLE"),
					     .mu = &fs->mu,
					     .child = &fs->child },
		     &o);
	if (o.reason != DP_FR_NONE) {
		*reason = o.reason;
		snprintf(why, whylen, "%s", o.why);
		return FETCH_FAILED;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.download", x->dir, c->name);
	if (dp_fetch_import(x->staging, c->name, tmp, why, whylen)) {
		*reason = DP_FR_CACHE;
		return FETCH_FAILED;
	}
	return take_in(x, tmp, entries, reason, why, whylen);
}

/* Records the result of an attempt for the feed called name (the configuration may have changed meanwhile). */
static void record(struct dp_feeds *fs, const char *name, enum fetch_result r, enum dp_fetch_reason reason,
		   const char *why, size_t entries)
{
	for (int k = 0; k < fs->n; k++) {
		struct dp_feed_state *f = &fs->f[k];

		if (strcmp(f->cfg.name, name))
			continue;
		if (r == FETCH_UNCHANGED) {
			f->retry = 0;
			f->last_error[0] = '\0';
			f->last_success = dp_now_wall();
			f->next_fetch = dp_now_mono() + f->cfg.refresh_ms / 1000.0;
		} else if (r == FETCH_CANDIDATE) {
			f->pending = true;
			f->candidate_entries = entries;
			f->next_fetch = dp_now_mono() + f->cfg.refresh_ms / 1000.0;
		} else {
			f->failures++;
			f->fail_reason[reason]++;
			f->retry = next_retry(f);
			f->next_fetch = dp_now_mono() + f->retry;
			snprintf(f->last_error, sizeof(f->last_error), "%s", why);
		}
	}
}

/* Fetches feed i (called without the lock): a checked candidate, or a counted failure. */
static void fetch(struct dp_feeds *fs, int i)
{
	static struct fetch_ctx x; /* the worker is the only caller */
	char why[PATH_MAX + 1024] = "";
	enum dp_fetch_reason reason = DP_FR_NONE;
	enum fetch_result r;
	size_t entries = 0;
	bool stopping;

	pthread_mutex_lock(&fs->mu);
	x.snap = fs->f[i];
	fs->f[i].fetches++;
	snprintf(x.dir, sizeof(x.dir), "%s", fs->dir);
	snprintf(x.staging, sizeof(x.staging), "%s", fs->staging);
	snprintf(x.fetcher, sizeof(x.fetcher), "%s", fs->fetcher);
	snprintf(x.cfg_path, sizeof(x.cfg_path), "%s", fs->cfg_path);
	snprintf(x.resolv_conf, sizeof(x.resolv_conf), "%s", fs->resolv_conf);
	memcpy(x.probes, fs->probes, sizeof(x.probes));
	x.n_probes = fs->n_probes;
	memcpy(x.countries, fs->countries, sizeof(x.countries));
	x.n_countries = fs->n_countries;
	pthread_mutex_unlock(&fs->mu);
	r = attempt(fs, &x, &entries, &reason, why, sizeof(why));
	pthread_mutex_lock(&fs->mu);
	stopping = fs->stop; /* a fetcher killed because the loader stops is no failure of the feed */
	if (!stopping)
		record(fs, x.snap.cfg.name, r, reason, why, entries);
	pthread_mutex_unlock(&fs->mu);
	if (stopping) {
		if (r == FETCH_CANDIDATE)
			unlink(x.snap.candidate);
		return;
	}
	if (r == FETCH_UNCHANGED) {
		dp_log("info", "feed_unchanged", "[feed %s] %s: same list as the cache", x.snap.cfg.name, x.snap.cfg.url);
	} else if (r == FETCH_CANDIDATE) {
		uint64_t one = 1;

		dp_log("info", "feed_fetched", "[feed %s] %s: %zu entries, checking them with the tables", x.snap.cfg.name,
		       x.snap.cfg.url, entries);
		if (write(fs->efd, &one, sizeof(one)) != sizeof(one))
			dp_log("error", "feed", "cannot signal the main loop: %s", strerror(errno));
	} else {
		dp_log("error", "feed_failed", "%s:%d: [feed %s] %s: %s; the last good copy stays in use (reason %s)",
		       x.cfg_path, x.snap.cfg.line, x.snap.cfg.name, x.snap.cfg.url, why, dp_fetch_reason_names[reason]);
	}
}

/* Worker: sleeps until the next feed is due, fetches it, repeats until told to stop. */
static void *worker(void *arg)
{
	struct dp_feeds *fs = arg;

	pthread_mutex_lock(&fs->mu);
	while (!fs->stop) {
		int next = -1;
		double now = dp_now_mono();

		for (int i = 0; i < fs->n; i++)
			if (!fs->f[i].pending && (next < 0 || fs->f[i].next_fetch < fs->f[next].next_fetch))
				next = i;
		if (next >= 0 && fs->f[next].next_fetch <= now) {
			pthread_mutex_unlock(&fs->mu);
			fetch(fs, next);
			pthread_mutex_lock(&fs->mu);
			continue;
		}
		if (next < 0) {
			pthread_cond_wait(&fs->cv, &fs->mu);
		} else {
			struct timespec ts;
			double at = fs->f[next].next_fetch, whole;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			at = (double)ts.tv_sec + ts.tv_nsec / 1e9 + (at - now);
			ts.tv_nsec = (long)(modf(at, &whole) * 1e9);
			ts.tv_sec = (time_t)whole;
			pthread_cond_timedwait(&fs->cv, &fs->mu, &ts);
		}
	}
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

int dp_feeds_start(struct dp_feeds *fs, struct dp_err *err)
{
	if (fs->started)
		return 0;
	if (pthread_create(&fs->tid, NULL, worker, fs))
		return dp_errf(err, "cannot start the feed worker");
	fs->started = true;
	return 0;
}

int dp_feeds_candidates(struct dp_feeds *fs, const struct dp_config *cfg, char paths[][PATH_MAX + 96])
{
	uint64_t v;
	int n = 0;

	if (read(fs->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		dp_log("warn", "feed", "eventfd: %s", strerror(errno));
	pthread_mutex_lock(&fs->mu);
	for (int i = 0; i < cfg->n_feeds; i++) {
		paths[i][0] = '\0';
		for (int k = 0; k < fs->n; k++) {
			if (strcmp(fs->f[k].cfg.name, cfg->feeds[i].name) || !fs->f[k].pending)
				continue;
			snprintf(paths[i], PATH_MAX + 96, "%s", fs->f[k].candidate);
			n++;
		}
	}
	pthread_mutex_unlock(&fs->mu);
	return n;
}

/* fsyncs a directory so that a rename in it survives a power cut. */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

void dp_feeds_settle(struct dp_feeds *fs, bool ok, const char *why)
{
	bool renamed = false;

	pthread_mutex_lock(&fs->mu);
	for (int i = 0; i < fs->n; i++) {
		struct dp_feed_state *f = &fs->f[i];

		if (!f->pending)
			continue;
		f->pending = false;
		if (ok && !rename(f->candidate, f->cache)) {
			renamed = true;
			f->retry = 0;
			f->last_error[0] = '\0';
			dp_log("info", "feed_updated", "[feed %s] %s: %zu entries in use (cached as %s)", f->cfg.name,
			       kind_name[f->cfg.kind], f->candidate_entries, f->cache);
			continue;
		}
		unlink(f->candidate);
		f->failures++;
		f->fail_reason[ok ? DP_FR_CACHE : DP_FR_TABLES]++;
		f->retry = next_retry(f);
		f->next_fetch = dp_now_mono() + f->retry;
		snprintf(f->last_error, sizeof(f->last_error), "%s", ok ? strerror(errno) : why);
		dp_log("error", "feed_failed", "%s:%d: [feed %s] %s: rejected by the tables: %s; the last good copy stays "
		       "in use (reason %s)", fs->cfg_path, f->cfg.line, f->cfg.name, f->cfg.url, f->last_error,
		       dp_fetch_reason_names[ok ? DP_FR_CACHE : DP_FR_TABLES]);
	}
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	if (renamed)
		sync_dir(fs->dir);
}

void dp_feeds_in_use(struct dp_feeds *fs, const struct dp_config *cfg, const size_t *entries, const bool *used)
{
	pthread_mutex_lock(&fs->mu);
	for (int i = 0; i < cfg->n_feeds; i++) {
		for (int k = 0; k < fs->n; k++) {
			struct dp_feed_state *f = &fs->f[k];
			struct stat st;

			if (strcmp(f->cfg.name, cfg->feeds[i].name))
				continue;
			f->entries = used[i] ? entries[i] : 0;
			if (used[i] && !stat(f->cache, &st))
				f->last_success = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		}
	}
	pthread_mutex_unlock(&fs->mu);
}

void dp_feeds_metrics(struct dp_feeds *fs, void (*emit)(void *t, const char *fmt, ...), void *t)
{
	pthread_mutex_lock(&fs->mu);
	if (fs->n) {
		emit(t, "# HELP router_dataplane_feed_entries Entries of the feed's copy in use (0 = none yet).\n"
			"# TYPE router_dataplane_feed_entries gauge\n");
		for (int i = 0; i < fs->n; i++)
			emit(t, "router_dataplane_feed_entries{feed=\"%s\",kind=\"%s\"} %zu\n", fs->f[i].cfg.name,
			     kind_name[fs->f[i].cfg.kind], fs->f[i].entries);
		emit(t, "# HELP router_dataplane_feed_fetches_total Download attempts.\n"
			"# TYPE router_dataplane_feed_fetches_total counter\n");
		for (int i = 0; i < fs->n; i++)
			emit(t, "router_dataplane_feed_fetches_total{feed=\"%s\"} %llu\n", fs->f[i].cfg.name,
			     (unsigned long long)fs->f[i].fetches);
		emit(t, "# HELP router_dataplane_feed_fetch_failures_total Downloads that failed, were malformed or "
			"were rejected by the tables; the last good copy stayed.\n"
			"# TYPE router_dataplane_feed_fetch_failures_total counter\n");
		for (int i = 0; i < fs->n; i++)
			emit(t, "router_dataplane_feed_fetch_failures_total{feed=\"%s\"} %llu\n", fs->f[i].cfg.name,
			     (unsigned long long)fs->f[i].failures);
		emit(t, "# HELP router_dataplane_feed_failures_total Failed attempts by reason: download, malformed, "
			"empty, too_few_entries, default_route, protected, local (the fetcher), timeout, crashed, tables, "
			"cache.\n"
			"# TYPE router_dataplane_feed_failures_total counter\n");
		for (int i = 0; i < fs->n; i++)
			for (int r = 0; r < DP_FR_COUNT; r++)
				emit(t, "router_dataplane_feed_failures_total{feed=\"%s\",reason=\"%s\"} %llu\n",
				     fs->f[i].cfg.name, dp_fetch_reason_names[r], (unsigned long long)fs->f[i].fail_reason[r]);
		emit(t, "# HELP router_dataplane_feed_last_success_timestamp_seconds Unix time the copy in use was "
			"fetched (0 = never).\n"
			"# TYPE router_dataplane_feed_last_success_timestamp_seconds gauge\n");
		for (int i = 0; i < fs->n; i++)
			emit(t, "router_dataplane_feed_last_success_timestamp_seconds{feed=\"%s\"} %.3f\n", fs->f[i].cfg.name,
			     fs->f[i].entries ? fs->f[i].last_success : 0.0);
	}
	pthread_mutex_unlock(&fs->mu);
}

void dp_feeds_stop(struct dp_feeds *fs)
{
	if (!fs->started)
		return;
	pthread_mutex_lock(&fs->mu);
	fs->stop = true;
	if (fs->child > 0)
		kill(fs->child, SIGKILL); /* not reaped yet (the worker clears child first), so still ours */
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	pthread_join(fs->tid, NULL);
	fs->started = false;
}
