// SPDX-License-Identifier: Apache-2.0
/*
 * router-dataplane: loads the WAN guard (XDP) and segment QoS (tcx) programs, builds their tables
 * from the configured files, keeps them up to date (SIGHUP, file changes), loads the router's
 * nftables table, and serves Prometheus metrics.
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
		   "  --once           attach, load tables and ruleset, then exit (links stay pinned)\n"
		   "  --check          validate configuration, tables and ruleset, change nothing, exit\n");
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

/* Identity of every table file (path, inode, size, mtime) plus the settings that shape the tables. */
static char *fingerprint(const struct dp_config *c)
{
	char *const *lists[4] = { c->allow, c->block, c->geo, c->bogon_extra };
	int counts[4] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra };
	size_t cap = 256, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (int l = 0; l < 4; l++) {
		for (int i = 0; i < counts[l]; i++) {
			struct stat st;
			char row[4400];
			int n;

			if (stat(lists[l][i], &st))
				memset(&st, 0, sizeof(st));
			n = snprintf(row, sizeof(row), "%d|%s|%lu|%lu|%lld|%ld.%09ld\n", l, lists[l][i],
				     (unsigned long)st.st_dev, (unsigned long)st.st_ino, (long long)st.st_size,
				     (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			if (len + (size_t)n + 1 > cap) {
				char *ns;

				cap = (cap + (size_t)n) * 2;
				ns = realloc(s, cap);
				if (!ns) {
					free(s);
					return NULL;
				}
				s = ns;
			}
			memcpy(s + len, row, (size_t)n + 1);
			len += (size_t)n;
		}
	}
	return s;
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

/* Applies the nftables ruleset of cfg if it is new (or forced); counts a failure. */
static void nft_reload(struct dp_daemon *d, const struct dp_config *cfg, int force)
{
	struct dp_err err = { "" };
	char *text = NULL;

	if (!cfg->nft_ruleset[0])
		return;
	if (dp_nft_load(cfg->nft_ruleset, cfg->state_dir, false, &text, &err)) {
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
 * files or settings changed (or force); a new [ratelimit] slots value loads fresh programs and
 * moves the links over in place. Any failure leaves the running state untouched and is counted.
 */
static void reload(struct dp_daemon *d, const struct options *o, int force)
{
	struct dp_config cfg;
	struct dp_err err = { "" };
	struct dp_sources src = { 0 };
	struct dp_table_sizes sizes;
	struct dp_instance fresh;
	const char *why;
	char *fp;
	int tables_changed, nft_changed;
	double t0 = dp_now_mono();

	if (load_config(o, &cfg, &err)) {
		dp_log("error", "config_rejected", "%s; the running configuration stays active", err.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_config++;
		pthread_mutex_unlock(&d->lock);
		return;
	}
	why = restart_only_change(&d->cfg, &cfg);
	if (why) {
		dp_log("error", "config_rejected", "%s: %s changed, which needs a restart of the loader", cfg.path, why);
		pthread_mutex_lock(&d->lock);
		d->fail_config++;
		pthread_mutex_unlock(&d->lock);
		dp_config_free(&cfg);
		return;
	}
	fp = fingerprint(&cfg);
	tables_changed = force || !fp || !d->src_fingerprint || strcmp(fp, d->src_fingerprint) != 0;
	if (tables_changed && dp_sources_load(&cfg, &src, &err)) {
		dp_log("error", "tables_rejected", "%s; the running tables stay active", err.msg);
		pthread_mutex_lock(&d->lock);
		d->fail_tables++;
		pthread_mutex_unlock(&d->lock);
		free(fp);
		dp_config_free(&cfg);
		return;
	}

	if (cfg.slots != d->inst.slots) {
		/* new program sizes: a fresh instance, then the links switch to it atomically */
		const struct dp_sources *use = tables_changed ? &src : &d->src;
		char maps[4200];

		snprintf(maps, sizeof(maps), "%s/maps", cfg.pin_root);
		if (dp_instance_load(&fresh, &cfg, maps, &err) ||
		    dp_instance_publish(&fresh, &cfg, use, d->seed, &sizes, &err) ||
		    dp_instance_policies(&fresh, &cfg, &err) || dp_instance_attach(&fresh, &cfg, &err)) {
			if (fresh.wan)
				dp_instance_close(&fresh);
			dp_log("error", "reload_failed", "%s; the running programs stay active", err.msg);
			pthread_mutex_lock(&d->lock);
			d->fail_tables++;
			pthread_mutex_unlock(&d->lock);
			goto out;
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
				goto out;
			}
		} else {
			sizes = d->sizes;
		}
		if (dp_instance_policies(&d->inst, &cfg, &err) ||
		    ((force || ifaces_changed(&d->cfg, &cfg)) && dp_instance_attach(&d->inst, &cfg, &err))) {
			dp_log("error", "reload_failed", "%s", err.msg);
			pthread_mutex_lock(&d->lock);
			d->fail_config++;
			pthread_mutex_unlock(&d->lock);
			goto out;
		}
		pthread_mutex_lock(&d->lock);
	}
	/* committed: adopt the new configuration and sources (d->lock held) */
	if (tables_changed) {
		dp_sources_free(&d->src);
		d->src = src;
		memset(&src, 0, sizeof(src));
		free(d->src_fingerprint);
		d->src_fingerprint = fp;
		fp = NULL;
	}
	nft_changed = strcmp(cfg.nft_ruleset, d->cfg.nft_ruleset) != 0;
	dp_config_free(&d->cfg);
	d->cfg = cfg;
	memset(&cfg, 0, sizeof(cfg));
	d->sizes = sizes;
	d->reloads_ok++;
	d->last_reload_ok = dp_now_wall();
	pthread_mutex_unlock(&d->lock);
	dp_log("info", "reloaded", "configuration and tables active (%.3f s; block %zu+%zu, allow %zu+%zu, geo %zu+%zu)",
	       dp_now_mono() - t0, sizes.block4, sizes.block6, sizes.allow4, sizes.allow6, sizes.geo4, sizes.geo6);
	nft_reload(d, &d->cfg, force || nft_changed);
	free(fp);
	return;
out:
	free(fp);
	dp_sources_free(&src);
	dp_config_free(&cfg);
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

/* Event loop: signals (SIGHUP reloads, SIGTERM/SIGINT exit leaving the programs attached) and file changes (debounced reload). Returns the exit status. */
static int run(struct dp_daemon *d, const struct options *o)
{
	sigset_t mask;
	int sfd, ifd;
	int pending = 0;
	double due = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sfd < 0 || ifd < 0)
		return 1;
	watch_files(ifd, &d->cfg);
	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = ifd, .events = POLLIN } };
		int timeout = pending ? (int)((due - dp_now_mono()) * 1000) : -1;

		if (pending && timeout < 0)
			timeout = 0;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					dp_log("info", "sighup", "reloading everything");
					reload(d, o, 1);
					pending = 0;
					watch_files(ifd, &d->cfg);
				} else {
					dp_log("info", "exit", "signal %u: exiting; the programs stay attached", si.ssi_signo);
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
						due = dp_now_mono() + DEBOUNCE_MS / 1000.0;
					}
					q += sizeof(*ev) + ev->len;
				}
			}
		}
		if (pending && dp_now_mono() >= due) {
			pending = 0;
			dp_log("info", "file_changed", "reloading");
			reload(d, o, 0);
			watch_files(ifd, &d->cfg);
		}
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
	int rc = 1;

	if (load_config(o, &cfg, &err)) {
		dp_log("error", "check_failed", "%s", err.msg);
		return 2;
	}
	if (dp_sources_load(&cfg, &src, &err)) {
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
	if (cfg.nft_ruleset[0]) {
		char dir[] = "/tmp/router-dataplane-check.XXXXXX";
		char f1[64], f2[64];

		if (!mkdtemp(dir)) {
			dp_log("error", "check_failed", "cannot create a temporary directory: %s", strerror(errno));
			goto out;
		}
		if (dp_nft_load(cfg.nft_ruleset, dir, true, NULL, &err)) {
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
	dp_log("info", "check_ok", "%s: configuration, %zu table entries%s are valid", cfg.path,
	       src.allow.n + src.block.n + src.geo.n + src.bogon_extra.n, cfg.nft_ruleset[0] ? " and ruleset" : "");
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
	struct dp_err err = { "" };
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
	if (load_config(&o, &d->cfg, &err)) {
		dp_log("error", "config_rejected", "%s", err.msg);
		return 2;
	}
	if (dp_sources_load(&d->cfg, &d->src, &err)) {
		dp_log("error", "tables_rejected", "%s", err.msg);
		return 2;
	}
	d->src_fingerprint = fingerprint(&d->cfg);
	if (getrandom(&d->seed, sizeof(d->seed), 0) != sizeof(d->seed))
		d->seed = (uint64_t)dp_now_wall() * 0x9E3779B97F4A7C15ULL;
	if (dp_mkdirs(d->cfg.state_dir, &err) || dp_mkdirs(d->cfg.pin_root, &err) ||
	    dp_check_bpffs(d->cfg.pin_root, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		return 1;
	}
	if (d->cfg.nft_ruleset[0] && dp_nft_load(d->cfg.nft_ruleset, d->cfg.state_dir, true, NULL, &err)) {
		dp_log("error", "nft_rejected", "%s", err.msg);
		return 2;
	}
	snprintf(maps, sizeof(maps), "%s/maps", d->cfg.pin_root);
	if (dp_instance_load(&d->inst, &d->cfg, maps, &err) ||
	    dp_instance_publish(&d->inst, &d->cfg, &d->src, d->seed, &d->sizes, &err) ||
	    dp_instance_policies(&d->inst, &d->cfg, &err) || dp_instance_attach(&d->inst, &d->cfg, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		goto out;
	}
	d->reloads_ok = 1;
	d->last_reload_ok = dp_now_wall();
	dp_log("info", "started", "tables active (block %zu+%zu, allow %zu+%zu, geo %zu+%zu, bogons %zu+%zu)",
	       d->sizes.block4, d->sizes.block6, d->sizes.allow4, d->sizes.allow6, d->sizes.geo4, d->sizes.geo6,
	       d->sizes.bogon4, d->sizes.bogon6);
	nft_reload(d, &d->cfg, 1);
	if (d->cfg.nft_ruleset[0] && !d->nft_applied)
		goto out;
	if (o.once) {
		rc = 0;
		goto out;
	}
	if (dp_metrics_start(d, &err)) {
		dp_log("error", "start_failed", "%s", err.msg);
		goto out;
	}
	rc = run(d, &o);
	dp_metrics_stop(d);
out:
	dp_instance_close(&d->inst);
	dp_sources_free(&d->src);
	dp_config_free(&d->cfg);
	free(d->src_fingerprint);
	free(d->nft_applied);
	free(d);
	return rc;
}
