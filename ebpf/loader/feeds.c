// SPDX-License-Identifier: Apache-2.0
#include "feeds.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "prefix.h"

static const char *const kind_name[] = { "block", "allow", "geo" };

int dp_feeds_init(struct dp_feeds *fs, struct dp_err *err)
{
	pthread_condattr_t ca;

	memset(fs, 0, sizeof(*fs));
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

void dp_feeds_configure(struct dp_feeds *fs, const struct dp_config *cfg)
{
	struct dp_feed_state old[DP_MAX_FEEDS];
	int n_old;
	struct dp_err err = { "" };

	pthread_mutex_lock(&fs->mu);
	snprintf(fs->dir, sizeof(fs->dir), "%s/feeds", cfg->state_dir);
	snprintf(fs->cfg_path, sizeof(fs->cfg_path), "%s", cfg->path);
	if (cfg->n_feeds && dp_mkdirs(fs->dir, &err))
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

struct sink {
	FILE *f;
	size_t bytes;
	bool too_big;
};

/* libcurl write callback: into the temporary file, refusing more than DP_FEED_MAX_BYTES. */
static size_t write_cb(char *data, size_t size, size_t nmemb, void *user)
{
	struct sink *s = user;
	size_t n = size * nmemb;

	if (s->bytes + n > DP_FEED_MAX_BYTES) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	s->bytes += n;
	return fwrite(data, 1, n, s->f);
}

/*
 * Downloads url into path (HTTPS only, also after redirects; certificate and host verified; CA
 * bundle from CURL_CA_BUNDLE when set, else the system's) and fsyncs it. 0 or -1 with why.
 */
static int download(const char *url, const char *path, char *why, size_t whylen)
{
	struct sink s = { .f = fopen(path, "we") };
	char cerr[CURL_ERROR_SIZE] = "";
	const char *ca = getenv("CURL_CA_BUNDLE");
	CURL *c;
	CURLcode rc;
	long status = 0;

	if (!s.f) {
		snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	c = curl_easy_init();
	if (!c) {
		fclose(s.f);
		snprintf(why, whylen, "cannot initialise libcurl");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca && *ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)DP_FEED_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DP_FEED_MAX_BYTES);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "router-dataplane/0.1 (+feed fetcher)");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK && (fflush(s.f) || fsync(fileno(s.f)))) {
		fclose(s.f);
		snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	fclose(s.f);
	if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(why, whylen, "larger than %u MiB; refused", DP_FEED_MAX_BYTES >> 20);
		return -1;
	}
	if (rc != CURLE_OK) {
		if (rc == CURLE_HTTP_RETURNED_ERROR)
			snprintf(why, whylen, "HTTP status %ld", status);
		else
			snprintf(why, whylen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	return 0;
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

/* Fetches feed i (called without the lock): a checked candidate, or a counted failure. */
static void fetch(struct dp_feeds *fs, int i)
{
	struct dp_feed_state snap;
	char tmp[PATH_MAX + 128], why[PATH_MAX + 512];
	struct dp_pfx_list l = { 0 };
	struct dp_err err = { "" };
	bool ok = false, unchanged = false;

	pthread_mutex_lock(&fs->mu);
	snap = fs->f[i];
	fs->f[i].fetches++;
	pthread_mutex_unlock(&fs->mu);
	snprintf(tmp, sizeof(tmp), "%s/.%s.download", fs->dir, snap.cfg.name);
	if (download(snap.cfg.url, tmp, why, sizeof(why))) {
		unlink(tmp);
	} else if (dp_table_file_load(tmp, snap.cfg.kind == DP_FEED_GEO ? DP_TABLE_GEO : DP_TABLE_PREFIXES, &l, &err)) {
		/* the parser names the temporary file ("TMP:LINE: what"); the operator knows the feed by
		 * name and URL, so the message names those and the line of the download */
		const char *at = strstr(err.msg, tmp);
		int line = 0;

		if (at && sscanf(at + strlen(tmp), ":%d:", &line) == 1) {
			const char *what = strchr(at + strlen(tmp) + 1, ':');

			snprintf(why, sizeof(why), "malformed list, line %d:%s", line, what ? what + 1 : "");
		} else {
			snprintf(why, sizeof(why), "malformed list: %s", err.msg);
		}
		unlink(tmp);
	} else if (l.n == 0) {
		snprintf(why, sizeof(why), "the list has no entries (an empty download is not trusted)");
		unlink(tmp);
	} else if (same_content(tmp, snap.cache)) {
		unlink(tmp); /* unchanged: nothing to rebuild */
		unchanged = true;
	} else if (rename(tmp, snap.candidate)) {
		snprintf(why, sizeof(why), "cannot rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
	} else {
		ok = true;
	}
	pthread_mutex_lock(&fs->mu);
	/* the configuration may have changed meanwhile: find the feed again by name */
	for (int k = 0; k < fs->n; k++) {
		struct dp_feed_state *f = &fs->f[k];

		if (strcmp(f->cfg.name, snap.cfg.name))
			continue;
		if (unchanged) {
			f->retry = 0;
			f->last_error[0] = '\0';
			f->last_success = dp_now_wall();
			f->next_fetch = dp_now_mono() + f->cfg.refresh_ms / 1000.0;
		} else if (ok) {
			f->pending = true;
			f->candidate_entries = l.n;
			f->next_fetch = dp_now_mono() + f->cfg.refresh_ms / 1000.0;
		} else {
			f->failures++;
			f->retry = next_retry(f);
			f->next_fetch = dp_now_mono() + f->retry;
			snprintf(f->last_error, sizeof(f->last_error), "%s", why);
		}
	}
	pthread_mutex_unlock(&fs->mu);
	if (unchanged) {
		dp_log("info", "feed_unchanged", "[feed %s] %s: same list as the cache", snap.cfg.name, snap.cfg.url);
	} else if (ok) {
		uint64_t one = 1;

		dp_log("info", "feed_fetched", "[feed %s] %s: %zu entries, checking them with the tables", snap.cfg.name,
		       snap.cfg.url, l.n);
		if (write(fs->efd, &one, sizeof(one)) != sizeof(one))
			dp_log("error", "feed", "cannot signal the main loop: %s", strerror(errno));
	} else {
		dp_log("error", "feed_failed", "%s:%d: [feed %s] %s: %s; the last good copy stays in use", fs->cfg_path,
		       snap.cfg.line, snap.cfg.name, snap.cfg.url, why);
	}
	dp_pfx_list_free(&l);
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
		f->retry = next_retry(f);
		f->next_fetch = dp_now_mono() + f->retry;
		snprintf(f->last_error, sizeof(f->last_error), "%s", ok ? strerror(errno) : why);
		dp_log("error", "feed_failed", "%s:%d: [feed %s] %s: rejected by the tables: %s; the last good copy stays "
		       "in use", fs->cfg_path, f->cfg.line, f->cfg.name, f->cfg.url, f->last_error);
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
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
	pthread_join(fs->tid, NULL);
	fs->started = false;
}
