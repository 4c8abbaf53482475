/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One loaded copy of the data plane: the WAN guard and segment programs with their maps, the
 * tables they use, and their attachments.
 */
#ifndef DP_DATAPLANE_H
#define DP_DATAPLANE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "attach.h"
#include "config.h"
#include "netlink.h"
#include "prefix.h"
#include "tables.h"
#include "util.h"

struct wan_guard_bpf;
struct segment_qos_bpf;
struct dp_upstream;

struct dp_instance {
	struct wan_guard_bpf *wan;
	struct segment_qos_bpf *seg;
	struct dp_guard_maps maps;
	uint32_t slots;
	uint32_t dyn_max; /* entries the dynamic blocklist tables hold ([dynamic_block] max_entries) */
	bool ct_replies; /* the guard looks UDP sources with an empty bucket up in conntrack */
};

/* How a configured interface name resolved to a link (kernel name, else Talos alias). */
struct dp_link_res {
	enum dp_resolve state;
	int ifindex;
	char kname[IFNAMSIZ];
	char why[160]; /* the candidates when ambiguous */
};

/*
 * Resolves name against links into *r. Ambiguity is an error for the operator: err gets
 * "FILE:LINE: [KIND NAME]: ..." naming the candidates (err may be NULL).
 */
void dp_link_resolve(const struct dp_links *links, const char *name, const char *file, int line, const char *kind,
		     struct dp_link_res *r, struct dp_err *err);

/* The table files named by a configuration, parsed, with the feeds' lists folded in by kind. */
struct dp_sources {
	struct dp_pfx_list allow, block, geo, bogon_extra;
	struct dp_pfx_list protect; /* [dynamic_block] protect: sources an alert never blocks */
	size_t feed_entries[DP_MAX_FEEDS]; /* per [feed] of the configuration */
	bool feed_used[DP_MAX_FEEDS];
};

/* Path buffer of a feed file (cache or candidate). */
typedef char dp_feed_path_t[PATH_MAX + 96];

/*
 * Parses every table file of cfg, and each feed's list: feed_paths[i] when given and not empty (a
 * fresh download to try), else its cache in state_dir/feeds. On error nothing is kept and err
 * names the file and line. A feed never fetched contributes nothing; a cache that does not parse
 * (damaged on disk) is left out with a warning, so it never blocks the start.
 */
int dp_sources_load(const struct dp_config *cfg, const dp_feed_path_t *feed_paths, struct dp_sources *out,
		    struct dp_err *err);
void dp_sources_free(struct dp_sources *s);

/* Fills a build input from a configuration and parsed sources. */
void dp_table_input_from(const struct dp_config *cfg, const struct dp_sources *src, uint64_t seed,
			 struct dp_table_input *in);

/*
 * Opens and loads both programs sized for cfg ([ratelimit] slots, [dynamic_block] max_entries).
 * When maps_dir is given, the counter maps pinned there are reused if they still fit, so counters
 * survive a restart, and so are the dynamic blocklist's tables when [dynamic_block] is on (blocks
 * survive a restart; without the section the tables start empty). The
 * guard looks UDP replies up in conntrack when the kernel has the kfuncs (bpf_xdp_ct_lookup,
 * bpf_ct_release); when it has not, or rejects the program with them, the guard is loaded without
 * (replies are charged like any other UDP), which is logged and leaves inst->ct_replies false.
 */
int dp_instance_load(struct dp_instance *inst, const struct dp_config *cfg, const char *maps_dir,
		     struct dp_err *err);

/* Builds the tables of cfg/src and publishes them as the instance's active generation. */
int dp_instance_publish(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_sources *src,
			uint64_t seed, struct dp_table_sizes *sizes, struct dp_err *err);

/*
 * Writes the segment policies of cfg (keyed by the ifindex res[i] resolved for interface i) and
 * removes those of other links. Interfaces that did not resolve get none.
 */
int dp_instance_policies(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
			 struct dp_err *err);

/*
 * Attaches (or updates in place) every configured interface that resolved (res[i]), removes
 * links of interfaces no longer configured, and pins the maps under pin_root/maps. The pinned
 * link of an interface that did not resolve is left as it is: a missing link is attached when it
 * appears, an ambiguous one keeps whatever runs. An interface that cannot be attached does not
 * stop the others; st[i] (when st is not NULL) tells what runs on interface i. Returns -1 when
 * an interface that resolved could not be attached (err lists each) or pinning failed.
 */
int dp_instance_attach(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
		       struct dp_iface_attach *st, struct dp_err *err);

/*
 * Attaches again only the interfaces that resolved (res[i]) but run none of our programs (st[i],
 * what the last attach left, is updated in place); the others are not touched, so a retry changes
 * and logs nothing on them. Stale links and map pins are left to dp_instance_attach. Never detaches
 * a program that is not ours: an interface another program holds stays unattached (EBUSY). Returns
 * the number of interfaces still unattached.
 */
int dp_instance_reattach(struct dp_instance *inst, const struct dp_config *cfg, const struct dp_link_res *res,
			 struct dp_iface_attach *st);

/*
 * Replaces the guard's upstream tables (t_up4, t_up6) with the entries of u, each family whole; a
 * family without entries gets an empty slot.
 */
int dp_instance_upstream(struct dp_instance *inst, const struct dp_upstream *u, struct dp_err *err);

/* True when the running kernel's BTF (vmlinux or a module) has a function named name. */
bool dp_kernel_has_func(const char *name);

/* Releases the instance; pinned links keep the programs running. */
void dp_instance_close(struct dp_instance *inst);

/* File descriptors of the counter maps. */
int dp_instance_fd_stats(const struct dp_instance *inst);
int dp_instance_fd_vlan_stats(const struct dp_instance *inst);
int dp_instance_fd_seg_stats(const struct dp_instance *inst);

#endif /* DP_DATAPLANE_H */
