// SPDX-License-Identifier: Apache-2.0
/*
 * router-dataplane: loads the WAN guard (XDP) and segment QoS (tcx) programs, builds their tables
 * from the configured files and feeds, keeps them up to date (SIGHUP, file changes, feed
 * refreshes), follows the links (Talos aliases, renames, late links), retries what could not be
 * loaded or attached on a timer, runs the multi-WAN failover, loads the router's nftables table,
 * and serves Prometheus metrics.
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
#include "forwarding.h"
#include "nft.h"

#define DEBOUNCE_MS 300
#define LINK_DEBOUNCE_S 0.2
#define UPSTREAM_DEBOUNCE_S 0.05
#define UPSTREAM_RETRY_S 1.0
#define METRICS_RETRY_S 5.0
/*
 * An interface that resolved but could not be attached (another XDP program holds it, the driver
 * refuses the mode, the link is not ready), or programs that could not be loaded (bpffs not there
 * yet), are tried again after ATTACH_RETRY_FIRST_S, the delay doubling up to ATTACH_RETRY_MAX_S. 5 s: what blocks an attach at boot (a link still being set
 * up, a tool that swaps its own program) clears within seconds, and an attempt costs a few
 * syscalls. 5 min: an operator's program that stays costs 12 quiet attempts an hour, and the guard
 * is back at most 5 min after it goes. Releasing a program's BPF link sends no netlink event, so
 * link changes alone (which retry at once) would not notice.
 */
