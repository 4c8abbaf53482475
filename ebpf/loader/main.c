// SPDX-License-Identifier: Apache-2.0
/*
 * router-dataplane: loads the WAN guard (XDP) and segment QoS (tcx) programs, builds their tables
 * from the configured files and feeds, keeps them up to date (SIGHUP, file changes, feed
 * refreshes), follows the links (Talos aliases, renames, late links), runs the multi-WAN
 * failover, loads the router's nftables table, and serves Prometheus metrics.
 *
 *   router-dataplane --config FILE [--pin-root DIR] [--once] [--check]
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attach.h"
#include "daemon.h"
#include "nft.h"

#define DEBOUNCE_MS 300
#define LINK_DEBOUNCE_S 0.2

struct options {
	const char *config;
	const char *pin_root;
	int once;
	int check;
};

/* Prints the command line synopsis. */
static void usage(FILE *f)
{
	fprintf(f, "usage: router-dataplane --config FILE [--pin-root DIR] [--once] [--check]\n"
		   "  --config FILE    configuration (INI; see README)\n"
		   "  --pin-root DIR   override [global] pin_root\n"
		   "  --once           attach, load tables and ruleset, set up the WAN tables and rules, then exit\n"
		   "                   (links stay pinned)\n"
		   "  --check          validate configuration, tables, cached feeds and ruleset, change nothing, exit\n");
}

/* Routes libbpf's warnings and info into the JSON log; debug output is dropped. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	dp_log(level == LIBBPF_WARN ? "warn" : "info", "libbpf", "%s", msg);
	return 0;
}

/* Loads cfg (with the --pin-root override); 0 or -1 with err. */
static int load_config(const struct options *o, struct dp_config *cfg, struct dp_err *err)
{
	if (dp_config_load(o->config, cfg, err))
		return -1;
	if (o->pin_root)
		snprintf(cfg->pin_root, sizeof(cfg->pin_root), "%s", o->pin_root);
	return 0;
}

/* Appends the identity of path (device, inode, size, mtime) as a row of the fingerprint. */
static int fp_row(char **s, size_t *len, size_t *cap, int list, const char *path)
{
	struct stat st;
	char row[4400];
	int n;

	if (stat(path, &st))
		memset(&st, 0, sizeof(st));
	n = snprintf(row, sizeof(row), "%d|%s|%lu|%lu|%lld|%ld.%09ld\n", list, path, (unsigned long)st.st_dev,
		     (unsigned long)st.st_ino, (long long)st.st_size, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (*len + (size_t)n + 1 > *cap) {
		char *ns;

		*cap = (*cap + (size_t)n) * 2;
		ns = realloc(*s, *cap);
		if (!ns)
			return -1;
		*s = ns;
	}
	memcpy(*s + *len, row, (size_t)n + 1);
	*len += (size_t)n;
	return 0;
}

/* Identity of every table file and feed cache (path, inode, size, mtime). */
static char *fingerprint(const struct dp_config *c)
{
	char *const *lists[4] = { c->allow, c->block, c->geo, c->bogon_extra };
	int counts[4] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra };
	size_t cap = 256, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (int l = 0; l < 4; l++)
		for (int i = 0; i < counts[l]; i++)
			if (fp_row(&s, &len, &cap, l, lists[l][i]))
				goto oom;
	for (int i = 0; i < c->n_feeds; i++) {
		char path[PATH_MAX + 96];

		dp_feed_path(c, &c->feeds[i], path, sizeof(path));
		if (fp_row(&s, &len, &cap, 4 + (int)c->feeds[i].kind, path))
			goto oom;
	}
	return s;
oom:
	free(s);
	return NULL;
}

/* Fields a running loader cannot change without a restart. */
static const char *restart_only_change(const struct dp_config *a, const struct dp_config *b)
{
	if (strcmp(a->pin_root, b->pin_root))
		return "pin_root";
	if (strcmp(a->metrics_address, b->metrics_address) || a->metrics_port != b->metrics_port)
		return "metrics_address/metrics_port";
	if (strcmp(a->state_dir, b->state_dir))
		return "state_dir";
	return NULL;
}

