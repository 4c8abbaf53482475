/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loader's configuration file (INI, parsed with libinih). The format is a contract with the
 * renderer that writes it; ebpf/README.md documents every key.
 */
#ifndef DP_CONFIG_H
#define DP_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define DP_MAX_IFACES 64
#define DP_MAX_FILES 64
#define DP_MAX_COUNTRIES 256

enum dp_role {
	DP_ROLE_NONE = 0,
	DP_ROLE_WAN,
	DP_ROLE_SEGMENT,
};

struct dp_iface {
	char name[IFNAMSIZ];
	enum dp_role role;
	bool xdp_generic;
	char segment[33];
	uint32_t segment_id;
	bool has_segment_id;
	uint32_t default_priority;
	uint32_t dscp_priority[64]; /* DP_SEG_NO_RULE = no rule */
	int rewrite_dscp;           /* -1 = keep */
	bool trust_pcp;
};

struct dp_rate {
	uint32_t rate;  /* tokens per second per source */
	uint32_t burst; /* bucket size in tokens */
};

struct dp_config {
	char path[PATH_MAX];
	char pin_root[PATH_MAX];
	char metrics_address[64];
	int metrics_port; /* 0 = no HTTP server */
	char nft_ruleset[PATH_MAX]; /* empty = nftables not managed */
	char state_dir[PATH_MAX];

	struct dp_iface ifaces[DP_MAX_IFACES];
	int n_ifaces;

	bool bogons4, bogons6, blocklist, geoip, ratelimit;

	char *bogon_extra[DP_MAX_FILES];
	int n_bogon_extra;
	char *allow[DP_MAX_FILES];
	int n_allow;
	char *block[DP_MAX_FILES];
	int n_block;
	char *geo[DP_MAX_FILES];
	int n_geo;
	char block_countries[DP_MAX_COUNTRIES][3];
	int n_block_countries;

	struct dp_rate syn, icmp, udp;
	uint32_t slots;
};

/*
 * Parses and validates path into cfg (defaults applied). Collects every problem found, one per
 * line of err->msg, each naming file, line, section/key and what is allowed. Returns 0 or -1.
 */
int dp_config_load(const char *path, struct dp_config *cfg, struct dp_err *err);

/* Releases the file lists. */
void dp_config_free(struct dp_config *cfg);

/* Interface by name, or NULL. */
const struct dp_iface *dp_config_iface(const struct dp_config *cfg, const char *name);

#endif /* DP_CONFIG_H */