#define ATTACH_RETRY_FIRST_S 5.0
#define ATTACH_RETRY_MAX_S 300.0

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
	char *const *lists[5] = { c->allow, c->block, c->geo, c->bogon_extra, c->dyn.protect };
	int counts[5] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra, c->dyn.n_protect };
	size_t cap = 256, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (int l = 0; l < 5; l++)
		for (int i = 0; i < counts[l]; i++)
			if (fp_row(&s, &len, &cap, l, lists[l][i]))
				goto oom;
	for (int i = 0; i < c->n_feeds; i++) {
		char path[PATH_MAX + 96];

		dp_feed_path(c, &c->feeds[i], path, sizeof(path));
		if (fp_row(&s, &len, &cap, 5 + (int)c->feeds[i].kind, path))
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

		if (!y || x->role != y->role || x->xdp_mode != y->xdp_mode)
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

/* Adds the uplinks of cfg ([wan] sections and role = wan interfaces) that resolve to a link, once each. */
static int uplinks_of(const struct dp_config *cfg, const struct dp_links *links, struct dp_uplink *up)
{
	int n = 0;

	for (int i = 0; i < cfg->n_wans + cfg->n_ifaces; i++) {
		const char *name = i < cfg->n_wans ? cfg->wans[i].name : cfg->ifaces[i - cfg->n_wans].name;
		const struct dp_link *l;
		char why[160];
		bool dup = false;

		if (i >= cfg->n_wans && cfg->ifaces[i - cfg->n_wans].role != DP_ROLE_WAN)
			continue;
		if (dp_links_resolve(links, name, &l, why, sizeof(why)) != DP_RESOLVED)
			continue;
		for (int j = 0; j < n; j++)
			dup |= strcmp(up[j].kname, l->name) == 0;
		if (dup)
			continue;
		snprintf(up[n].name, sizeof(up[n].name), "%s", name);
		snprintf(up[n].kname, sizeof(up[n].kname), "%s", l->name);
		n++;
	}
	return n;
}

/*
 * The configured ruleset is in: switches forwarding on when the configuration asks for it
 * (enable_forwarding), the uplinks' accept_ra first. Never before: where the machine boots with
 * forwarding off, nothing is routed until a ruleset of ours filters it.
 */
static void forwarding_on(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_links *links)
{
	struct dp_uplink up[DP_MAX_WANS + DP_MAX_IFACES];
	struct dp_err err = { "" };
	int rc;

	if (!cfg->enable_forwarding)
		return;
	rc = dp_forwarding_enable(up, uplinks_of(cfg, links, up), &err);
	pthread_mutex_lock(&d->lock);
	snprintf(d->forwarding_error, sizeof(d->forwarding_error), "%s", rc < 0 ? err.msg : "");
	pthread_mutex_unlock(&d->lock);
	if (rc < 0)
		dp_log("error", "forwarding_failed", "%s; the router does not route", err.msg);
	else if (rc > 0)
		dp_log("info", "forwarding_on",
		       "net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are 1: the ruleset is in, the router routes");
}

/*
 * The configured ruleset is not in and no ruleset of ours is: loads the built-in fail-closed one
 * (nft.h), which does not depend on the configured file. why says what happened to that file.
 */
static void nft_fallback(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_links *links, const char *why)
{
	struct dp_err err = { "" };
	int rc = dp_nft_fallback_load(cfg, links, false, &err);

	pthread_mutex_lock(&d->lock);
	snprintf(d->ruleset_error, sizeof(d->ruleset_error), "%s", why);
	if (!rc) {
		d->ruleset = DP_RULESET_FALLBACK;
		free(d->nft_applied);
		d->nft_applied = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	if (rc)
		dp_log("error", "nft_fallback_failed",
		       "%s; no ruleset of ours is in: forwarding is left as it is and Talos' ingress firewall is the only "
		       "filter",
		       err.msg);
	else
		dp_log("error", "ruleset_fallback",
		       "%s is not in force: the built-in fail-closed ruleset is (nothing forwarded but established "
		       "connections; management only from %s); a valid ruleset replaces it on reload",
		       cfg->nft_ruleset, cfg->has_management_links ? "management_links" : "links other than the uplinks");
}

/*
 * Applies the nftables ruleset of cfg (aliases resolved against links); counts a failure. A refused
 * ruleset leaves the previous one of ours in force; while there is none (the start), the built-in
 * fail-closed ruleset goes in instead. Forwarding comes on once the configured ruleset is in.
 */
static void nft_reload(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_links *links, int force)
{
	struct dp_err err = { "" };
	char *text = NULL, sha[65] = "";

	if (!cfg->nft_ruleset[0])
		return;
	if (dp_nft_load(cfg->nft_ruleset, cfg->state_dir, false, links, &text, sha, &err)) {
		pthread_mutex_lock(&d->lock);
		d->fail_nft++;
		pthread_mutex_unlock(&d->lock);
		if (d->ruleset == DP_RULESET_APPLIED) {
			dp_log("error", "nft_rejected", "%s; the previous ruleset stays active", err.msg);
			return;
		}
		dp_log("error", "nft_rejected", "%s", err.msg);
		nft_fallback(d, cfg, links, err.msg);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (force || !d->nft_applied || strcmp(d->nft_applied, text) != 0)
		dp_log("info", "nft_applied", "%s: table inet router replaced", cfg->nft_ruleset);
	free(d->nft_applied);
	d->nft_applied = text;
	d->nft_last_ok = dp_now_wall();
	d->ruleset = DP_RULESET_APPLIED;
	memcpy(d->ruleset_sha256, sha, sizeof(sha));
	d->ruleset_error[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	forwarding_on(d, cfg, links);
}

/* The programs could not be loaded: recorded for /health and the metrics, logged once per problem. */
static void bpf_failed(struct dp_daemon *d, const char *what, const char *msg)
{
	char why[sizeof(d->bpf_error)];

	snprintf(why, sizeof(why), "%s: %s", what, msg);
	if (strcmp(why, d->bpf_error))
		dp_log("error", "bpf_degraded",
		       "%s; running without (new) programs: the ruleset stays in force, pinned links of an earlier start "
		       "keep theirs; retried after %.0f s, the delay doubling up to %.0f s, and at once on reload, SIGHUP "
		       "and link changes (logged again only when the reason changes)",
		       why, ATTACH_RETRY_FIRST_S, ATTACH_RETRY_MAX_S);
	pthread_mutex_lock(&d->lock);
	memcpy(d->bpf_error, why, sizeof(why));
	pthread_mutex_unlock(&d->lock);
}

/*
 * Logs the interfaces an attach left without our programs, once per problem, and those it brought
 * back (compared with d->att, the state before), and counts the attempts: on every interface that
 * resolved, or, for a retry (what started it: "retry timer", "link change"; NULL for a full
 * attach), only on those that ran none of our programs before.
 */
static void attach_log(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_link_res *res,
		       const struct dp_iface_attach *st, const char *retry)
{
	for (int i = 0; i < cfg->n_ifaces; i++) {
		const struct dp_iface *old = dp_config_iface(&d->cfg, cfg->ifaces[i].name);
		const struct dp_iface_attach *was = old ? &d->att[old - d->cfg.ifaces] : NULL;
		struct dp_attach_count *c;

		if (res[i].state != DP_RESOLVED)
			continue; /* logged as link_missing or link_ambiguous */
		if (retry && (!was || was->attached != DP_ATTACHED_NONE))
			continue; /* not tried */
		pthread_mutex_lock(&d->lock);
		c = dp_attach_count_of(d, cfg->ifaces[i].name, true);
		if (c) {
			c->attempts++;
			c->failures += st[i].error[0] != '\0';
		}
		pthread_mutex_unlock(&d->lock);
		if (st[i].error[0] && (!was || strcmp(was->error, st[i].error)))
			dp_log("error", "bpf_degraded",
			       "%s; the interface runs none of our programs (the ruleset stays in force); retried after "
			       "%.0f s, the delay doubling up to %.0f s, and at once on reload, SIGHUP and link changes "
			       "(logged again only when the reason changes)",
			       st[i].error, ATTACH_RETRY_FIRST_S, ATTACH_RETRY_MAX_S);
		else if (!st[i].error[0] && was && was->error[0] && was->attached == DP_ATTACHED_NONE)
			dp_log("info", "attach_recovered", "%s: the programs run on it again (%s; %llu of %llu attempts failed)",
			       cfg->ifaces[i].name, retry ? retry : "attached again", c ? (unsigned long long)c->failures : 0ULL,
			       c ? (unsigned long long)c->attempts : 0ULL);
	}
}

/*
 * Loads the programs for cfg into *fresh, publishes the tables of src and writes the segment
 * policies (nothing attached yet); on failure nothing is kept and err says why.
 */
static int instance_fresh(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_sources *src,
			  const struct dp_link_res *res, struct dp_instance *fresh, struct dp_table_sizes *sizes,
			  struct dp_err *err)
{
	char maps[4200];

	memset(fresh, 0, sizeof(*fresh));
	snprintf(maps, sizeof(maps), "%s/maps", cfg->pin_root);
	if (dp_mkdirs(cfg->pin_root, err) || dp_check_bpffs(cfg->pin_root, err) ||
	    dp_instance_load(fresh, cfg, maps, err))
		return -1;
	if (dp_instance_publish(fresh, cfg, src, d->seed, sizes, err) || dp_instance_policies(fresh, cfg, res, err)) {
		dp_instance_close(fresh);
		return -1;
	}
	return 0;
}

/*
 * No programs run (the start, or an earlier failure): loads them for cfg and src and attaches
 * them. What fails is logged and reported (degraded), never fatal. st receives what runs on each
 * interface; returns whether the programs are loaded.
 */
static bool bpf_bring_up(struct dp_daemon *d, const struct dp_config *cfg, const struct dp_sources *src,
			 const struct dp_link_res *res, struct dp_iface_attach *st)
{
	struct dp_instance fresh;
	struct dp_table_sizes sizes;
	struct dp_err err = { "" };

	memset(st, 0, sizeof(*st) * DP_MAX_IFACES);
	if (instance_fresh(d, cfg, src, res, &fresh, &sizes, &err)) {
		bpf_failed(d, "the programs cannot be loaded", err.msg);
		return false;
	}
	/* the upstream before the guard is attached, so a restart never drops the upstream's traffic; a
	 * failure leaves its bogon sources dropped until a retry succeeds */
	d->up_due = dp_upstream_sync(&d->up, &fresh, cfg, res, &d->lock, true) ? dp_now_mono() + UPSTREAM_RETRY_S : -1;
	/* likewise the dynamic blocks the reused pinned tables hold (a restart): marked in the new programs'
	 * summary before a link moves to them, or their sources would pass until the main loop took them up */
	dp_ids_sync(&d->ids, cfg, &fresh, &d->lock);
	dp_instance_attach(&fresh, cfg, res, st, &err);
	attach_log(d, cfg, res, st, NULL);
	pthread_mutex_lock(&d->lock);
	d->inst = fresh;
	d->sizes = sizes;
	d->bpf_error[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	if (d->reloads_ok)
		dp_log("info", "bpf_recovered", "the programs are loaded (%zu+%zu blocklist entries)", sizes.block4,
		       sizes.block6);
	return true;
}

/* True when an interface that resolved to a link runs none of our programs. */
static bool some_unattached(const struct dp_daemon *d, const struct dp_link_res *res, int n)
{
	for (int i = 0; i < n; i++)
		if (res[i].state == DP_RESOLVED && d->att[i].attached == DP_ATTACHED_NONE)
			return true;
	return false;
}

/* Counts a rejected reload of kind (d->fail_config, fail_tables or fail_nft). */
static void count_failure(struct dp_daemon *d, uint64_t *kind)
{
	pthread_mutex_lock(&d->lock);
	(*kind)++;
	pthread_mutex_unlock(&d->lock);
}

/* A reload in progress: the new configuration, its links and tables, and what the programs did. */
struct reload_job {
	struct dp_config cfg;
	struct dp_sources src; /* parsed when tables_changed */
	struct dp_link_res res[DP_MAX_IFACES];
	struct dp_links links;
	struct dp_table_sizes sizes;
	struct dp_iface_attach st[DP_MAX_IFACES];
	bool attached; /* st is new */
	bool tables_changed, relink;
	char *fp;
	struct dp_err err; /* why the programs rejected the reload */
};

/*
 * Reads and checks the configuration, the links and (when they changed, cand, or force) the tables.
 * Returns false when the reload is rejected (counted; nothing changed and nothing is kept).
 */
static bool reload_read(struct dp_daemon *d, const struct options *o, int force, const dp_feed_path_t *cand,
			struct reload_job *j)
{
	struct dp_err err = { "" }, rerr = { "" };
	const char *why;

	if (load_config(o, &j->cfg, &err)) {
		dp_log("error", "config_rejected", "%s; the running configuration stays active", err.msg);
		count_failure(d, &d->fail_config);
		return false;
	}
	why = restart_only_change(&d->cfg, &j->cfg);
	if (why) {
		dp_log("error", "config_rejected", "%s: %s changed, which needs a restart of the loader", j->cfg.path, why);
		count_failure(d, &d->fail_config);
		dp_config_free(&j->cfg);
		return false;
	}
	if (dp_links_dump(&j->links, &err)) {
		dp_log("error", "reload_failed", "%s", err.msg);
		dp_config_free(&j->cfg);
		return false;
	}
	resolve_ifaces(&j->cfg, &j->links, j->res, NULL, &rerr);
	if (rerr.msg[0]) {
		/* the ambiguous interfaces keep what runs on them; everything else goes ahead */
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
		count_failure(d, &d->fail_config);
	}
	j->fp = fingerprint(&j->cfg);
	j->tables_changed = force || cand || !j->fp || !d->src_fingerprint || strcmp(j->fp, d->src_fingerprint) != 0;
	if (j->tables_changed && dp_sources_load(&j->cfg, cand, &j->src, &err)) {
		dp_log("error", "tables_rejected", "%s; the running tables stay active", err.msg);
		count_failure(d, &d->fail_tables);
		free(j->fp);
		dp_config_free(&j->cfg);
		if (cand)
			dp_feeds_settle(&d->feeds, false, err.msg);
		return false;
	}
	j->relink = force || ifaces_changed(&d->cfg, &j->cfg) || j->cfg.n_ifaces != d->cfg.n_ifaces ||
		    res_changed(j->res, d->res, j->cfg.n_ifaces) || some_unattached(d, j->res, j->cfg.n_ifaces);
	return true;
}

/* True when the guard's tables or settings differ between two configurations (or the files changed). */
static bool tables_differ(const struct dp_config *a, const struct dp_config *b, bool files_changed)
{
	return files_changed || memcmp(&a->syn, &b->syn, sizeof(a->syn)) || memcmp(&a->icmp, &b->icmp, sizeof(a->icmp)) ||
	       memcmp(&a->udp, &b->udp, sizeof(a->udp)) || a->bogons4 != b->bogons4 || a->bogons6 != b->bogons6 ||
	       a->blocklist != b->blocklist || a->geoip != b->geoip || a->ratelimit != b->ratelimit ||
	       a->n_block_countries != b->n_block_countries ||
	       memcmp(a->block_countries, b->block_countries, sizeof(a->block_countries));
}

/*
 * Brings the programs in line with the job's configuration. Without programs (degraded) they are
 * loaded anew, and a failure only keeps the loader degraded. With programs running, tables that
 * cannot be published or new programs that cannot be loaded reject the reload (false; the running
 * ones stay); an interface that cannot be attached leaves it degraded but does not reject it.
 */
static bool reload_bpf(struct dp_daemon *d, struct reload_job *j)
{
	const struct dp_sources *use = j->tables_changed ? &j->src : &d->src;
	struct dp_err *err = &j->err, aerr = { "" };
	struct dp_instance fresh;

	if (!d->inst.wan) {
		j->attached = bpf_bring_up(d, &j->cfg, use, j->res, j->st);
		j->sizes = d->sizes;
		return true;
	}
	if (j->cfg.slots != d->inst.slots || j->cfg.dyn.max_entries != d->inst.dyn_max) {
		/* new program or table sizes: a fresh instance, then the links switch to it atomically */
		bool loaded = !instance_fresh(d, &j->cfg, use, j->res, &fresh, &j->sizes, err);

		/* the new programs take over the upstream entries in force before any link moves to them */
		if (loaded && dp_instance_upstream(&fresh, &d->up, err)) {
			dp_instance_close(&fresh);
			loaded = false;
		}
		if (!loaded) {
			dp_log("error", "reload_failed", "%s; the running programs stay active", err->msg);
			count_failure(d, &d->fail_tables);
			return false;
		}
		/* the blocks in force before any link moves to the new programs: copied, then marked in their summary */
		dp_ids_carry(&d->ids, &fresh);
		dp_ids_sync(&d->ids, &j->cfg, &fresh, &d->lock);
		dp_instance_attach(&fresh, &j->cfg, j->res, j->st, &aerr);
		attach_log(d, &j->cfg, j->res, j->st, NULL);
		j->attached = true;
		pthread_mutex_lock(&d->lock);
		dp_instance_close(&d->inst);
		d->inst = fresh;
		pthread_mutex_unlock(&d->lock);
		return true;
	}
	j->sizes = d->sizes;
	if (tables_differ(&j->cfg, &d->cfg, j->tables_changed) &&
	    dp_instance_publish(&d->inst, &j->cfg, use, d->seed, &j->sizes, err)) {
		dp_log("error", "tables_rejected", "%s; the running tables stay active", err->msg);
		count_failure(d, &d->fail_tables);
		return false;
	}
	if (dp_instance_policies(&d->inst, &j->cfg, j->res, err)) {
		dp_log("error", "reload_failed", "%s", err->msg);
		count_failure(d, &d->fail_config);
		return false;
	}
	if (j->relink) {
		dp_instance_attach(&d->inst, &j->cfg, j->res, j->st, &aerr);
		attach_log(d, &j->cfg, j->res, j->st, NULL);
		j->attached = true;
	}
	return true;
}

/*
 * Sweeps the routes of the protocols cfg lists (staleroutes.h), adds what it did to the counters
 * (d->lock taken) and schedules the next periodic sweep; with none listed, no sweep is scheduled.
 */
static void stale_sweep(struct dp_daemon *d)
{
	struct dp_stale_counts c = { 0 };

	if (!d->cfg.n_stale_route_protocols) {
		d->stale_due = -1;
		return;
	}
	dp_stale_routes_sweep(d->cfg.stale_route_protocols, d->cfg.n_stale_route_protocols, &c);
	pthread_mutex_lock(&d->lock);
	d->stale.removed += c.removed;
	d->stale.failures += c.failures;
	pthread_mutex_unlock(&d->lock);
	d->stale_due = dp_now_mono() + DP_STALE_SWEEP_S;
}

/*
 * Re-reads the configuration and brings everything in line with it. Tables are rebuilt when their
 * files, feed caches or settings changed, when feed candidates are to be tried (cand), or on
 * force; a new [ratelimit] slots value loads fresh programs and moves the links over in place.
 * An invalid configuration or table leaves the running state untouched and is counted; programs
 * that cannot be loaded or attached leave the loader degraded, and the configuration and ruleset
 * are still committed. Returns whether the tables (and so the candidates) were accepted.
 */
static bool reload(struct dp_daemon *d, const struct options *o, int force, const dp_feed_path_t *cand)
{
	static struct reload_job j;
	bool nft_changed;
	double t0 = dp_now_mono();

	memset(&j, 0, sizeof(j));
	if (!reload_read(d, o, force, cand, &j))
		return false;
	if (!reload_bpf(d, &j)) {
		if (cand)
			dp_feeds_settle(&d->feeds, false, j.err.msg);
		free(j.fp);
		dp_sources_free(&j.src);
		dp_config_free(&j.cfg);
		return false;
	}
	/* committed: adopt the new configuration, sources and links */
	pthread_mutex_lock(&d->lock);
	if (j.tables_changed) {
		dp_sources_free(&d->src);
		d->src = j.src;
		memset(&j.src, 0, sizeof(j.src));
	}
	nft_changed = strcmp(j.cfg.nft_ruleset, d->cfg.nft_ruleset) != 0;
	dp_config_free(&d->cfg);
	d->cfg = j.cfg;
	memset(&j.cfg, 0, sizeof(j.cfg));
	memcpy(d->res, j.res, sizeof(j.res));
	if (j.attached || !d->inst.wan)
		memcpy(d->att, j.st, sizeof(j.st));
	d->links = j.links;
	d->sizes = j.sizes;
	d->reloads_ok++;
	d->last_reload_ok = dp_now_wall();
	pthread_mutex_unlock(&d->lock);
	if (cand)
		dp_feeds_settle(&d->feeds, true, NULL);
	/* identities after a candidate became the cache */
	free(d->src_fingerprint);
	d->src_fingerprint = fingerprint(&d->cfg);
	free(j.fp);
	dp_feeds_in_use(&d->feeds, &d->cfg, d->src.feed_entries, d->src.feed_used);
	dp_feeds_configure(&d->feeds, &d->cfg);
	dp_wan_configure(&d->wan, &d->cfg, &d->links);
	d->up_due = 0; /* the WAN interfaces may have changed */
	dp_log("info", "reloaded", "configuration and tables active (%.3f s; block %zu+%zu, allow %zu+%zu, geo %zu+%zu)",
	       dp_now_mono() - t0, j.sizes.block4, j.sizes.block6, j.sizes.allow4, j.sizes.allow6, j.sizes.geo4,
	       j.sizes.geo6);
	nft_reload(d, &d->cfg, &d->links, force || nft_changed);
	stale_sweep(d);
	return true;
}

/*
 * The links changed (a NIC renamed or aliased at boot, a link appearing late or going away):
 * resolves the configured names again, re-attaches where the resolution moved, points the WAN
 * probes at the new links, and re-applies the ruleset if its resolved defines or the addresses
 * of its wan_addr4_ sets changed (also called when addresses change).
 */
static void links_changed(struct dp_daemon *d)
{
	static struct dp_links links;
	struct dp_link_res res[DP_MAX_IFACES];
	struct dp_iface_attach st[DP_MAX_IFACES];
	struct dp_err err = { "" }, rerr = { "" };
	bool attached = false, moved;
	char *text = NULL;

	if (dp_links_dump(&links, &err)) {
		dp_log("error", "links", "%s", err.msg);
		return;
	}
	resolve_ifaces(&d->cfg, &links, res, d->res, &rerr);
	moved = res_changed(res, d->res, d->cfg.n_ifaces);
	if (rerr.msg[0] && moved)
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
	memset(st, 0, sizeof(st));
	if (!d->inst.wan && d->src_fingerprint) {
		/* degraded: the programs could not be loaded; a link change may be what they needed */
		attached = bpf_bring_up(d, &d->cfg, &d->src, res, st);
	} else if (d->inst.wan && moved) {
		dp_log("info", "links_changed", "interfaces resolve differently now: attaching again");
		if (dp_instance_policies(&d->inst, &d->cfg, res, &err))
			dp_log("error", "attach_failed", "%s", err.msg);
		dp_instance_attach(&d->inst, &d->cfg, res, st, &err);
		attach_log(d, &d->cfg, res, st, NULL);
		attached = true;
	} else if (d->inst.wan && some_unattached(d, res, d->cfg.n_ifaces)) {
		/* the same links: only those running none of ours are tried again, logged when the outcome changes
		 * (address events come often; the attached interfaces are left alone) */
		memcpy(st, d->att, sizeof(st));
		dp_instance_reattach(&d->inst, &d->cfg, res, st);
		attach_log(d, &d->cfg, res, st, "link change");
		attached = true;
	}
	pthread_mutex_lock(&d->lock);
	memcpy(d->res, res, sizeof(res));
	if (attached)
		memcpy(d->att, st, sizeof(st));
	d->links = links;
	pthread_mutex_unlock(&d->lock);
	dp_wan_links(&d->wan, &d->links);
	d->up_due = 0;
	if (d->cfg.nft_ruleset[0]) {
		FILE *f = fopen(d->cfg.nft_ruleset, "re");
		char *raw = NULL;
		size_t cap = 0;
		ssize_t n = f ? getdelim(&raw, &cap, '\0', f) : -1;

		if (f)
			fclose(f);
		if (n >= 0 && (dp_nft_resolve_defines(d->cfg.nft_ruleset, raw, &d->links, &text, &err) ||
			       dp_nft_wan_addresses(d->cfg.nft_ruleset, &text, &d->links, &err))) {
			/* e.g. an alias now on two links: rejected (once per distinct problem), the ruleset stays */
			if (!d->nft_link_error || strcmp(d->nft_link_error, err.msg)) {
				free(d->nft_link_error);
				d->nft_link_error = strdup(err.msg);
				nft_reload(d, &d->cfg, &d->links, 0);
			}
		} else if (n >= 0 && d->ruleset != DP_RULESET_APPLIED && moved) {
			/* the fallback names the uplinks and management links: try the ruleset again, else refresh it */
			nft_reload(d, &d->cfg, &d->links, 0);
		} else if (n >= 0 && d->ruleset == DP_RULESET_APPLIED && (!d->nft_applied || strcmp(text, d->nft_applied))) {
			dp_log("info", "links_changed", "%s: defines resolve to other links or WAN addresses changed",
			       d->cfg.nft_ruleset);
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
	char *const *lists[5] = { c->allow, c->block, c->geo, c->bogon_extra, c->dyn.protect };
	int counts[5] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra, c->dyn.n_protect };
	const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM;

	for (int l = -2; l < 5; l++) {
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
	char *const *lists[5] = { c->allow, c->block, c->geo, c->bogon_extra, c->dyn.protect };
	int counts[5] = { c->n_allow, c->n_block, c->n_geo, c->n_bogon_extra, c->dyn.n_protect };
	char buf[4096];

	if (!name || !*name)
		return 0;
	for (int l = -2; l < 5; l++) {
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

/* Drains the inotify fd; true when an event names one of the configured files. */
static bool file_events(int ifd, const struct dp_config *cfg)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;

			ours |= ev->len && is_ours(cfg, ev->name);
			q += sizeof(*ev) + ev->len;
		}
	}
	return ours;
}

/*
 * What the retry timer has to do: true while an interface that resolved runs none of our programs,
 * or while the programs themselves are not loaded although the tables are (bpffs mounted late,
 * a verifier or capability problem).
 */
static bool retry_needed(const struct dp_daemon *d)
{
	return d->inst.wan ? some_unattached(d, d->res, d->cfg.n_ifaces) : d->src_fingerprint != NULL;
}

/*
 * The retry timer (see ATTACH_RETRY_FIRST_S): while retry_needed, when d->attach_due has come,
 * attaches the interfaces that run none of our programs again (the others are left as they are),
 * or loads and attaches the programs when they are not loaded, then doubles the delay up to
 * ATTACH_RETRY_MAX_S; once nothing is left to do, the timer stops and the delay starts over.
 */
static void attach_retry(struct dp_daemon *d, double now)
{
	static struct dp_iface_attach st[DP_MAX_IFACES];
	bool attached = true;

	if (!retry_needed(d)) {
		d->attach_due = -1;
		d->attach_backoff = ATTACH_RETRY_FIRST_S;
		return;
	}
	if (d->attach_due < 0) {
		d->attach_due = now + d->attach_backoff;
		return;
	}
	if (now < d->attach_due)
		return;
	if (d->inst.wan) {
		memcpy(st, d->att, sizeof(st));
		dp_instance_reattach(&d->inst, &d->cfg, d->res, st);
		attach_log(d, &d->cfg, d->res, st, "retry timer");
	} else {
		attached = bpf_bring_up(d, &d->cfg, &d->src, d->res, st);
	}
	if (attached) {
		pthread_mutex_lock(&d->lock);
		memcpy(d->att, st, sizeof(st));
		pthread_mutex_unlock(&d->lock);
	}
	d->attach_backoff = d->attach_backoff * 2 < ATTACH_RETRY_MAX_S ? d->attach_backoff * 2 : ATTACH_RETRY_MAX_S;
	d->attach_due = retry_needed(d) ? now + d->attach_backoff : -1;
}

/*
 * The metrics server could not start (e.g. its address is not up yet at boot): tries again every
 * METRICS_RETRY_S, so /health comes up without a restart.
 */
static void metrics_retry(struct dp_daemon *d, double now, double *due)
{
	struct dp_err err = { "" };

	if (d->httpd || !d->cfg.metrics_port || now < *due)
		return;
	*due = now + METRICS_RETRY_S;
	if (dp_metrics_start(d, &err))
		return;
	dp_log("info", "metrics", "serving /metrics and /health on %s port %d", d->cfg.metrics_address,
	       d->cfg.metrics_port);
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
	double due = 0, links_due = -1, metrics_due = dp_now_mono() + METRICS_RETRY_S;

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
		struct pollfd p[5 + 2 * DP_MAX_WANS];
		int np = 0, timeout = -1, wan0;
		double now = dp_now_mono(), wt, ids_due;

		/* the block intake follows the committed configuration and the programs running now */
		dp_ids_sync(&d->ids, &d->cfg, &d->inst, &d->lock);
		attach_retry(d, now);
		p[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = ifd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = nlfd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = d->feeds.efd, .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = d->ids.fd, .events = POLLIN };
		wan0 = np;
		np += dp_wan_pollfds(&d->wan, p + np, (int)(sizeof(p) / sizeof(p[0])) - np);
		if (pending)
			fold_timeout(&timeout, due, now);
		if (links_due >= 0)
			fold_timeout(&timeout, links_due, now);
		if (d->up_due >= 0)
			fold_timeout(&timeout, d->up_due, now);
		if (d->attach_due >= 0)
			fold_timeout(&timeout, d->attach_due, now);
		if (d->stale_due >= 0)
			fold_timeout(&timeout, d->stale_due, now);
		wt = dp_wan_timeout(&d->wan, now);
		if (wt >= 0)
			fold_timeout(&timeout, now + wt, now);
		if (!d->httpd && d->cfg.metrics_port)
			fold_timeout(&timeout, metrics_due, now);
		ids_due = dp_ids_due(&d->ids);
		if (ids_due >= 0)
			fold_timeout(&timeout, ids_due, now);
		if (d->cfg.dyn.enabled && d->ids.fd < 0)
			fold_timeout(&timeout, d->ids.socket_due, now);
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
		if ((p[1].revents & POLLIN) && file_events(ifd, &d->cfg)) {
			pending = 1;
			due = now + DEBOUNCE_MS / 1000.0;
		}
		if (nlfd >= 0 && (p[2].revents & POLLIN)) {
			uint64_t protos[4] = { 0 };
			int ev = dp_nl_events_read(nlfd, protos);
			double sd = now + DP_STALE_EVENT_DELAY_S;

			/* an address change may move a wan_addr4_ set of the ruleset (a DHCP renewal) */
			if ((ev & (DP_NL_EV_LINK | DP_NL_EV_ADDR)) && links_due < 0)
				links_due = now + LINK_DEBOUNCE_S;
			if (ev)
				dp_wan_routes_changed(&d->wan, now);
			if (ev & (DP_NL_EV_ROUTE | DP_NL_EV_ADDR))
				dp_ids_routes_changed(&d->ids);
			if (ev && d->up_due < 0)
				d->up_due = now + UPSTREAM_DEBOUNCE_S;
			/* a route of a protocol the site no longer runs (a routing pod still terminating) */
			if (dp_stale_routes_seen(protos, d->cfg.stale_route_protocols, d->cfg.n_stale_route_protocols) &&
			    (d->stale_due < 0 || sd < d->stale_due))
				d->stale_due = sd;
		}
		if (p[3].revents & POLLIN) {
			static dp_feed_path_t cand[DP_MAX_FEEDS];

			if (dp_feeds_candidates(&d->feeds, &d->cfg, cand) > 0) {
				dp_log("info", "feed_reload", "trying the new feed lists");
				reload(d, o, 0, cand);
			}
		}
		if (p[4].revents & POLLIN)
			dp_ids_readable(&d->ids, &d->cfg, &d->src, &d->lock);
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
		if (d->stale_due >= 0 && dp_now_mono() >= d->stale_due)
			stale_sweep(d);
		if (d->up_due >= 0 && !d->inst.wan)
			d->up_due = -1; /* no programs: bpf_bring_up installs the upstream when they load */
		if (d->up_due >= 0 && dp_now_mono() >= d->up_due) {
			/* a WAN's addresses or default routes changed: its upstream follows */
			d->up_due = -1;
			if (dp_upstream_sync(&d->up, &d->inst, &d->cfg, d->res, &d->lock, false))
				d->up_due = dp_now_mono() + UPSTREAM_RETRY_S;
		}
		dp_wan_tick(&d->wan, now);
		dp_ids_tick(&d->ids, dp_now_mono(), &d->lock);
		metrics_retry(d, now, &metrics_due);
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
	char stale[256 * 5 + 32] = "";

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
		if (dp_nft_load(cfg.nft_ruleset, dir, true, have_links ? &links : NULL, NULL, NULL, &err)) {
			dp_log("error", "check_failed", "%s", err.msg);
		} else if (dp_nft_fallback_load(&cfg, have_links ? &links : NULL, true, &err)) {
			/* the ruleset that goes in when the configured one is refused must load too */
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
	for (int i = 0; i < cfg.n_stale_route_protocols; i++)
		snprintf(stale + strlen(stale), sizeof(stale) - strlen(stale), "%s%u", i ? ", " : "; routes of protocols ",
			 cfg.stale_route_protocols[i]);
	dp_log("info", "check_ok", "%s: configuration, %zu table entries (%zu of %d feeds cached)%s are valid%s%s%s",
	       cfg.path, src.allow.n + src.block.n + src.geo.n + src.bogon_extra.n, feeds, cfg.n_feeds,
	       cfg.nft_ruleset[0] ? " and ruleset" : "", cfg.nft_ruleset[0] ? " (the fail-closed fallback too)" : "",
	       stale, stale[0] ? " are removed" : "");
out:
	dp_sources_free(&src);
	dp_config_free(&cfg);
	return rc ? 2 : 0;
}

/*
 * The start's ruleset, before anything else: the links (for Talos aliases), then the configured
 * ruleset, or the built-in fail-closed one when it is refused (nft_reload).
 */
static void start_ruleset(struct dp_daemon *d)
{
	struct dp_err err = { "" }, rerr = { "" };

	if (dp_links_dump(&d->links, &err)) {
		/* names are then taken as written: the ruleset still goes in */
		dp_log("error", "links", "%s", err.msg);
		memset(&d->links, 0, sizeof(d->links));
	}
	resolve_ifaces(&d->cfg, &d->links, d->res, NULL, &rerr);
	if (rerr.msg[0]) {
		dp_log("error", "link_ambiguous", "%s", rerr.msg);
		d->fail_config++;
	}
	if (dp_mkdirs(d->cfg.state_dir, &err))
		dp_log("error", "state_dir", "%s", err.msg);
	nft_reload(d, &d->cfg, &d->links, 1);
}

/* The start's programs: the tables, then load and attach; what fails leaves the loader degraded. */
static void start_bpf(struct dp_daemon *d)
{
	struct dp_iface_attach st[DP_MAX_IFACES];
	struct dp_err err = { "" };

	if (getrandom(&d->seed, sizeof(d->seed), 0) != sizeof(d->seed))
		d->seed = (uint64_t)dp_now_wall() * 0x9E3779B97F4A7C15ULL;
	if (dp_sources_load(&d->cfg, NULL, &d->src, &err)) {
		dp_log("error", "tables_rejected", "%s", err.msg);
		d->fail_tables++;
		bpf_failed(d, "the tables cannot be loaded", err.msg);
		return;
	}
	d->src_fingerprint = fingerprint(&d->cfg);
	dp_feeds_in_use(&d->feeds, &d->cfg, d->src.feed_entries, d->src.feed_used);
	bpf_bring_up(d, &d->cfg, &d->src, d->res, st);
	memcpy(d->att, st, sizeof(st));
}

/* Parses the command line into o; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "pin-root", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },         { "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o->config = optarg; break;
		case 'p': o->pin_root = optarg; break;
		case 'o': o->once = 1; break;
		case 'k': o->check = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o->config || optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct dp_daemon *d;
	struct dp_err err = { "" };
	sigset_t mask;
	int rc = parse_args(argc, argv, &o);

	if (rc >= 0)
		return rc;
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
	dp_ids_init(&d->ids);
	d->attach_due = -1;
	d->attach_backoff = ATTACH_RETRY_FIRST_S;
	d->stale_due = -1;
	if (load_config(&o, &d->cfg, &err)) {
		/* nothing of ours goes in; forwarding stays as the machine booted (off) */
		dp_log("error", "config_rejected", "%s", err.msg);
		return 2;
	}
	/* Fail closed: the ruleset first, independent of everything after it (DESIGN decision 11). */
	start_ruleset(d);
	/* then the routes of a routing daemon the site no longer runs */
	stale_sweep(d);
	rc = 1;
	if (dp_feeds_init(&d->feeds, &err)) {
		dp_log("error", "start_failed", "cannot initialise the feeds: %s; the ruleset stays in force", err.msg);
		return 1;
	}
	/* cached feeds are used at once; their downloads run in the background after the start */
	dp_feeds_configure(&d->feeds, &d->cfg);
	start_bpf(d);
	d->reloads_ok = 1;
	d->last_reload_ok = dp_now_wall();
	pthread_mutex_lock(&d->lock);
	rc = dp_degraded_now(d, NULL) ? 1 : 0;
	pthread_mutex_unlock(&d->lock);
	dp_log(rc ? "warn" : "info", "started",
	       "%s; tables active (block %zu+%zu, allow %zu+%zu, geo %zu+%zu, bogons %zu+%zu)",
	       rc ? "degraded (see /health)" : "ok", d->sizes.block4, d->sizes.block6, d->sizes.allow4, d->sizes.allow6,
	       d->sizes.geo4, d->sizes.geo6, d->sizes.bogon4, d->sizes.bogon6);
	dp_wan_configure(&d->wan, &d->cfg, &d->links);
	if (o.once) {
		/* tables and rules now; the override needs probe results, which a one-shot run has not */
		dp_wan_tick(&d->wan, dp_now_mono());
		goto out;
	}
	if (dp_metrics_start(d, &err))
		dp_log("error", "metrics", "%s; retried every %.0f s", err.msg, METRICS_RETRY_S);
	if (dp_feeds_start(&d->feeds, &err))
		dp_log("error", "feeds", "%s; the feeds' cached copies stay in use", err.msg);
	rc = run(d, &o);
	dp_metrics_stop(d);
	dp_feeds_stop(&d->feeds);
out:
	dp_ids_close(&d->ids);
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