/* True when the set of interfaces, their roles or XDP modes differ (links must be redone). */
static int ifaces_changed(const struct dp_config *a, const struct dp_config *b)
{
	if (a->n_ifaces != b->n_ifaces)
		return 1;
	for (int i = 0; i < a->n_ifaces; i++) {
		const struct dp_iface *x = &a->ifaces[i], *y = dp_config_iface(b, x->name);

		if (!y || x->role != y->role || x->xdp_generic != y->xdp_generic)
			return 1;
	}
	return 0;
}

/*
 * Resolves every [interface] of cfg against links into res; ambiguous aliases are appended to err
 * (file, line, candidates), missing links are logged once per change.
 */
static void resolve_ifaces(const struct dp_config *cfg, const struct dp_links *links, struct dp_link_res *res,
			   const struct dp_link_res *prev, struct dp_err *err)
{
	for (int i = 0; i < cfg->n_ifaces; i++) {
		const struct dp_iface *ifc = &cfg->ifaces[i];

		dp_link_resolve(links, ifc->name, cfg->path, ifc->line, "interface", &res[i], err);
		if (res[i].state == DP_RES_MISSING && (!prev || prev[i].state != DP_RES_MISSING))
			dp_log("warn", "link_missing",
			       "%s:%d: [interface %s]: no link has that name or alias yet; it is attached when it appears",
			       cfg->path, ifc->line, ifc->name);
	}
}

/* True when two resolutions of the same interface list differ. */
static int res_changed(const struct dp_link_res *a, const struct dp_link_res *b, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i].state != b[i].state || a[i].ifindex != b[i].ifindex || strcmp(a[i].kname, b[i].kname))
			return 1;
	return 0;
}

