// SPDX-License-Identifier: Apache-2.0
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/dp_shared.h"
#include "daemon.h"
#include "forwarding.h"

struct text {
	char *buf;
	size_t len, cap;
};

/* Appends formatted text, growing the buffer. */
static void emit(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		t->cap = t->cap * 2 + (size_t)n + 1;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
}

/* emit() for the WAN and feed modules, which know the text only as a pointer. */
static void emit_any(void *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit_any(void *t, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	emit(t, "%s", line);
}

/* Emits the HELP and TYPE lines of a metric. */
static void header(struct text *t, const char *name, const char *type, const char *help)
{
	emit(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Sums entry key of a per-CPU array whose values are pairs/quads of u64 counters. */
static int percpu_sum(int fd, __u32 key, __u64 *out, int nfields)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = calloc((size_t)ncpu * (size_t)nfields, sizeof(__u64));

	memset(out, 0, sizeof(__u64) * (size_t)nfields);
	if (!vals || bpf_map_lookup_elem(fd, &key, vals)) {
		free(vals);
		return -1;
	}
	for (int c = 0; c < ncpu; c++)
		for (int f = 0; f < nfields; f++)
			out[f] += vals[c * nfields + f];
	free(vals);
	return 0;
}

static const char *const stat_label[DP_STAT_MAX] = {
	[DP_STAT_PASS] = "clean",
	[DP_STAT_PASS_ALLOW] = "allowlist",
	[DP_STAT_PASS_NONIP] = "non_ip",
	[DP_STAT_PASS_REPLY] = "conntrack_reply",
	[DP_STAT_DROP_MALFORMED] = "malformed",
	[DP_STAT_DROP_BOGON] = "bogon",
	[DP_STAT_DROP_BLOCK] = "blocklist",
	[DP_STAT_DROP_GEO] = "geoip",
	[DP_STAT_DROP_RL_SYN] = "ratelimit_syn",
	[DP_STAT_DROP_RL_ICMP] = "ratelimit_icmp",
	[DP_STAT_DROP_RL_UDP] = "ratelimit_udp",
	[DP_STAT_DROP_DYNAMIC] = "dynamic",
};

/* The programs' counters (d->lock held, programs loaded). */
static void bpf_counters(struct dp_daemon *d, struct text *t)
{
	__u64 c[4], st[DP_STAT_MAX][2];
	int fd;

	/* The program counts clean frames only per VLAN: clean = all frames - the other verdicts.
	 * It counts a frame's verdict before its VLAN, and the VLAN totals are read here before the
	 * verdicts, so a frame in flight can only be missing from the difference, never in excess;
	 * reporting the largest value computed so far keeps the counter monotonic. */
	{
		__u64 all[2] = { 0, 0 }, vl[2];

		fd = dp_instance_fd_vlan_stats(&d->inst);
		for (__u32 v = 0; v < DP_VLAN_IDS; v++) {
			if (!percpu_sum(fd, v, vl, 2)) {
				all[0] += vl[0];
				all[1] += vl[1];
			}
		}
		struct bpf_map_info info;
		__u32 ilen = sizeof(info);

		fd = dp_instance_fd_stats(&d->inst);
		for (int s = 0; s < DP_STAT_MAX; s++)
			if (percpu_sum(fd, (__u32)s, st[s], 2))
				st[s][0] = st[s][1] = 0;
		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(fd, &info, &ilen) && info.id != d->clean_map_id) {
			/* fresh counter maps (not carried over): the derived counter starts again too */
			d->clean_map_id = info.id;
			d->clean_reported[0] = d->clean_reported[1] = 0;
		}
		for (int f = 0; f < 2; f++) {
			__u64 other = 0;

			for (int s = DP_STAT_PASS + 1; s < DP_STAT_MAX; s++)
				other += st[s][f];
			st[DP_STAT_PASS][f] = all[f] > other ? all[f] - other : 0;
			if (st[DP_STAT_PASS][f] < d->clean_reported[f])
				st[DP_STAT_PASS][f] = d->clean_reported[f];
			d->clean_reported[f] = st[DP_STAT_PASS][f];
		}
	}
	header(t, "router_dataplane_xdp_passed_packets_total", "counter",
	       "Frames the WAN guard passed, by why (clean = every check passed).");
	for (int s = 0; s < DP_STAT_FIRST_DROP; s++)
		emit(t, "router_dataplane_xdp_passed_packets_total{reason=\"%s\"} %llu\n", stat_label[s], st[s][0]);
	header(t, "router_dataplane_xdp_passed_bytes_total", "counter", "Bytes of the frames the WAN guard passed.");
	for (int s = 0; s < DP_STAT_FIRST_DROP; s++)
		emit(t, "router_dataplane_xdp_passed_bytes_total{reason=\"%s\"} %llu\n", stat_label[s], st[s][1]);
	header(t, "router_dataplane_drop_packets_total", "counter", "Frames the WAN guard dropped, by reason.");
	for (int s = DP_STAT_FIRST_DROP; s < DP_STAT_MAX; s++)
		emit(t, "router_dataplane_drop_packets_total{reason=\"%s\"} %llu\n", stat_label[s], st[s][0]);
	header(t, "router_dataplane_drop_bytes_total", "counter", "Bytes of the frames the WAN guard dropped, by reason.");
	for (int s = DP_STAT_FIRST_DROP; s < DP_STAT_MAX; s++)
		emit(t, "router_dataplane_drop_bytes_total{reason=\"%s\"} %llu\n", stat_label[s], st[s][1]);

	fd = dp_instance_fd_vlan_stats(&d->inst);
	{
		static __u64 vl[DP_VLAN_IDS][2];

		for (__u32 v = 0; v < DP_VLAN_IDS; v++)
			if (percpu_sum(fd, v, vl[v], 2))
				vl[v][0] = vl[v][1] = 0;
		header(t, "router_dataplane_vlan_packets_total", "counter",
		       "Frames seen by the WAN guard per outer VLAN id (0 = untagged).");
		for (__u32 v = 0; v < DP_VLAN_IDS; v++)
			if (vl[v][0])
				emit(t, "router_dataplane_vlan_packets_total{vlan=\"%u\"} %llu\n", v, vl[v][0]);
		header(t, "router_dataplane_vlan_bytes_total", "counter",
		       "Bytes seen by the WAN guard per outer VLAN id (0 = untagged).");
		for (__u32 v = 0; v < DP_VLAN_IDS; v++)
			if (vl[v][0])
				emit(t, "router_dataplane_vlan_bytes_total{vlan=\"%u\"} %llu\n", v, vl[v][1]);
	}

	fd = dp_instance_fd_seg_stats(&d->inst);
	header(t, "router_dataplane_segment_packets_total", "counter",
	       "Packets per segment and direction (ingress = from the segment into the router).");
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		const struct dp_iface *ifc = &d->cfg.ifaces[i];

		if (ifc->role != DP_ROLE_SEGMENT || percpu_sum(fd, ifc->segment_id, c, 4))
			continue;
		emit(t, "router_dataplane_segment_packets_total{segment=\"%s\",segment_id=\"%u\",direction=\"ingress\"} %llu\n",
		     ifc->segment, ifc->segment_id, c[0]);
		emit(t, "router_dataplane_segment_packets_total{segment=\"%s\",segment_id=\"%u\",direction=\"egress\"} %llu\n",
		     ifc->segment, ifc->segment_id, c[2]);
	}
	header(t, "router_dataplane_segment_bytes_total", "counter", "Bytes per segment and direction.");
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		const struct dp_iface *ifc = &d->cfg.ifaces[i];

		if (ifc->role != DP_ROLE_SEGMENT || percpu_sum(fd, ifc->segment_id, c, 4))
			continue;
		emit(t, "router_dataplane_segment_bytes_total{segment=\"%s\",segment_id=\"%u\",direction=\"ingress\"} %llu\n",
		     ifc->segment, ifc->segment_id, c[1]);
		emit(t, "router_dataplane_segment_bytes_total{segment=\"%s\",segment_id=\"%u\",direction=\"egress\"} %llu\n",
		     ifc->segment, ifc->segment_id, c[3]);
	}
}

