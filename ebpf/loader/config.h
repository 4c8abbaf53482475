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
#define DP_MAX_WANS 15   /* one per value of the mark bits 0xf0 */
#define DP_MAX_PROBES 8
#define DP_MAX_FEEDS 32
#define DP_WAN_MARK_MASK 0xf0u
#define DP_MAX_MGMT_PORTS 32

/* How the WAN guard attaches (xdp_mode). */
enum dp_xdp_mode {
	DP_XDP_NATIVE = 0,  /* driver mode; generic (SKB) mode when the driver has no native XDP */
	DP_XDP_NATIVE_ONLY, /* driver mode or nothing: a driver without native XDP is an error (degraded) */
	DP_XDP_GENERIC,     /* generic (SKB) mode */
};

enum dp_role {
	DP_ROLE_NONE = 0,
	DP_ROLE_WAN,
	DP_ROLE_SEGMENT,
};

struct dp_iface {
	char name[IFNAMSIZ];
	enum dp_role role;
	enum dp_xdp_mode xdp_mode;
	char segment[33];
	uint32_t segment_id;
	bool has_segment_id;
	uint32_t default_priority;
	uint32_t dscp_priority[64]; /* DP_SEG_NO_RULE = no rule */
	int rewrite_dscp;           /* -1 = keep */
	bool trust_pcp;
	int line;                   /* of the section header */
};

/* A probe target of a WAN (ICMP echo). */
struct dp_probe {
	int family; /* 4 or 6 */
	unsigned char addr[16];
	char text[46];
};

/* One uplink of the multi-WAN failover ([wan NAME]). */
struct dp_wan {
	char name[IFNAMSIZ];
	uint32_t priority; /* lower is preferred */
	uint32_t mark;     /* bits within DP_WAN_MARK_MASK */
	uint32_t table;    /* routing table holding this WAN's default routes */
	struct dp_probe probes[DP_MAX_PROBES];
	int n_probes;
	uint32_t interval_ms, timeout_ms;
	uint32_t down_after, up_after;
	bool has_priority, has_mark, has_table;
	int line; /* of the section header */
};

enum dp_feed_kind {
	DP_FEED_BLOCK,
	DP_FEED_ALLOW,
	DP_FEED_GEO,
};

/* A list fetched over HTTPS ([feed NAME]) by router-fetch; cached as state_dir/feeds/NAME.txt. */
struct dp_feed {
	char name[64];
	char url[2048];
	enum dp_feed_kind kind;
	bool has_kind;
	uint64_t refresh_ms;
	uint64_t timeout_ms;  /* whole download; the fetcher is killed a little after it */
	uint32_t min_entries; /* a list with fewer distinct entries is refused */
	int line;
};

/*
 * [dynamic_block]: sources an IDS alert names, blocked by the WAN guard for a while (dynblock.h).
 * Requests arrive on a unix datagram socket from the IDS block agent (idsblock.h).
 */
struct dp_dynamic_block {
	bool enabled;        /* the section is present */
	char socket[108];    /* the socket the loader binds (sun_path) */
	uint32_t agent_uid;  /* only datagrams sent by this uid are taken */
	bool has_agent_uid;
	uint32_t seconds;    /* how long a source stays blocked */
	uint32_t max_entries; /* sources blocked at once, both families together (sizes the guard's tables) */
	char *protect[DP_MAX_FILES]; /* prefix files of sources never blocked */
	int n_protect;
	int line; /* of the section header */
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
	char resolv_conf[PATH_MAX]; /* its nameservers are addresses no feed may block */
	bool enable_forwarding; /* turn IPv4/IPv6 forwarding on once the ruleset is in */
	char generation[65];    /* hex identity of the rendered configuration ("" = none given) */
	/* links management is accepted from while the built-in fallback ruleset is in */
	char management_links[DP_MAX_IFACES][IFNAMSIZ];
	int n_management_links;
	bool has_management_links;
	uint16_t management_ports[DP_MAX_MGMT_PORTS]; /* TCP ports of a management session */
	int n_management_ports;
	/* route protocols (rtm_protocol) of a routing daemon the site no longer runs: their routes in the main
	 * tables are removed (staleroutes.h); none = no sweep */
	uint8_t stale_route_protocols[256];
	int n_stale_route_protocols;

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

	struct dp_wan wans[DP_MAX_WANS];
	int n_wans;
	struct dp_feed feeds[DP_MAX_FEEDS];
	int n_feeds;
	struct dp_dynamic_block dyn;
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

/*
 * Parses a duration: one or more NUMBER UNIT groups, units h, m, s, ms (e.g. 90s, 1h30m,
 * 500ms). Returns 0 with *ms, or -1.
 */
int dp_parse_duration(const char *s, uint64_t *ms);

/* Path of the cached copy of a feed: state_dir/feeds/NAME.txt. */
void dp_feed_path(const struct dp_config *cfg, const struct dp_feed *f, char *buf, size_t len);

#endif /* DP_CONFIG_H */