/* Applies the nftables ruleset of cfg (aliases resolved against links); counts a failure. */
static void nft_reload(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_links *links, int force)
{
	struct dp_err err = { "" };
	char *text = NULL;

	if (!cfg->nft_ruleset[0])
		return;
	if (dp_nft_load(cfg->nft_ruleset, cfg->state_dir, false, links, &text, &err)) {
		dp_log("error", "nft_rejected", "%s; the previous ruleset stays active", err.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_nft++;
		pthread_mutex_unlock(&d->lock);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (force || !d->nft_applied || strcmp(d->nft_applied, text) != 0)
		dp_log("info", "nft_applied", "%s: table inet router replaced", cfg->nft_ruleset);
	free(d->nft_applied);
	d->nft_applied = text;
	d->nft_last_ok = dp_now_wall();
	pthread_mutex_unlock(&d->lock);
}

/*
 * Re-reads the configuration and brings everything in line with it. Tables are rebuilt when their
 * files, feed caches or settings changed, when feed candidates are to be tried (cand), or on
 * force; a new [ratelimit] slots value loads fresh programs and moves the links over in place.
 * Any failure leaves the running state untouched and is counted. Returns whether the tables (and
 * so the candidates) were accepted.
 */
static bool reload(struct dp_daemon *d, const struct options *o, int force, const dp_feed_path_t *cand)
{
	struct dp_config cfg;
	struct dp_err err = { "" }, rerr = { "" };
	struct dp_sources src = { 0 };
	struct dp_table_sizes sizes;
	struct dp_instance fresh;
	struct dp_link_res res[DP_MAX_IFACES];
	static struct dp_links links;
	const char *why;
	char *fp = NULL;
	int tables_changed, nft_changed, relink;
	double t0 = dp_now_mono();

	if (load_config(o, &cfg, &err)) {
		dp_log("error", "config_rejected", "%s; the running configuration stays active", err.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_config++;
		pthread_mutex_unlock(&d->lock);
		return false;
	}
	why = restart_only_change(&d->cfg, &cfg);
	if (why) {
		dp_log("error", "config_rejected", "%s: %s changed, which needs a restart of the loader", cfg.path, why);
		pthread_mutex_lock(&d->lock);
		d->fail_config++;
		pthread_mutex_unlock(&d->lock);
		dp_config_free(&cfg);
		return false;
	}
	if (dp_links_dump(&links, &err)) {
		dp_log("error", "reload_failed", "%s", err.msg);
		dp_config_free(&cfg);
		return false;
	}
	resolve_ifaces(&cfg, &links, res, NULL, &rerr);
	if (rerr.msg[0]) {
		/* the ambiguous interfaces keep what runs on them; everything else goes ahead */
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_config++;
		pthread_mutex_unlock(&d->lock);
	}
	fp = fingerprint(&cfg);
	tables_changed = force || cand || !fp || !d->src_fingerprint || strcmp(fp, d->src_fingerprint) != 0;
	if (tables_changed && dp_sources_load(&cfg, cand, &src, &err)) {
		dp_log("error", "tables_rejected", "%s; the running tables stay active", err.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_tables++;
		pthread_mutex_unlock(&d->lock);
		free(fp);
		dp_config_free(&cfg);
		if (cand)
			dp_feeds_settle(&d->feeds, false, err.msg);
		return false;
	}
	relink = force || ifaces_changed(&d->cfg, &cfg) || cfg.n_ifaces != d->cfg.n_ifaces ||
		 res_changed(res, d->res, cfg.n_ifaces);

	if (cfg.slots != d->inst.slots) {
		/* new program sizes: a fresh instance, then the links switch to it atomically */
		const struct dp_sources *use = tables_changed ? &src : &d->src;
		char maps[4200];

		snprintf(maps, sizeof(maps), "%s/maps", cfg.pin_root);
		if (dp_instance_load(&fresh, &cfg, maps, &err) ||
		    dp_instance_publish(&fresh, &cfg, use, d->seed, &sizes, &err) ||
		    dp_instance_policies(&fresh, &cfg, res, &err) || dp_instance_attach(&fresh, &cfg, res, &err)) {
			if (fresh.wan)
				dp_instance_close(&fresh);
			dp_log("error", "reload_failed", "%s; the running programs stay active", err.msg);
			pthread_mutex_lock(&d->lock);
			d->fail_tables++;
			pthread_mutex_unlock(&d->lock);
			goto fail;
		}
		pthread_mutex_lock(&d->lock);
		dp_instance_close(&d->inst);
		d->inst = fresh;
	} else {
		if (tables_changed || memcmp(&cfg.syn, &d->cfg.syn, sizeof(cfg.syn)) ||
		    memcmp(&cfg.icmp, &d->cfg.icmp, sizeof(cfg.icmp)) || memcmp(&cfg.udp, &d->cfg.udp, sizeof(cfg.udp)) ||
		    cfg.bogons4 != d->cfg.bogons4 || cfg.bogons6 != d->cfg.bogons6 || cfg.blocklist != d->cfg.blocklist ||
		    cfg.geoip != d->cfg.geoip || cfg.ratelimit != d->cfg.ratelimit ||
		    cfg.n_block_countries != d->cfg.n_block_countries ||
		    memcmp(cfg.block_countries, d->cfg.block_countries, sizeof(cfg.block_countries))) {
			if (dp_instance_publish(&d->inst, &cfg, tables_changed ? &src : &d->src, d->seed, &sizes, &err)) {
				dp_log("error", "tables_rejected", "%s; the running tables stay active", err.msg);
				pthread_mutex_lock(&d->lock);
				d->fail_tables++;
				pthread_mutex_unlock(&d->lock);
				goto fail;
			}
		} else {
			sizes = d->sizes;
		}
		if (dp_instance_policies(&d->inst, &cfg, res, &err) ||
		    (relink && dp_instance_attach(&d->inst, &cfg, res, &err))) {
			dp_log("error", "reload_failed", "%s", err.msg);
			pthread_mutex_lock(&d->lock);
			d->fail_config++;
			pthread_mutex_unlock(&d->lock);
			goto fail;
		}
		pthread_mutex_lock(&d->lock);
	}
	/* committed: adopt the new configuration, sources and links (d->lock held) */
	if (tables_changed) {
		dp_sources_free(&d->src);
		d->src = src;
		memset(&src, 0, sizeof(src));
	}
	nft_changed = strcmp(cfg.nft_ruleset, d->cfg.nft_ruleset) != 0;
	dp_config_free(&d->cfg);
	d->cfg = cfg;
	memset(&cfg, 0, sizeof(cfg));
	memcpy(d->res, res, sizeof(res));
	d->links = links;
	d->sizes = sizes;
	d->reloads_ok++;
	d->last_reload_ok = dp_now_wall();
	pthread_mutex_unlock(&d->lock);
	if (cand)
		dp_feeds_settle(&d->feeds, true, NULL);
	/* identities after a candidate became the cache */
	free(d->src_fingerprint);
	d->src_fingerprint = fingerprint(&d->cfg);
	free(fp);
	dp_feeds_in_use(&d->feeds, &d->cfg, d->src.feed_entries, d->src.feed_used);
	dp_feeds_configure(&d->feeds, &d->cfg);
	dp_wan_configure(&d->wan, &d->cfg, &d->links);
	dp_log("info", "reloaded", "configuration and tables active (%.3f s; block %zu+%zu, allow %zu+%zu, geo %zu+%zu)",
	       dp_now_mono() - t0, sizes.block4, sizes.block6, sizes.allow4, sizes.allow6, sizes.geo4, sizes.geo6);
	nft_reload(d, &d->cfg, &d->links, force || nft_changed);
	return true;
fail:
	if (cand)
		dp_feeds_settle(&d->feeds, false, err.msg);
	free(fp);
	dp_sources_free(&src);
	dp_config_free(&cfg);
	return false;
}

/*
 * The links changed (a NIC renamed or aliased at boot, a link appearing late or going away):
 * resolves the configured names again, re-attaches where the resolution moved, points the WAN
 * probes at the new links, and re-applies the ruleset if its resolved defines changed.
 */
static void links_changed(struct dp_daemon *d)
{
	static struct dp_links links;
	struct dp_link_res res[DP_MAX_IFACES];
	struct dp_err err = { "" }, rerr = { "" };
	char *text = NULL;

	if (dp_links_dump(&links, &err)) {
		dp_log("error", "links", "%s", err.msg);
		return;
	}
	resolve_ifaces(&d->cfg, &links, res, d->res, &rerr);
	if (rerr.msg[0] && res_changed(res, d->res, d->cfg.n_ifaces))
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
	if (res_changed(res, d->res, d->cfg.n_ifaces)) {
		dp_log("info", "links_changed", "interfaces resolve differently now: attaching again");
		if (dp_instance_policies(&d->inst, &d->cfg, res, &err) || dp_instance_attach(&d->inst, &d->cfg, res, &err))
			dp_log("error", "attach_failed", "%s", err.msg);
	}
	pthread_mutex_lock(&d->lock);
	memcpy(d->res, res, sizeof(res));
	d->links = links;
	pthread_mutex_unlock(&d->lock);
	dp_wan_links(&d->wan, &d->links);
	if (d->cfg.nft_ruleset[0]) {
		FILE *f = fopen(d->cfg.nft_ruleset, "re");
		char *raw = NULL;
		size_t cap = 0;
		ssize_t n = f ? getdelim(&raw, &cap, '\0', f) : -1;

		if (f)
			fclose(f);
		if (n >= 0 && dp_nft_resolve_defines(d->cfg.nft_ruleset, raw, &d->links, &text, &err)) {
			/* e.g. an alias now on two links: rejected (once per distinct problem), the ruleset stays */
			if (!d->nft_link_error || strcmp(d->nft_link_error, err.msg)) {
				free(d->nft_link_error);
				d->nft_link_error = strdup(err.msg);
				nft_reload(d, &d->cfg, &d->links, 0);
			}
		} else if (n >= 0 && (!d->nft_applied || strcmp(text, d->nft_applied))) {
			dp_log("info", "links_changed", "%s: defines resolve to other links now", d->cfg.nft_ruleset);
			free(d->nft_link_error);
			d->nft_link_error = NULL;
			nft_reload(d, &d->cfg, &d->links, 0);
		}
		free(raw);
		free(text);
	}
}

/*
 * Adds watches for the directories of the config, table and ruleset files to the inotify fd. The
 * fd lives as long as the loader: changes made while a reload runs stay queued in it, and watching
 * a directory twice is a no-op.
 */
static void watch_files(int fd, const struct dp_config *c)
{
	char *const *lists[4] = { c->allow, c->block, c->geo, c->bogon_extra };
	int counts[4] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra };
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM;

	for (int l = -2; l < 4; l++) {
		int n = l < 0 ? 1 : counts[l];

		for (int i = 0; i < n; i++) {
			const char *path = l == -2 ? c->path : l == -1 ? c->nft_ruleset : lists[l][i];
			char dir[4096];

			if (!path[0])
				continue;
			snprintf(dir, sizeof(dir), "%s", path);
			if (inotify_add_watch(fd, dirname(dir), mask) < 0)
				dp_log("warn", "watch", "cannot watch %s: %s", dir, strerror(errno));
		}
	}
}

/* True when an inotify event names one of the configured files. */
static int is_ours(const struct dp_config *c, const char *name)
{
	char *const *lists[4] = { c->allow, c->block, c->geo, c->bogon_extra };
	int counts[4] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra };
	char buf[4096];

	if (!name || !*name)
		return 0;
	for (int l = -2; l < 4; l++) {
		int n = l < 0 ? 1 : counts[l];

		for (int i = 0; i < n; i++) {
			const char *path = l == -2 ? c->path : l == -1 ? c->nft_ruleset : lists[l][i];

			if (!path[0])
				continue;
			snprintf(buf, sizeof(buf), "%s", path);
			if (strcmp(basename(buf), name) == 0)
				return 1;
		}
	}
	return 0;
}

/* Milliseconds until mono time due (>= 0), folded into the poll timeout *t (-1 = none yet). */
static void fold_timeout(int *t, double due, double now)
{
	int ms = due <= now ? 0 : (int)((due - now) * 1000) + 1;

	if (*t < 0 || ms < *t)
		*t = ms;
}

/*
 * Event loop: signals (SIGHUP reloads everything and fetches the feeds, SIGTERM/SIGINT exit leaving
 * the programs attached), file changes (debounced reload), link/route changes (netlink), feed
 * candidates (eventfd), WAN probe answers and timers. Returns the exit status.
 */
static int run(struct dp_daemon *d, const struct options *o)
{
	sigset_t mask;
	int sfd, ifd, nlfd;
	int pending = 0;
	double due = 0, links_due = -1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	nlfd = dp_nl_events_open();
	if (sfd < 0 || ifd < 0)
		return 1;
	if (nlfd < 0)
		dp_log("error", "netlink", "cannot follow link and route changes: %s", strerror(errno));
	watch_files(ifd, &d->cfg);
	for (;;) {
		struct pollfd p[4 + 2 * DP_MAX_WANS];
		int np = 0, timeout = -1, wan0;
		double now = dp_now_mono(), wt;

		p[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = ifd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = nlfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = d->feeds.efd, .events = POLLIN };
		wan0 = np;
		np += dp_wan_pollfds(&d->wan, p + np, (int)(sizeof(p) / sizeof(p[0])) - np);
		if (pending)
			fold_timeout(&timeout, due, now);
		if (links_due >= 0)
			fold_timeout(&timeout, links_due, now);
		wt = dp_wan_timeout(&d->wan, now);
		if (wt >= 0)
			fold_timeout(&timeout, now + wt, now);
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			return 1;
		now = dp_now_mono();
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					dp_log("info", "sighup", "reloading everything and fetching the feeds");
					reload(d, o, 1, NULL);
					dp_feeds_fetch_all(&d->feeds);
					pending = 0;
					watch_files(ifd, &d->cfg);
				} else {
					dp_log("info", "exit", "signal %u: exiting; the programs, WAN tables and rules stay",
					       si.ssi_signo);
					return 0;
				}
			}
		}
		if (p[1].revents & POLLIN) {
			char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
			ssize_t n;

			while ((n = read(ifd, buf, sizeof(buf))) > 0) {
				for (char *q = buf; q < buf + n;) {
					struct inotify_event *ev = (struct inotify_event *)q;

					if (ev->len && is_ours(&d->cfg, ev->name)) {
						pending = 1;
						due = now + DEBOUNCE_MS / 1000.0;
					}
					q += sizeof(*ev) + ev->len;
				}
			}
		}
		if (nlfd >= 0 && (p[2].revents & POLLIN)) {
			int ev = dp_nl_events_read(nlfd);

			if ((ev & DP_NL_EV_LINK) && links_due < 0)
				links_due = now + LINK_DEBOUNCE_S;
			if (ev)
				dp_wan_routes_changed(&d->wan, now);
		}
		if (p[3].revents & POLLIN) {
			static dp_feed_path_t cand[DP_MAX_FEEDS];

			if (dp_feeds_candidates(&d->feeds, &d->cfg, cand) > 0) {
				dp_log("info", "feed_reload", "trying the new feed lists");
				reload(d, o, 0, cand);
			}
		}
		for (int i = wan0; i < np; i++)
			if (p[i].revents & POLLIN)
				dp_wan_readable(&d->wan, p[i].fd, now);
		if (pending && now >= due) {
			pending = 0;
			dp_log("info", "file_changed", "reloading");
			reload(d, o, 0, NULL);
			watch_files(ifd, &d->cfg);
		}
		if (links_due >= 0 && now >= links_due) {
			links_due = -1;
			links_changed(d);
		}
		dp_wan_tick(&d->wan, now);
	}
}

