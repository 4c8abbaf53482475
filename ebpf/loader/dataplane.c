// SPDX-License-Identifier: Apache-2.0
#include "dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <dirent.h>

#include "attach.h"
#include "segment_qos.skel.h"
#include "upstream.h"
#include "wan_guard.skel.h"

int dp_sources_load(const struct dp_config *cfg, const dp_feed_path_t *feed_paths, struct dp_sources *out,
		    struct dp_err *err)
{
	struct {
		char *const *files;
		int n;
		enum dp_table_kind kind;
		struct dp_pfx_list *dst;
	} groups[] = {
		{ cfg->allow, cfg->n_allow, DP_TABLE_PREFIXES, &out->allow },
		{ cfg->block, cfg->n_block, DP_TABLE_PREFIXES, &out->block },
		{ cfg->geo, cfg->n_geo, DP_TABLE_GEO, &out->geo },
		{ cfg->bogon_extra, cfg->n_bogon_extra, DP_TABLE_PREFIXES, &out->bogon_extra },
		{ cfg->dyn.protect, cfg->dyn.n_protect, DP_TABLE_PREFIXES, &out->protect },
	};

	memset(out, 0, sizeof(*out));
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		for (int i = 0; i < groups[g].n; i++) {
			if (dp_table_file_load(groups[g].files[i], groups[g].kind, groups[g].dst, err)) {
				dp_sources_free(out);
				return -1;
			}
		}
	}
	for (int i = 0; i < cfg->n_feeds; i++) {
		const struct dp_feed *f = &cfg->feeds[i];
		struct dp_pfx_list *dst = f->kind == DP_FEED_BLOCK ? &out->block : f->kind == DP_FEED_ALLOW ? &out->allow
													  : &out->geo;
		bool candidate = feed_paths && feed_paths[i][0];
		char cache[PATH_MAX + 96];
		const char *path = candidate ? feed_paths[i] : cache;
		size_t before = dst->n;
		struct dp_err ferr = { "" };

		dp_feed_path(cfg, f, cache, sizeof(cache));
		if (!candidate && access(cache, F_OK))
			continue; /* never fetched yet: contributes nothing */
		if (dp_table_file_load(path, f->kind == DP_FEED_GEO ? DP_TABLE_GEO : DP_TABLE_PREFIXES, dst, &ferr)) {
			if (candidate) {
				dp_errf(err, "[feed %s]: %s", f->name, ferr.msg);
				dp_sources_free(out);
				return -1;
			}
			dp_log("error", "feed_cache", "%s:%d: [feed %s]: the cached copy is damaged and left out until the "
			       "next download: %s", cfg->path, f->line, f->name, ferr.msg);
			continue;
		}
		out->feed_entries[i] = dst->n - before;
		out->feed_used[i] = true;
	}
	return 0;
}

void dp_sources_free(struct dp_sources *s)
{
	dp_pfx_list_free(&s->allow);
	dp_pfx_list_free(&s->block);
	dp_pfx_list_free(&s->geo);
	dp_pfx_list_free(&s->bogon_extra);
	dp_pfx_list_free(&s->protect);
}

void dp_table_input_from(const struct dp_config *cfg, const struct dp_sources *src, uint64_t seed,
			 struct dp_table_input *in)
{
	*in = (struct dp_table_input){
		.allow = &src->allow,
		.block = &src->block,
		.geo = &src->geo,
		.bogon_extra = &src->bogon_extra,
		.bogons4 = cfg->bogons4,
		.bogons6 = cfg->bogons6,
		.blocklist = cfg->blocklist,
		.geoip = cfg->geoip,
		.ratelimit = cfg->ratelimit,
		.block_countries = cfg->block_countries,
		.n_block_countries = cfg->n_block_countries,
		.syn = cfg->syn,
		.icmp = cfg->icmp,
		.udp = cfg->udp,
		.seed = seed,
	};
}

/* Pin path of a map: bpffs refuses '.', which libbpf's internal map names contain. */
static void map_pin_path(const struct bpf_map *map, const char *maps_dir, char *buf, size_t len)
{
	size_t dir = strlen(maps_dir) + 1;

	snprintf(buf, len, "%s/%s", maps_dir, bpf_map__name(map));
	for (char *p = buf + dir; *p; p++)
		if (*p == '.')
			*p = '_';
}

