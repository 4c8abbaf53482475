/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test support: a frame builder, BPF_PROG_TEST_RUN helpers, counter readers, and the reference
 * model of the WAN guard (refmodel.c), written from the specification with a deliberately
 * different structure (byte offsets instead of a cursor, linear scans over prefix lists instead of
 * gates, bitmaps and hashes).
 */
#ifndef DP_TESTLIB_H
#define DP_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prefix.h"

#define FRAME_MAX 1600
#define MAX_BOUNDS 24

/* What to put in a frame. */
struct frame_spec {
	int n_tags;            /* VLAN tags, 0..3 (3 is invalid on purpose) */
	uint16_t tpid[3];      /* 0x8100 or 0x88a8 */
	uint16_t vid[3];
	uint8_t pcp[3];
	uint16_t ethertype;    /* after the tags: 0x0800, 0x86dd, anything else */
	uint8_t src[16], dst[16];
	uint8_t ip_opts;       /* IPv4 option bytes (multiple of 4, <= 40) */
	uint8_t proto;         /* L4 protocol number */
	int frag;              /* 0 = whole, 1 = first fragment, 2 = later fragment */
	uint8_t ext[12];       /* IPv6 extension header chain (next-header values) */
	uint8_t ext_len[12];   /* hdr ext len byte per extension (ignored for fragment) */
	int n_ext;
	uint8_t tcp_flags;
	uint8_t icmp_type;
	uint8_t tos;           /* IPv4 TOS / IPv6 traffic class */
	uint16_t sport, dport; /* TCP/UDP ports; 0 = 40000 and the protocol's default (TCP 443, UDP 53) */
	int payload;
};

/* Offsets where each header ends (a frame cut there is truncated at a header boundary). */
struct frame_layout {
	size_t bounds[MAX_BOUNDS];
	const char *names[MAX_BOUNDS];
	int n;
	size_t l3_off;
};

/* Builds the frame; returns its length. Checksums are filled in (IPv4 header). */
size_t frame_build(const struct frame_spec *s, uint8_t *buf, struct frame_layout *lay);

/* A spec for a plain frame: family 4/6, proto, with src/dst from text. */
void frame_spec_init(struct frame_spec *s, int family, const char *src, const char *dst, uint8_t proto);

/* Adds a VLAN tag (outer first). */
void frame_spec_tag(struct frame_spec *s, uint16_t tpid, uint16_t vid);

/* Runs prog once on frame; returns the XDP action (or -1) and sets *duration (ns) if given. */
int test_run(int prog_fd, const uint8_t *frame, size_t len, uint32_t repeat, uint32_t *duration);

/*
 * Runs prog once on frame as if it had arrived on link ifindex of the current network namespace
 * (0 = the kernel's default, the namespace's loopback); returns the XDP action or -1.
 */
int test_run_on(int prog_fd, const uint8_t *frame, size_t len, uint32_t ifindex);

/* Sums a per-CPU array entry made of nfields u64 counters. */
int percpu_read(int map_fd, uint32_t key, uint64_t *out, int nfields);

/*
 * Reads a per-CPU array of {packets, bytes} counters in one batch: out[key] (if out is not NULL)
 * holds each entry summed over the CPUs, tot the sum of all entries.
 */
int percpu_table(int fd, uint32_t entries, uint64_t out[][2], uint64_t tot[2]);

/*
 * The WAN guard's verdict counters as the loader reports them: every reason from dp_stats, and
 * clean (DP_STAT_PASS, never written by the program) as the total of dp_vlan_stats minus the
 * other reasons. out[s] = { packets, bytes }.
 */
int guard_counters(int stats_fd, int vlans_fd, uint64_t out[][2]);

/* Hex dump of a frame into buf. */
void hex(const uint8_t *p, size_t n, char *buf, size_t cap);

/* ---- reference model ---------------------------------------------------------------------- */

enum ref_verdict {
	REF_PASS,
	REF_PASS_ALLOW,
	REF_PASS_NONIP,
	REF_PASS_REPLY,
	REF_DROP_MALFORMED,
	REF_DROP_BOGON,
	REF_DROP_BLOCK,
	REF_DROP_GEO,
	REF_DROP_RL_SYN,
	REF_DROP_RL_ICMP,
	REF_DROP_RL_UDP,
	REF_DROP_DYNAMIC,
};

extern const char *const ref_verdict_name[];

/* An upstream prefix: its bogon sources are exempt on frames arriving on link ifindex. */
struct ref_upstream {
	int ifindex;
	struct dp_pfx p;
};

/* A UDP conntrack entry: its reply tuple (what replies to the flow carry), and whether the flow was
 * started from this side (only then is a frame with that tuple a reply of ours). */
struct ref_flow {
	int family; /* 4 or 6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

struct ref_model {
	const struct dp_pfx *allow, *bogon_extra, *block, *geo;
	size_t n_allow, n_bogon_extra, n_block, n_geo;
	const char (*blocked)[3];
	int n_blocked;
	bool bogons4, bogons6, blocklist, geoip, ratelimit;
	const struct ref_upstream *up;
	size_t n_up;
	/* conntrack: a UDP frame over its limit passes when ct_replies is on and its (source,
	 * destination, ports) equal one of these tuples (the replies of flows started from this side) */
	bool ct_replies;
	const struct ref_flow *replies;
	size_t n_replies;
	/* bogon sources let through so far by a DHCPv4 server reply's ports, or by the upstream table */
	uint64_t exempt_dhcp, exempt_upstream;
	/* rate limiting with refill rate 0: each (slot, class) passes `burst` packets, then drops */
	uint32_t burst[4];
	uint64_t seed;
	unsigned slot_bits;
	int64_t *spent; /* packets passed per slot*4+class since the last reset */
};

/* Prepares the model (parses the built-in bogon lists, allocates bucket state). */
int ref_init(struct ref_model *m);
void ref_reset_buckets(struct ref_model *m);
void ref_free(struct ref_model *m);

/* Verdict for one frame arriving on link ifindex; *vlan receives the outer VLAN id (0 = untagged). */
enum ref_verdict ref_classify(struct ref_model *m, const uint8_t *f, size_t len, int ifindex, uint16_t *vlan);

#endif /* DP_TESTLIB_H */