struct dp_attach_count *dp_attach_count_of(struct dp_daemon *d, const char *name, bool create)
{
	struct dp_attach_count *spare = NULL;

	for (int i = 0; i < DP_MAX_IFACES; i++) {
		struct dp_attach_count *c = &d->attach_count[i];

		if (c->name[0] && !strcmp(c->name, name))
			return c;
		if (!spare && (!c->name[0] || !dp_config_iface(&d->cfg, c->name)))
			spare = c;
	}
	if (!create || !spare)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	snprintf(spare->name, sizeof(spare->name), "%s", name);
	return spare;
}

const char *const dp_degraded_label[DP_DEG_MAX] = {
	[DP_DEG_BPF] = "bpf",
	[DP_DEG_ATTACH] = "attach",
	[DP_DEG_LINK] = "link",
	[DP_DEG_RULESET] = "ruleset",
	[DP_DEG_FORWARDING] = "forwarding",
};

/* Appends "; " and a formatted part to a reason's message. */
static void add_msg(char *msg, size_t cap, const char *part)
{
	size_t n = strlen(msg);

	snprintf(msg + n, cap - n, "%s%s", n ? "; " : "", part);
}

unsigned dp_degraded_now(const struct dp_daemon *d, char (*msg)[2048])
{
	static char scratch[DP_DEG_MAX][2048];
	char (*m)[2048] = msg ? msg : scratch;
	unsigned mask = 0;

	for (int r = 0; r < DP_DEG_MAX; r++)
		m[r][0] = '\0';
	if (d->bpf_error[0]) {
		mask |= 1u << DP_DEG_BPF;
		add_msg(m[DP_DEG_BPF], sizeof(m[0]), d->bpf_error);
	}
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		char part[700];

		if (d->res[i].state != DP_RESOLVED) {
			mask |= 1u << DP_DEG_LINK;
			snprintf(part, sizeof(part), "%s: %s", d->cfg.ifaces[i].name,
				 d->res[i].state == DP_RES_AMBIGUOUS ? "several links carry it as their alias"
								    : "no link has that name or alias");
			add_msg(m[DP_DEG_LINK], sizeof(m[0]), part);
		} else if (d->inst.wan && d->att[i].attached == DP_ATTACHED_NONE) {
			mask |= 1u << DP_DEG_ATTACH;
			add_msg(m[DP_DEG_ATTACH], sizeof(m[0]), d->att[i].error[0] ? d->att[i].error : d->cfg.ifaces[i].name);
		}
	}
	if (d->cfg.nft_ruleset[0] && d->ruleset != DP_RULESET_APPLIED) {
		mask |= 1u << DP_DEG_RULESET;
		snprintf(m[DP_DEG_RULESET], sizeof(m[0]), "%s: %s",
			 d->ruleset == DP_RULESET_FALLBACK ? "the built-in fail-closed ruleset is in"
							   : "no ruleset of ours is in",
			 d->ruleset_error);
	}
	if (d->forwarding_error[0]) {
		mask |= 1u << DP_DEG_FORWARDING;
		add_msg(m[DP_DEG_FORWARDING], sizeof(m[0]), d->forwarding_error);
	}
	return mask;
}

