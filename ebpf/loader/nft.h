/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The router's nftables ruleset: a file that may define only `table inet router`, loaded through
 * libnftables as one transaction that replaces that table and nothing else.
 */
#ifndef DP_NFT_H
#define DP_NFT_H

#include <stdbool.h>

#include "config.h"
#include "netlink.h"
#include "util.h"

/*
 * Rejects anything at the top level of text other than `table inet router { ... }` blocks and
 * define/redefine/undefine statements, and any include. path names the file in messages.
 */
int dp_nft_scope_check(const char *path, const char *text, struct dp_err *err);

/*
 * Talos aliases in defines: the value of every top-level `define NAME = "VALUE"` (or redefine)
 * that names no link but is the ifalias of exactly one link becomes that link's kernel name.
 * Values naming a link, naming nothing, or not a plain quoted string stay as written; an alias
 * carried by several links is an error naming file, line and the candidates. Lines keep their
 * numbers. *out is malloc'ed.
 */
int dp_nft_resolve_defines(const char *path, const char *text, const struct dp_links *links, char **out,
			   struct dp_err *err);

/* Prefix of the sets the loader fills with a WAN link's IPv4 addresses: `set wan_addr4_<link>`. */
#define DP_NFT_WAN_ADDR4 "wan_addr4_"

/*
 * Appends to the malloc'ed ruleset *text (reallocated) an `add element` statement for every set
 * `wan_addr4_<link>` declared in a table, holding the current IPv4 addresses of that link (kernel
 * name or Talos alias, resolved against links); a link that is missing or has no IPv4 address adds
 * nothing. Loaded with the ruleset, the elements join its transaction, so a set is never seen
 * empty while the link has an address. path names the file in messages. 0, or -1 with err.
 */
int dp_nft_wan_addresses(const char *path, char **text, const struct dp_links *links, struct dp_err *err);

/*
 * Reads path, checks its scope, resolves aliases in its defines against links (unless NULL) and
 * adds the current addresses of the WAN links to the wan_addr4_ sets (dp_nft_wan_addresses),
 * validates it with a dry run, and unless check_only applies it: `add table inet router; delete
 * table inet router;` followed by the file, in one transaction. work_dir receives the private
 * copy that is actually loaded (so the file cannot change between the check and the load). On
 * failure the running ruleset is untouched. *content (if not NULL) receives the applied text, as
 * resolved (malloc'ed); sha256 (if not NULL, 65 bytes) the SHA-256 of the file's bytes as read,
 * before any define is resolved (what the renderer wrote), also on failure once it was read.
 */
int dp_nft_load(const char *path, const char *work_dir, bool check_only, const struct dp_links *links,
		char **content, char *sha256, struct dp_err *err);

/* SHA-256 of len bytes as 64 lower-case hexadecimal digits (out: 65 bytes). */
void dp_sha256_hex(const void *data, size_t len, char out[65]);

/* The comment of the fallback table (`nft list table inet router` shows it). */
#define DP_NFT_FALLBACK_COMMENT "router-dataplane fail-closed fallback"

/*
 * The built-in fail-closed ruleset for cfg, independent of the configured ruleset file: a `table
 * inet router` whose forward chain drops everything but established/related connections, and
 * whose input chain (policy drop) accepts loopback, established/related, ICMP errors, ICMPv6
 * neighbour discovery and MLD, the router's pods, DHCPv4/DHCPv6 client replies on the uplinks
 * ([interface] role = wan and [wan] names), and the management ports (management_ports and
 * metrics_port, TCP) plus echo requests from management_links (from every link but the uplinks
 * when that key is absent). Names resolve by kernel name or Talos alias against links (NULL:
 * as written). Malloc'ed text, or NULL when out of memory.
 */
char *dp_nft_fallback_text(const struct dp_config *cfg, const struct dp_links *links);

/* Applies the fallback (check_only: a dry run) as one transaction replacing table inet router. */
int dp_nft_fallback_load(const struct dp_config *cfg, const struct dp_links *links, bool check_only,
			 struct dp_err *err);

#endif /* DP_NFT_H */
