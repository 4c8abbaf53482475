/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router-dns-stats: the DNS stack's per-zone analytics. dnsdist reports every answer it gives as a protobuf
 * The per-zone counters are dnsdist's own: it counts the matches of named rules (`<zone>/cache`,
 * `<zone>/resolved`, `<zone>/servfail`, `<zone>/blocked/<list>`, components/dns-stack/dnsdist.ts), and this
 * program reads them from dnsdist's metrics when it is scraped. dnsdist also reports answers as protobuf messages
 * (its remote logger: a TCP stream of 16-bit big-endian length + PowerDNS PBDNSMessage, as in PowerDNS
 * pdns/dnsmessage.proto) whose server identity names the client's zone and how the answer was made: "<zone>",
 * "<zone>\tcache" or "<zone>\tblocked\t<list>" — every answer of a zone whose query log is on, a sample of the
 * others. From those this program builds the per-zone latency histograms and writes the query log.
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
	/* Latency histogram of the reported answers. */
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
	/* dnsdist's web server (its /metrics holds the rule counters). */
	char front[64];
	/* One answer in `sample` is reported from a zone whose log is off. */
	unsigned sample;
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
 * Adds one reported answer to its zone's latency histogram. Returns the zone, or NULL (nothing added) when the
 * configuration names no such zone, or no such list for a blocked answer.
 */
struct ds_zone *ds_observe(struct ds_config *c, const struct ds_msg *m);

/* Rule counters read from dnsdist: name (the rule's id label) and matches. */
struct ds_hits {
	size_t n;
	struct {
		char name[160];
		uint64_t v;
	} *v;
};

/* Parses the dnsdist_rule_hits samples out of Prometheus text into h (replacing its content). */
void ds_parse_hits(const char *text, struct ds_hits *h);

/* The matches of the rule named `name`, or 0 when dnsdist has no such rule. */
uint64_t ds_hit(const struct ds_hits *h, const char *name);

/* Writes the query-log line of a message (one JSON object) to f. */
void ds_log_line(FILE *f, const struct ds_msg *m);

/*
 * Appends the Prometheus text of every metric to a growing buffer (*buf of *cap bytes, *len used): the per-zone
 * counters from dnsdist's rule counters `h` (front_up says whether dnsdist answered; without it they are left
 * out), the histograms, the lists' status read from their files, and the collector's own counts of reports.
 */
void ds_metrics(const struct ds_config *c, const struct ds_hits *h, bool front_up, uint64_t messages,
		uint64_t malformed, uint64_t unknown, char **buf, size_t *len, size_t *cap);

#endif /* DNSSTATS_H */
