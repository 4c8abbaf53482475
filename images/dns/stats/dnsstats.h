/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router-dns-stats: the DNS stack's per-zone analytics. dnsdist reports every answer it gives as a protobuf
 * message (its remote logger: a TCP stream of 16-bit big-endian length + PowerDNS PBDNSMessage, as in
 * PowerDNS pdns/dnsmessage.proto and dnsdist's remote logger) whose server identity names the client's zone
 * and how the answer was made: "<zone>", "<zone>\tcache" or "<zone>\tblocked\t<list>". This program counts
 * them per zone (queries, cache hits, blocked by list, answers by rcode, latency histogram), serves the counts
 * as Prometheus metrics, and writes a query log line for zones whose log is on.
 */
#ifndef DNSSTATS_H
#define DNSSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DS_NAME_MAX 64
#define DS_QNAME_MAX 256
#define DS_MAX_ZONES 256
#define DS_MAX_LISTS 256
#define DS_MAX_ANSWERS 8
/* Latency histogram bucket bounds in seconds (Prometheus `le`), then +Inf. */
#define DS_BUCKETS 10
/* Answer codes counted by name; everything else is "other". */
#define DS_RCODES 6

enum ds_kind { DS_RESOLVED, DS_CACHED, DS_BLOCKED };

extern const double ds_bounds[DS_BUCKETS];
extern const char *const ds_rcode_names[DS_RCODES + 1];

struct ds_rr {
	uint32_t type;
	/* Presentation form: an address for A/AAAA, the name for CNAME; empty for other types. */
	char data[DS_QNAME_MAX];
};

/* One answer as dnsdist reported it. */
struct ds_msg {
	char zone[DS_NAME_MAX];
	enum ds_kind kind;
	char list[DS_NAME_MAX];
	char client[48];
	/* 1 UDP, 2 TCP, 3 DoT, 4 DoH (dnsdist's numbering). */
	uint32_t proto;
	char qname[DS_QNAME_MAX];
	uint32_t qtype;
	uint32_t rcode;
	/* When the query arrived and when the answer left, in microseconds since the epoch. */
	uint64_t query_us, answer_us;
	struct ds_rr answers[DS_MAX_ANSWERS];
	unsigned n_answers;
};

/*
 * Decodes one PBDNSMessage of type response into m. Returns 0, or -1 when the bytes are not a well-formed
 * message, are not a response, or carry no identity of the form above. Never reads past buf + len.
 */
int ds_decode(const uint8_t *buf, size_t len, struct ds_msg *m);

struct ds_zone {
	char name[DS_NAME_MAX];
	bool log;
	uint64_t queries, cached, blocked_by[DS_MAX_LISTS], rcodes[DS_RCODES + 1];
	uint64_t buckets[DS_BUCKETS + 1];
	double latency_sum;
};

struct ds_list {
	char name[DS_NAME_MAX];
	/* True for a fetched list (its feeds job writes <dir>/<name>.status); false for inline names and allow-only. */
	bool feed;
};

struct ds_config {
	char logger[64];
	char metrics[64];
	char query_log[4096];
	uint64_t query_log_max;
	char lists_dir[4096];
	struct ds_zone zones[DS_MAX_ZONES];
	unsigned n_zones;
	struct ds_list lists[DS_MAX_LISTS];
	unsigned n_lists;
};

/*
 * Reads the configuration file (one directive per line, '#' comments; see the renderer in
 * components/dns-stack/stats.ts). Returns 0, or -1 with a message naming the line in err.
 */
int ds_config_load(const char *path, struct ds_config *c, char *err, size_t errlen);

/* The zone of a message by name, or NULL. */
struct ds_zone *ds_zone_find(struct ds_config *c, const char *name);

/*
 * Counts one message in its zone. Returns the zone, or NULL (nothing counted) when the configuration names no
 * such zone, or no such list for a blocked answer.
 */
struct ds_zone *ds_count(struct ds_config *c, const struct ds_msg *m);

/* Writes the query-log line of a message (one JSON object) to f. */
void ds_log_line(FILE *f, const struct ds_msg *m);

/*
 * Appends the Prometheus text of every counter to a growing buffer (*buf of *cap bytes, *len used), with the
 * collector's own counters (messages, malformed, unknown zone) and the lists' status read from their files.
 */
void ds_metrics(const struct ds_config *c, uint64_t messages, uint64_t malformed, uint64_t unknown, char **buf,
		size_t *len, size_t *cap);

#endif /* DNSSTATS_H */
