/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract of router-fetch, the one program that downloads lists from the internet for the
 * router (DESIGN.md decision 16): its exit codes and the reasons it names, shared with the loader
 * that runs it.
 *
 *   router-fetch --url URL|- --kind cidr|geo|domains --out FILE [--protect ADDR]...
 *                [--protect-name NAME]... [--protect-source] [--block-country CC]...
 *                [--max-bytes N] [--min-entries N] [--timeout SECONDS] [--ca-file F] [--user UID[:GID]]
 *
 * One JSON line per outcome on stderr ({"time","level","event","msg"}, as the loader logs): event
 * "fetched" or "unchanged" on success, otherwise the reason below. Messages never contain the URL
 * (it may carry an access token); the caller knows what it asked for. "--url -" reads the URL from
 * the first line of stdin, so that it is not visible in the process list either.
 */
#ifndef DP_FETCH_H
#define DP_FETCH_H

/* Exit codes. */
enum dp_fetch_exit {
	DP_FETCH_OK = 0,       /* FILE holds the list just fetched (written, or already identical) */
	DP_FETCH_DOWNLOAD = 1, /* the download failed (network, TLS, HTTP status, size, time) */
	DP_FETCH_USAGE = 2,    /* bad command line */
	DP_FETCH_REJECTED = 3, /* the download was refused as a whole (reason logged) */
	DP_FETCH_LOCAL = 4,    /* cannot write FILE, or cannot give up privileges / confine itself */
};

/*
 * Why a list was not taken: the event of the fetcher's failure line and the reason label of the
 * loader's router_dataplane_feed_failures_total. The first group comes from router-fetch, the
 * second only from the loader (what happened around the fetcher).
 */
#define DP_FETCH_REASONS(X)                                                                              \
	X(DOWNLOAD, "download")           /* network, TLS, HTTP status, too large, too slow */           \
	X(MALFORMED, "malformed")         /* a line that is no entry of the kind, binary data */         \
	X(EMPTY, "empty")                 /* no entries at all */                                       \
	X(TOO_FEW, "too_few_entries")     /* fewer than --min-entries */                                \
	X(DEFAULT_ROUTE, "default_route") /* 0.0.0.0/0 or ::/0: every address */                        \
	X(PROTECTED, "protected")         /* covers a protected address or name, a TLD, the root */     \
	X(LOCAL, "local")                 /* output or sandbox failure inside the fetcher */            \
	X(TIMEOUT, "timeout")             /* loader: the fetcher ran too long and was killed */         \
	X(CRASHED, "crashed")             /* loader: the fetcher died, or said nothing it understands */ \
	X(TABLES, "tables")               /* loader: the tables rejected the list */                    \
	X(CACHE, "cache")                 /* loader: cannot copy the list into its cache */

#define DP_FETCH_REASON_ENUM(id, name) DP_FR_##id,
enum dp_fetch_reason { DP_FR_NONE = -1, DP_FETCH_REASONS(DP_FETCH_REASON_ENUM) DP_FR_COUNT };
#undef DP_FETCH_REASON_ENUM

#define DP_FETCH_REASON_NAME(id, name) name,
static const char *const dp_fetch_reason_names[DP_FR_COUNT] = { DP_FETCH_REASONS(DP_FETCH_REASON_NAME) };
#undef DP_FETCH_REASON_NAME

/* The unprivileged identity the fetcher runs as (nobody/nogroup on Debian and in containers). */
#define DP_FETCH_UID 65534
#define DP_FETCH_GID 65534

#define DP_FETCH_MAX_BYTES_DEFAULT (64u << 20)
#define DP_FETCH_TIMEOUT_DEFAULT_S 120
#define DP_FETCH_MAX_PROTECT 256

#endif /* DP_FETCH_H */