/* Reuses the map pinned at maps_dir/name when its shape still matches the program's. */
static void reuse_pinned(struct bpf_map *map, const char *maps_dir)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[4096];
	int fd;

	map_pin_path(map, maps_dir, path, sizeof(path));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == bpf_map__type(map) &&
	    info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) && info.map_flags == bpf_map__map_flags(map) &&
	    !bpf_map__reuse_fd(map, fd))
		dp_log("info", "reuse_map", "%s carried over from the previous start", path);
	close(fd);
}

bool dp_kernel_has_func(const char *name)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found = false;
	DIR *dir;
	struct dirent *e;

	if (!vmlinux)
		return false;
	found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) > 0;
	/* kfuncs of a module (nf_conntrack built as one) are in its split BTF */
	dir = found ? NULL : opendir("/sys/kernel/btf");
	while (dir && !found && (e = readdir(dir))) {
		char path[300];
		struct btf *mod;

		if (e->d_name[0] == '.' || !strcmp(e->d_name, "vmlinux"))
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", e->d_name);
		mod = btf__parse_split(path, vmlinux);
		if (!mod)
			continue;
		found = btf__find_by_name_kind(mod, name, BTF_KIND_FUNC) > 0;
		btf__free(mod);
	}
	if (dir)
		closedir(dir);
	btf__free(vmlinux);
	return found;
}

/* Opens the WAN guard for cfg with conntrack lookups on or off, reusing pinned counters; NULL on failure. */
static struct wan_guard_bpf *open_guard(const struct dp_config *cfg, const char *maps_dir, bool ct)
{
	struct wan_guard_bpf *w = wan_guard_bpf__open();

	if (!w)
		return NULL;
	w->rodata->rl_slot_bits = (uint32_t)__builtin_ctz(cfg->slots);
	w->rodata->ct_replies = ct;
	bpf_map__set_max_entries(w->maps.dp_dyn4, cfg->dyn.max_entries);
	bpf_map__set_max_entries(w->maps.dp_dyn6, cfg->dyn.max_entries);
	if (maps_dir) {
		reuse_pinned(w->maps.dp_stats, maps_dir);
		reuse_pinned(w->maps.dp_vlan_stats, maps_dir);
		if (cfg->dyn.enabled) {
			reuse_pinned(w->maps.dp_dyn4, maps_dir);
			reuse_pinned(w->maps.dp_dyn6, maps_dir);
		}
	}
	return w;
}

/*
 * Loads the guard, with conntrack lookups for UDP replies when the kernel offers them. Without
 * them the guard still protects, but a reply flow faster than udp_rate is cut to it: the fallback
 * is logged as a warning and shows in router_dataplane_conntrack_replies.
 */
static int load_guard(struct dp_instance *inst, const struct dp_config *cfg, const char *maps_dir,
		      struct dp_err *err)
{
	bool ct = dp_kernel_has_func("bpf_xdp_ct_lookup") && dp_kernel_has_func("bpf_ct_release");
	int rc;

	if (!ct)
		dp_log("warn", "conntrack_replies", "the kernel has no bpf_xdp_ct_lookup kfunc (Linux >= 6.0 with "
		       "nf_conntrack and BTF): UDP replies are charged to their source's bucket like other UDP");
	inst->wan = open_guard(cfg, maps_dir, ct);
	if (!inst->wan)
		return dp_errf(err, "cannot open the WAN guard: %s", strerror(errno));
	rc = wan_guard_bpf__load(inst->wan);
	if (rc && ct) {
		dp_log("warn", "conntrack_replies", "the kernel rejected the WAN guard with conntrack lookups (%s): "
		       "loading it without; UDP replies are charged to their source's bucket like other UDP",
		       strerror(-rc));
		wan_guard_bpf__destroy(inst->wan);
		ct = false;
		inst->wan = open_guard(cfg, maps_dir, ct);
		if (!inst->wan)
			return dp_errf(err, "cannot open the WAN guard: %s", strerror(errno));
		rc = wan_guard_bpf__load(inst->wan);
	}
	if (rc)
		return dp_errf(err, "the kernel rejected the WAN guard program: %s", strerror(-rc));
	inst->ct_replies = ct;
	return 0;
}

int dp_instance_load(struct dp_instance *inst, const struct dp_config *cfg, const char *maps_dir,
		     struct dp_err *err)
{
	int rc;