/* Mode label of what runs on an interface. */
static const char *attached_mode(enum dp_attached a)
{
	static const char *const label[] = { [DP_ATTACHED_NONE] = "none",
					     [DP_ATTACHED_XDP_NATIVE] = "native",
					     [DP_ATTACHED_XDP_GENERIC] = "generic",
					     [DP_ATTACHED_TCX] = "tcx" };

	return label[a];
}

/* router_dataplane_attach_attempts_total, or (failures) _failures_total, per configured interface (d->lock held). */
static void attach_counters(struct dp_daemon *d, struct text *t, bool failures)
{
	const char *name = failures ? "router_dataplane_attach_failures_total" : "router_dataplane_attach_attempts_total";

	header(t, name, "counter",
	       failures ? "Of those, the attaches that left the interface running none of our programs (see /health for why)."
			: "Attaches of a configured interface's programs tried since the start (start, reloads, link changes "
			  "and the retries of an interface that runs none of ours).");
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		const struct dp_attach_count *c = dp_attach_count_of(d, d->cfg.ifaces[i].name, false);

		emit(t, "%s{interface=\"%s\"} %llu\n", name, d->cfg.ifaces[i].name,
		     c ? (unsigned long long)(failures ? c->failures : c->attempts) : 0ULL);
	}
}