/* --check: everything start would validate, nothing applied. */
static int check(const struct options *o)
{
	struct dp_config cfg;
	struct dp_sources src;
	struct dp_table_input in;
	struct dp_built built;
	struct dp_err err = { "" };
	static struct dp_links links;
	bool have_links;
	size_t feeds = 0;
	int rc = 1;

	if (load_config(o, &cfg, &err)) {
		dp_log("error", "check_failed", "%s", err.msg);
		return 2;
	}
	if (dp_sources_load(&cfg, NULL, &src, &err)) {
		dp_log("error", "check_failed", "%s", err.msg);
		dp_config_free(&cfg);
		return 2;
	}
	dp_table_input_from(&cfg, &src, 0, &in);
	if (dp_tables_build(&in, &built, &err)) {
		dp_log("error", "check_failed", "%s", err.msg);
		goto out;
	}
	dp_built_free(&built);
	/* aliases are resolved against this host's links, as a start here would */
	have_links = !dp_links_dump(&links, &err);
	if (cfg.nft_ruleset[0]) {
		char dir[] = "/tmp/router-dataplane-check.XXXXXX";
		char f1[64], f2[64];

		if (!mkdtemp(dir)) {
			dp_log("error", "check_failed", "cannot create a temporary directory: %s", strerror(errno));
			goto out;
		}
		if (dp_nft_load(cfg.nft_ruleset, dir, true, have_links ? &links : NULL, NULL, &err)) {
			dp_log("error", "check_failed", "%s", err.msg);
		} else {
			rc = 0;
		}
		snprintf(f1, sizeof(f1), "%s/router.nft.loading", dir);
		snprintf(f2, sizeof(f2), "%s/router.nft.transaction", dir);
		unlink(f1);
		unlink(f2);
		rmdir(dir);
		if (rc)
			goto out;
	}
	rc = 0;
	for (int i = 0; i < cfg.n_feeds; i++)
		feeds += src.feed_used[i];
	dp_log("info", "check_ok", "%s: configuration, %zu table entries (%zu of %d feeds cached)%s are valid", cfg.path,
	       src.allow.n + src.block.n + src.geo.n + src.bogon_extra.n, feeds, cfg.n_feeds,
	       cfg.nft_ruleset[0] ? " and ruleset" : "");
out:
	dp_sources_free(&src);
	dp_config_free(&cfg);
	return rc ? 2 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "pin-root", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },         { "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct options o = { 0 };
	struct dp_daemon *d;
	struct dp_err err = { "" }, rerr = { "" };
	char maps[4200];
	sigset_t mask;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o.config = optarg; break;
		case 'p': o.pin_root = optarg; break;
		case 'o': o.once = 1; break;
		case 'k': o.check = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.config || optind != argc) {
		usage(stderr);
		return 2;
	}
	libbpf_set_print(libbpf_log);
	if (o.check)
		return check(&o);

	/* Signals are taken through a signalfd; block them before any thread starts. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	pthread_mutex_init(&d->lock, NULL);
	dp_wan_init(&d->wan, &d->lock);
	if (dp_feeds_init(&d->feeds, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		return 1;
	}
	if (load_config(&o, &d->cfg, &err)) {
		dp_log("error", "config_rejected", "%s", err.msg);
		return 2;
	}
	if (dp_mkdirs(d->cfg.state_dir, &err) || dp_mkdirs(d->cfg.pin_root, &err) ||
	    dp_check_bpffs(d->cfg.pin_root, &err) || dp_links_dump(&d->links, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		return 1;
	}
	resolve_ifaces(&d->cfg, &d->links, d->res, NULL, &rerr);
	if (rerr.msg[0]) {
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
		d->fail_config++;
	}
	/* cached feeds are used at once; their downloads run in the background after the start */
	dp_feeds_configure(&d->feeds, &d->cfg);
	if (dp_sources_load(&d->cfg, NULL, &d->src, &err)) {
		dp_log("error", "tables_rejected", "%s", err.msg);
		return 2;
	}
	d->src_fingerprint = fingerprint(&d->cfg);
	dp_feeds_in_use(&d->feeds, &d->cfg, d->src.feed_entries, d->src.feed_used);
	if (getrandom(&d->seed, sizeof(d->seed), 0) != sizeof(d->seed))
		d->seed = (uint64_t)dp_now_wall() * 0x9E3779B97F4A7C15ULL;
	if (d->cfg.nft_ruleset[0] && dp_nft_load(d->cfg.nft_ruleset, d->cfg.state_dir, true, &d->links, NULL, &err)) {
		dp_log("error", "nft_rejected", "%s", err.msg);
		return 2;
	}
	snprintf(maps, sizeof(maps), "%s/maps", d->cfg.pin_root);
	if (dp_instance_load(&d->inst, &d->cfg, maps, &err) ||
	    dp_instance_publish(&d->inst, &d->cfg, &d->src, d->seed, &d->sizes, &err) ||
	    dp_instance_policies(&d->inst, &d->cfg, d->res, &err) || dp_instance_attach(&d->inst, &d->cfg, d->res, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		goto out;
	}
	d->reloads_ok = 1;
	d->last_reload_ok = dp_now_wall();
	dp_log("info", "started", "tables active (block %zu+%zu, allow %zu+%zu, geo %zu+%zu, bogons %zu+%zu)",
	       d->sizes.block4, d->sizes.block6, d->sizes.allow4, d->sizes.allow6, d->sizes.geo4, d->sizes.geo6,
	       d->sizes.bogon4, d->sizes.bogon6);
	nft_reload(d, &d->cfg, &d->links, 1);
	if (d->cfg.nft_ruleset[0] && !d->nft_applied)
		goto out;
	dp_wan_configure(&d->wan, &d->cfg, &d->links);
	if (o.once) {
		/* tables and rules now; the override needs probe results, which a one-shot run has not */
		dp_wan_tick(&d->wan, dp_now_mono());
		rc = 0;
		goto out;
	}
	if (dp_metrics_start(d, &err) || dp_feeds_start(&d->feeds, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		goto out;
	}
	rc = run(d, &o);
	dp_metrics_stop(d);
	dp_feeds_stop(&d->feeds);
out:
	dp_wan_close(&d->wan);
	dp_instance_close(&d->inst);
	dp_sources_free(&d->src);
	dp_config_free(&d->cfg);
	free(d->src_fingerprint);
	free(d->nft_applied);
	free(d->nft_link_error);
	free(d);
	return rc;
}