	memset(inst, 0, sizeof(*inst));
	inst->slots = cfg->slots;
	inst->dyn_max = cfg->dyn.max_entries;
	inst->seg = segment_qos_bpf__open();
	if (!inst->seg) {
		dp_instance_close(inst);
		return dp_errf(err, "cannot open the BPF objects: %s", strerror(errno));
	}
	if (maps_dir)
		reuse_pinned(inst->seg->maps.dp_seg_stats, maps_dir);
	if (load_guard(inst, cfg, maps_dir, err)) {
		dp_instance_close(inst);
		return -1;
	}
	rc = segment_qos_bpf__load(inst->seg);
	if (rc) {
		dp_instance_close(inst);
		return dp_errf(err, "the kernel rejected the segment programs: %s", strerror(-rc));
	}
	if (dp_guard_maps_find(inst->wan->obj, &inst->wan->bss->dp_rt, inst->wan->bss->dp_sum, &inst->maps, err)) {
		dp_instance_close(inst);
		return -1;
	}
	dp_log("info", "clock", "rate limits count time in jiffies of %.3f ms (CONFIG_HZ %.0f)", inst->maps.tick_ns / 1e6,
	       1e9 / inst->maps.tick_ns);
	return 0;
}

int dp_instance_publish(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_sources *src,
			uint64_t seed, struct dp_table_sizes *sizes, struct dp_err *err)
{
	struct dp_table_input in;
	struct dp_built built;
	int rc;

	dp_table_input_from(cfg, src, seed, &in);
	if (dp_tables_build(&in, &built, err))
		return -1;
	rc = dp_tables_publish(&inst->maps, &built, err);
	if (!rc && sizes)
		*sizes = built.sizes;
	dp_built_free(&built);
	return rc;
}

void dp_link_resolve(const struct dp_links *links, const char *name, const char *file, int line, const char *kind,
		     struct dp_link_res *r, struct dp_err *err)
{
	const struct dp_link *l;

	memset(r, 0, sizeof(*r));
	r->state = dp_links_resolve(links, name, &l, r->why, sizeof(r->why));
	if (r->state == DP_RESOLVED) {
		r->ifindex = l->ifindex;
		snprintf(r->kname, sizeof(r->kname), "%s", l->name);
	} else if (r->state == DP_RES_AMBIGUOUS && err) {
		dp_err_append(err,
			      "%s:%d: [%s %s]: no link is named %s and several carry it as their alias (%s); an alias "
			      "must name exactly one link (Talos LinkAliasConfig)",
			      file, line, kind, name, name, r->why);
	}
}

int dp_instance_policies(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
			 struct dp_err *err)
{
	int fd = bpf_map__fd(inst->seg->maps.dp_seg_policy);
	__u32 key, next, *prev = NULL;
	__u32 wanted[DP_MAX_IFACES];
	int n = 0;

	for (int i = 0; i < cfg->n_ifaces; i++) {
		const struct dp_iface *ifc = &cfg->ifaces[i];
		struct dp_seg_policy pol = { 0 };
		__u32 ifindex;

		if (ifc->role != DP_ROLE_SEGMENT || res[i].state != DP_RESOLVED)
			continue;
		ifindex = (__u32)res[i].ifindex;
		pol.segment_id = ifc->segment_id;
		pol.default_priority = ifc->default_priority;
		memcpy(pol.dscp_priority, ifc->dscp_priority, sizeof(pol.dscp_priority));
		pol.rewrite_dscp = ifc->rewrite_dscp < 0 ? DP_SEG_KEEP_DSCP : (__u8)ifc->rewrite_dscp;
		pol.trust_pcp = ifc->trust_pcp;
		/* 802.1p -> DSCP: class selector per PCP, with voice (5) as EF */
		for (int p = 0; p < 8; p++)
			pol.pcp_dscp[p] = (__u8)(p == 5 ? 46 : p * 8);
		if (bpf_map_update_elem(fd, &ifindex, &pol, BPF_ANY))
			return dp_errf(err, "%s: cannot store the segment policy: %s", ifc->name, strerror(errno));
		wanted[n++] = ifindex;
	}
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		bool keep = false;

		for (int i = 0; i < n; i++)
			keep |= wanted[i] == next;
		if (!keep) {
			key = next;
			bpf_map_delete_elem(fd, &key);
			prev = NULL; /* restart: the iteration order changed */
			continue;
		}
		key = next;
		prev = &key;
	}
	return 0;
}