/* Degradation, ruleset, forwarding and attachment metrics (d->lock held). */
static void health_metrics(struct dp_daemon *d, struct text *t)
{
	static const char *const modes[] = { "native", "generic", "none" };
	unsigned deg = dp_degraded_now(d, NULL);
	struct dp_forwarding fw;

	header(t, "router_dataplane_degraded", "gauge",
	       "1 while the loader runs degraded for this reason (bpf: programs not loaded; attach: an interface runs "
	       "none; link: a configured interface has no link; ruleset: the configured ruleset is not in; forwarding: "
	       "it could not be switched on). /health says why.");
	for (int r = 0; r < DP_DEG_MAX; r++)
		emit(t, "router_dataplane_degraded{reason=\"%s\"} %d\n", dp_degraded_label[r], !!(deg & (1u << r)));
	header(t, "router_dataplane_ruleset_fallback", "gauge",
	       "1 while the built-in fail-closed ruleset is in because the configured one was refused.");
	emit(t, "router_dataplane_ruleset_fallback %d\n", d->ruleset == DP_RULESET_FALLBACK);
	dp_forwarding_read(&fw);
	header(t, "router_dataplane_forwarding", "gauge", "IP forwarding as the kernel has it (net.ipv4.ip_forward, "
	       "net.ipv6.conf.all.forwarding).");
	emit(t, "router_dataplane_forwarding{family=\"ipv4\"} %d\n", fw.ipv4 == 1);
	emit(t, "router_dataplane_forwarding{family=\"ipv6\"} %d\n", fw.ipv6 == 1);
	header(t, "router_dataplane_interface_attached", "gauge",
	       "Whether the programs of a configured interface run on a link (link = the kernel name it resolved to, "
	       "by name or Talos alias; empty when none or ambiguous).");
	for (int i = 0; i < d->cfg.n_ifaces; i++)
		emit(t, "router_dataplane_interface_attached{interface=\"%s\",link=\"%s\"} %d\n", d->cfg.ifaces[i].name,
		     d->res[i].state == DP_RESOLVED ? d->res[i].kname : "",
		     d->inst.wan && d->res[i].state == DP_RESOLVED && d->att[i].attached != DP_ATTACHED_NONE);
	attach_counters(d, t, false);
	attach_counters(d, t, true);
	header(t, "router_dataplane_xdp_mode", "gauge",
	       "XDP mode the WAN guard actually runs in per WAN interface (1 for the mode in force: native, generic "
	       "when the driver has no native XDP or xdp_mode = generic, none when not attached).");
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		const char *now = d->inst.wan ? attached_mode(d->att[i].attached) : "none";

		if (d->cfg.ifaces[i].role != DP_ROLE_WAN)
			continue;
		for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
			emit(t, "router_dataplane_xdp_mode{interface=\"%s\",link=\"%s\",mode=\"%s\"} %d\n",
			     d->cfg.ifaces[i].name, d->res[i].state == DP_RESOLVED ? d->res[i].kname : "", modes[k],
			     strcmp(now, modes[k]) == 0);
	}
}