/* Pins a map at maps_dir/name, replacing an older pin. */
static int pin_map(struct bpf_map *map, const char *maps_dir, struct dp_err *err)
{
	char path[4096];
	struct bpf_map_info a, b;
	__u32 la = sizeof(a), lb = sizeof(b);
	int old;

	map_pin_path(map, maps_dir, path, sizeof(path));
	old = bpf_obj_get(path);
	if (old >= 0) {
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if (!bpf_obj_get_info_by_fd(old, &a, &la) && !bpf_obj_get_info_by_fd(bpf_map__fd(map), &b, &lb) &&
		    a.id == b.id) {
			close(old);
			return 0;
		}
		close(old);
		unlink(path);
	}
	if (bpf_obj_pin(bpf_map__fd(map), path))
		return dp_errf(err, "cannot pin map at %s: %s", path, strerror(errno));
	return 0;
}

/*
 * Attaches the programs of configured interface i (when it resolved) and records the outcome in *st;
 * adds its pin names to keep. 0, or -1 with the reason in err and st->error.
 */
static int attach_iface(struct dp_instance *inst, const struct dp_config *cfg, int i, const struct dp_link_res *r,
			const char *links, char **keep, int *nkeep, struct dp_iface_attach *st, struct dp_err *err)
{
	const struct dp_iface *ifc = &cfg->ifaces[i];
	enum dp_hook hooks[2];
	int prog[2], nh, rc = 0;

	memset(st, 0, sizeof(*st));
	if (ifc->role == DP_ROLE_WAN) {
		hooks[0] = ifc->xdp_mode == DP_XDP_GENERIC ? DP_HOOK_XDP_GENERIC : DP_HOOK_XDP_NATIVE;
		prog[0] = bpf_program__fd(inst->wan->progs.wan_guard);
		nh = 1;
	} else {
		hooks[0] = DP_HOOK_TCX_INGRESS;
		prog[0] = bpf_program__fd(inst->seg->progs.segment_ingress);
		hooks[1] = DP_HOOK_TCX_EGRESS;
		prog[1] = bpf_program__fd(inst->seg->progs.segment_egress);
		nh = 2;
	}
	st->attached = ifc->role == DP_ROLE_WAN ? DP_ATTACHED_NONE : DP_ATTACHED_TCX;
	for (int h = 0; h < nh; h++) {
		char name[64];
		bool updated;

		dp_link_pin_name(hooks[h], ifc->name, name, sizeof(name));
		keep[(*nkeep)++] = strdup(name);
		if (r->state != DP_RESOLVED) {
			/* keep its pin as it is */
			snprintf(st->error, sizeof(st->error), "%s: %s", ifc->name,
				 r->state == DP_RES_AMBIGUOUS ? "several links carry it as their alias" : "no such link");
			st->attached = DP_ATTACHED_NONE;
			continue;
		}
		if (ifc->role == DP_ROLE_WAN) {
			rc = dp_attach_xdp(links, ifc->xdp_mode, ifc->name, (__u32)r->ifindex, prog[h], &st->attached,
					   &updated, err);
			st->fell_back = ifc->xdp_mode == DP_XDP_NATIVE && st->attached == DP_ATTACHED_XDP_GENERIC;
		} else {
			rc = dp_attach(links, hooks[h], ifc->name, (__u32)r->ifindex, prog[h], &updated, err);
		}
		if (rc) {
			snprintf(st->error, sizeof(st->error), "%.*s", (int)sizeof(st->error) - 1, err->msg);
			st->attached = DP_ATTACHED_NONE;
			continue;
		}
		if (strcmp(ifc->name, r->kname))
			dp_log("info", "attach", "%s (link %s): %s (%s%s)", ifc->name, r->kname, name,
			       updated ? "updated in place" : "attached", st->fell_back ? ", generic mode" : "");
		else
			dp_log("info", "attach", "%s: %s (%s%s)", ifc->name, name, updated ? "updated in place" : "attached",
			       st->fell_back ? ", generic mode" : "");
	}
	return st->error[0] ? -1 : 0;
}

int dp_instance_attach(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
		       struct dp_iface_attach *st, struct dp_err *err)
{
	char links[4200], maps[4200], *keep[DP_MAX_IFACES * 2];
	struct dp_iface_attach scratch;
	struct bpf_map *map;
	int nkeep = 0, rc = -1;
	bool failed = false;