char *dp_metrics_render(struct dp_daemon *d)
{
	struct text t = { .buf = malloc(8192), .cap = 8192 };

	if (!t.buf)
		return NULL;
	t.buf[0] = '\0';
	pthread_mutex_lock(&d->lock);
	/* without programs (degraded) there are no counters to read: the series are absent */
	if (d->inst.wan)
		bpf_counters(d, &t);
	header(&t, "router_dataplane_table_entries", "gauge", "Entries in the active tables, as listed in the files.");
	{
		const struct {
			const char *table, *family;
			size_t n;
		} rows[] = {
			{ "allow", "ipv4", d->sizes.allow4 }, { "allow", "ipv6", d->sizes.allow6 },
			{ "bogon", "ipv4", d->sizes.bogon4 }, { "bogon", "ipv6", d->sizes.bogon6 },
			{ "block", "ipv4", d->sizes.block4 }, { "block", "ipv6", d->sizes.block6 },
			{ "geo", "ipv4", d->sizes.geo4 },     { "geo", "ipv6", d->sizes.geo6 },
		};

		for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
			emit(&t, "router_dataplane_table_entries{table=\"%s\",family=\"%s\"} %zu\n", rows[i].table,
			     rows[i].family, rows[i].n);
	}
	header(&t, "router_dataplane_table_stored_entries", "gauge",
	       "Entries stored per kernel lookup structure of the active generation, after splitting and expansion.");
	for (int s = 0; s < DP_T_MAX; s++)
		emit(&t, "router_dataplane_table_stored_entries{structure=\"%s\"} %zu\n", dp_table_map_names[s] + 2,
		     d->sizes.stored[s]);
	header(&t, "router_dataplane_reloads_total", "counter", "Successful reloads (start included).");
	emit(&t, "router_dataplane_reloads_total %llu\n", (unsigned long long)d->reloads_ok);
	header(&t, "router_dataplane_reload_failures_total", "counter",
	       "Rejected reloads by kind; the previous state stayed active.");
	emit(&t, "router_dataplane_reload_failures_total{kind=\"config\"} %llu\n", (unsigned long long)d->fail_config);
	emit(&t, "router_dataplane_reload_failures_total{kind=\"tables\"} %llu\n", (unsigned long long)d->fail_tables);
	emit(&t, "router_dataplane_reload_failures_total{kind=\"nftables\"} %llu\n", (unsigned long long)d->fail_nft);
	header(&t, "router_dataplane_stale_routes_removed_total", "counter",
	       "Routes of a routing daemon the site no longer runs ([global] stale_route_protocols) the loader removed.");
	emit(&t, "router_dataplane_stale_routes_removed_total %llu\n", (unsigned long long)d->stale.removed);
	header(&t, "router_dataplane_stale_route_failures_total", "counter",
	       "Route dumps or deletes of the stale-route sweep that failed (tried again at the next sweep).");
	emit(&t, "router_dataplane_stale_route_failures_total %llu\n", (unsigned long long)d->stale.failures);
	header(&t, "router_dataplane_last_reload_success_timestamp_seconds", "gauge",
	       "Unix time of the last successful table reload.");
	emit(&t, "router_dataplane_last_reload_success_timestamp_seconds %.3f\n", d->last_reload_ok);
	header(&t, "router_dataplane_nft_last_success_timestamp_seconds", "gauge",
	       "Unix time the nftables ruleset was last applied (0 = never or not managed).");
	emit(&t, "router_dataplane_nft_last_success_timestamp_seconds %.3f\n", d->nft_last_ok);

	health_metrics(d, &t);
	dp_wan_metrics(&d->wan, emit_any, &t);
	dp_upstream_metrics(&d->up, &d->cfg, d->inst.ct_replies, emit_any, &t);
	dp_ids_metrics(&d->ids, &d->cfg, emit_any, &t);
	pthread_mutex_unlock(&d->lock);
	dp_feeds_metrics(&d->feeds, emit_any, &t);
	return t.buf;
}

/* Appends s as a JSON string (quoted, escaped). */
static void emit_json_str(struct text *t, const char *s)
{
	size_t cap = strlen(s) * 6 + 8, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		abort();
	dp_json_escape(buf, cap, &len, s);
	emit(t, "\"%s\"", buf);
	free(buf);
}

/* "key": "value" or "key": null for an empty value. */
static void emit_json_opt(struct text *t, const char *key, const char *value)
{
	emit(t, "\"%s\": ", key);
	if (value[0])
		emit_json_str(t, value);
	else
		emit(t, "null");
}

/* The interfaces of /health: what runs on each (d->lock held). */
static void health_interfaces(const struct dp_daemon *d, struct text *t)
{
	static const char *const xdp_modes[] = { [DP_XDP_NATIVE] = "native",
						 [DP_XDP_NATIVE_ONLY] = "native-only",
						 [DP_XDP_GENERIC] = "generic" };

	emit(t, "\"interfaces\": [");
	for (int i = 0; i < d->cfg.n_ifaces; i++) {
		const struct dp_iface *ifc = &d->cfg.ifaces[i];
		const struct dp_iface_attach *a = &d->att[i];
		bool on = d->inst.wan && d->res[i].state == DP_RESOLVED && a->attached != DP_ATTACHED_NONE;

		emit(t, "%s{\"interface\": ", i ? ", " : "");
		emit_json_str(t, ifc->name);
		emit(t, ", \"link\": ");
		emit_json_str(t, d->res[i].state == DP_RESOLVED ? d->res[i].kname : "");
		emit(t, ", \"role\": \"%s\", \"attached\": %s, \"mode\": \"%s\"",
		     ifc->role == DP_ROLE_WAN ? "wan" : "segment", on ? "true" : "false",
		     on ? attached_mode(a->attached) : "none");
		if (ifc->role == DP_ROLE_WAN)
			emit(t, ", \"xdp_mode\": \"%s\", \"fell_back\": %s", xdp_modes[ifc->xdp_mode],
			     on && a->fell_back ? "true" : "false");
		emit(t, ", ");
		emit_json_opt(t, "error", on ? "" : a->error);
		emit(t, "}");
	}
	emit(t, "]");
}

char *dp_health_render(struct dp_daemon *d, bool *healthy)
{
	static const char *const rulesets[] = { [DP_RULESET_NONE] = "none", [DP_RULESET_APPLIED] = "applied",
						[DP_RULESET_FALLBACK] = "fallback" };
	static char msg[DP_DEG_MAX][2048];
	struct text t = { .buf = malloc(4096), .cap = 4096 };
	struct dp_forwarding fw;
	unsigned deg;
	int n = 0;

	if (!t.buf)
		return NULL;
	t.buf[0] = '\0';
	dp_forwarding_read(&fw);
	pthread_mutex_lock(&d->lock);
	deg = dp_degraded_now(d, msg);
	*healthy = deg == 0;
	emit(&t, "{\"status\": \"%s\", \"reasons\": [", deg ? "degraded" : "ok");
	for (int r = 0; r < DP_DEG_MAX; r++) {
		if (!(deg & (1u << r)))
			continue;
		emit(&t, "%s{\"reason\": \"%s\", \"message\": ", n++ ? ", " : "", dp_degraded_label[r]);
		emit_json_str(&t, msg[r]);
		emit(&t, "}");
	}
	emit(&t, "], \"ruleset\": \"%s\", ", rulesets[d->ruleset]);
	emit_json_opt(&t, "ruleset_sha256", d->ruleset == DP_RULESET_APPLIED ? d->ruleset_sha256 : "");
	emit(&t, ", ");
	emit_json_opt(&t, "config_generation", d->cfg.generation);
	emit(&t, ", \"forwarding\": \"%s\", \"forwarding_ipv4\": %s, \"forwarding_ipv6\": %s",
	     fw.ipv4 == 1 && fw.ipv6 != 0 ? "on" : fw.ipv4 != 1 && fw.ipv6 != 1 ? "off" : "partial",
	     fw.ipv4 == 1 ? "true" : "false", fw.ipv6 == 1 ? "true" : "false");
	emit(&t, ", \"last_reload_success\": %.3f, \"reloads\": %llu", d->last_reload_ok,
	     (unsigned long long)d->reloads_ok);
	emit(&t, ", \"reload_failures\": {\"config\": %llu, \"tables\": %llu, \"nftables\": %llu}, ",
	     (unsigned long long)d->fail_config, (unsigned long long)d->fail_tables, (unsigned long long)d->fail_nft);
	health_interfaces(d, &t);
	pthread_mutex_unlock(&d->lock);
	emit(&t, "}\n");
	return t.buf;
}

/*
 * libmicrohttpd request handler: GET/HEAD /metrics, /health (200 ok, 503 degraded), 404 elsewhere, 405 for
 * other methods.
 */
static enum MHD_Result serve(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			     const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct dp_daemon *d = cls;
	struct MHD_Response *resp;
	enum MHD_Result rc;
	unsigned int status = MHD_HTTP_OK;
	const char *type = NULL;
	char *body;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		body = strdup("method not allowed\n");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") == 0) {
		body = dp_metrics_render(d);
	} else if (strcmp(url, "/health") == 0) {
		bool healthy = false;

		body = dp_health_render(d, &healthy);
		status = healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
		type = "application/json";
	} else {
		body = strdup("not found: try /metrics or /health\n");
		status = MHD_HTTP_NOT_FOUND;
	}
	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				type ? type : status == MHD_HTTP_OK ? "text/plain; version=0.0.4" : "text/plain");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

int dp_metrics_start(struct dp_daemon *d, struct dp_err *err)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	const struct sockaddr *sa;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (d->cfg.metrics_port == 0)
		return 0;
	if (inet_pton(AF_INET, d->cfg.metrics_address, &a4.sin_addr) == 1) {
		a4.sin_port = htons((uint16_t)d->cfg.metrics_port);
		sa = (const struct sockaddr *)&a4;
	} else {
		inet_pton(AF_INET6, d->cfg.metrics_address, &a6.sin6_addr);
		a6.sin6_port = htons((uint16_t)d->cfg.metrics_port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	}
	d->httpd = MHD_start_daemon(flags, (uint16_t)d->cfg.metrics_port, NULL, NULL, serve, d, MHD_OPTION_SOCK_ADDR, sa,
				    MHD_OPTION_END);
	if (!d->httpd)
		return dp_errf(err, "cannot serve metrics on %s port %d (address in use?)", d->cfg.metrics_address,
			       d->cfg.metrics_port);
	return 0;
}

void dp_metrics_stop(struct dp_daemon *d)
{
	if (d->httpd)
		MHD_stop_daemon(d->httpd);
	d->httpd = NULL;
}