	snprintf(links, sizeof(links), "%s/links", cfg->pin_root);
	snprintf(maps, sizeof(maps), "%s/maps", cfg->pin_root);
	if (dp_mkdirs(links, err) || dp_mkdirs(maps, err))
		return -1;
	for (int i = 0; i < cfg->n_ifaces; i++) {
		struct dp_err ierr = { "" };

		/* an interface that cannot be attached does not keep the others from being attached */
		if (attach_iface(inst, cfg, i, &res[i], links, keep, &nkeep, st ? &st[i] : &scratch, &ierr)) {
			if (res[i].state == DP_RESOLVED)
				dp_err_append(err, "%s", ierr.msg);
			failed |= res[i].state == DP_RESOLVED;
		}
	}
	if (dp_detach_stale(links, keep, nkeep, err) < 0)
		goto out;
	bpf_object__for_each_map(map, inst->wan->obj)
		if (pin_map(map, maps, err))
			goto out;
	bpf_object__for_each_map(map, inst->seg->obj)
		if (pin_map(map, maps, err))
			goto out;
	rc = failed ? -1 : 0;
out:
	for (int i = 0; i < nkeep; i++)
		free(keep[i]);
	return rc;
}

int dp_instance_reattach(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
			 struct dp_iface_attach *st)
{
	char links[4200], *keep[2];
	int left = 0;

	snprintf(links, sizeof(links), "%s/links", cfg->pin_root);
	for (int i = 0; i < cfg->n_ifaces; i++) {
		struct dp_err ierr = { "" };
		int nkeep = 0;

		if (res[i].state != DP_RESOLVED || st[i].attached != DP_ATTACHED_NONE)
			continue;
		if (dp_mkdirs(links, &ierr) ||
		    attach_iface(inst, cfg, i, &res[i], links, keep, &nkeep, &st[i], &ierr)) {
			if (!st[i].error[0])
				snprintf(st[i].error, sizeof(st[i].error), "%.*s", (int)sizeof(st[i].error) - 1, ierr.msg);
			left++;
		}
		for (int k = 0; k < nkeep; k++)
			free(keep[k]);
	}
	return left;
}

/* One family's upstream LPM from u (key prefix = the ifindex, then the prefix); -2 when it has no entries. */
static int upstream_map(const struct dp_upstream *u, int family, struct dp_err *err)
{
	uint32_t ksz = family == 4 ? sizeof(struct dp_up4_key) : sizeof(struct dp_up6_key);
	uint8_t keys[DP_UP_MAX][sizeof(struct dp_up6_key)], one = 1;
	uint32_t n = 0;
	int fd;

	for (int i = 0; i < u->n; i++) {
		const struct dp_up_entry *e = &u->v[i];
		struct dp_up6_key k = { .prefixlen = DP_UP_IFINDEX_BITS + e->len, .ifindex = (uint32_t)e->ifindex };

		if (e->family != family)
			continue;
		memcpy(k.addr, e->addr, family == 4 ? 4 : 16); /* dp_up4_key has the same layout up to its address */
		memcpy(keys[n++], &k, ksz);
	}
	if (!n)
		return -2;
	{
		LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);

		fd = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, family == 4 ? "dp_up4" : "dp_up6", ksz, 1, n, &o);
	}
	if (fd < 0)
		return dp_errf(err, "cannot create the upstream table: %s", strerror(errno));
	for (uint32_t i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, keys[i], &one, BPF_ANY)) {
			dp_errf(err, "cannot fill the upstream table: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

int dp_instance_upstream(struct dp_instance *inst, const struct dp_upstream *u, struct dp_err *err)
{
	int outer[2] = { bpf_map__fd(inst->wan->maps.t_up4), bpf_map__fd(inst->wan->maps.t_up6) };
	__u32 slot = 0;

	for (int f = 0; f < 2; f++) {
		int fd = upstream_map(u, f ? 6 : 4, err);

		if (fd == -1)
			return -1;
		if (fd == -2) {
			if (bpf_map_delete_elem(outer[f], &slot) && errno != ENOENT)
				return dp_errf(err, "cannot clear the upstream table: %s", strerror(errno));
			continue;
		}
		if (bpf_map_update_elem(outer[f], &slot, &fd, BPF_ANY)) {
			dp_errf(err, "cannot install the upstream table: %s", strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

void dp_instance_close(struct dp_instance *inst)
{
	wan_guard_bpf__destroy(inst->wan);
	segment_qos_bpf__destroy(inst->seg);
	inst->wan = NULL;
	inst->seg = NULL;
}

int dp_instance_fd_stats(const struct dp_instance *inst)
{
	return bpf_map__fd(inst->wan->maps.dp_stats);
}

int dp_instance_fd_vlan_stats(const struct dp_instance *inst)
{
	return bpf_map__fd(inst->wan->maps.dp_vlan_stats);
}

int dp_instance_fd_seg_stats(const struct dp_instance *inst)
{
	return bpf_map__fd(inst->seg->maps.dp_seg_stats);
}
