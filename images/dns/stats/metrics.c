// SPDX-License-Identifier: Apache-2.0
/* The Prometheus text of router-dns-stats: per-zone counters and histograms, the lists' state, its own counts. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsstats.h"

struct out {
	char **buf;
	size_t *len, *cap;
};

/* Appends formatted text, growing the buffer (aborts when memory runs out). */
static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*o->buf + *o->len, *o->cap - *o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < *o->cap - *o->len) {
			*o->len += (size_t)n;
			return;
		}
		*o->cap = *o->cap * 2 + (size_t)n + 1;
		*o->buf = realloc(*o->buf, *o->cap);
		if (!*o->buf)
			abort();
	}
}

static void header(struct out *o, const char *name, const char *type, const char *help)
{
	emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The matches of the rule `<zone>/<what>`. */
static uint64_t rule(const struct ds_hits *h, const char *zone, const char *what)
{
	char name[160];

	snprintf(name, sizeof(name), "%s/%s", zone, what);
	return ds_hit(h, name);
}

/* Per-zone counters from dnsdist's rule counters: queries, cache hits, SERVFAIL, blocked by list. */
static void zone_counters(struct out *o, const struct ds_config *c, const struct ds_hits *h)
{
	char what[DS_NAME_MAX + 16];

	header(o, "router_dns_queries_total", "counter", "Answers given to the zone's clients.");
	for (unsigned i = 0; i < c->n_zones; i++) {
		const char *z = c->zones[i].name;
		uint64_t n = rule(h, z, "cache") + rule(h, z, "resolved");
		for (unsigned l = 0; l < c->n_lists; l++) {
			snprintf(what, sizeof(what), "blocked/%s", c->lists[l].name);
			n += rule(h, z, what);
		}
		emit(o, "router_dns_queries_total{zone=\"%s\"} %" PRIu64 "\n", z, n);
	}
	header(o, "router_dns_cache_hits_total", "counter", "Answers from the front's cache.");
	for (unsigned i = 0; i < c->n_zones; i++)
		emit(o, "router_dns_cache_hits_total{zone=\"%s\"} %" PRIu64 "\n", c->zones[i].name,
		     rule(h, c->zones[i].name, "cache"));
	header(o, "router_dns_servfail_total", "counter", "SERVFAIL answers (resolution or DNSSEC validation failed).");
	for (unsigned i = 0; i < c->n_zones; i++)
		emit(o, "router_dns_servfail_total{zone=\"%s\"} %" PRIu64 "\n", c->zones[i].name,
		     rule(h, c->zones[i].name, "servfail"));
	header(o, "router_dns_blocked_total", "counter", "Queries answered as blocked, by the list that blocked them.");
	for (unsigned i = 0; i < c->n_zones; i++)
		for (unsigned l = 0; l < c->n_lists; l++) {
			snprintf(what, sizeof(what), "blocked/%s", c->lists[l].name);
			emit(o, "router_dns_blocked_total{zone=\"%s\",list=\"%s\"} %" PRIu64 "\n", c->zones[i].name,
			     c->lists[l].name, rule(h, c->zones[i].name, what));
		}
}

/* Per-zone latency histograms (from the query's arrival to the answer leaving the front). */
static void zone_latency(struct out *o, const struct ds_config *c)
{
	header(o, "router_dns_latency_seconds", "histogram",
	       "Time from a query's arrival to its answer, over the reported answers (see router_dns_latency_sampled).");
	for (unsigned i = 0; i < c->n_zones; i++) {
		const struct ds_zone *z = &c->zones[i];
		uint64_t cum = 0;
		for (unsigned b = 0; b <= DS_BUCKETS; b++) {
			cum += z->buckets[b];
			if (b < DS_BUCKETS)
				emit(o, "router_dns_latency_seconds_bucket{zone=\"%s\",le=\"%g\"} %" PRIu64 "\n", z->name,
				     ds_bounds[b], cum);
			else
				emit(o, "router_dns_latency_seconds_bucket{zone=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", z->name, cum);
		}
		emit(o, "router_dns_latency_seconds_sum{zone=\"%s\"} %.6f\n", z->name, z->latency_sum);
		emit(o, "router_dns_latency_seconds_count{zone=\"%s\"} %" PRIu64 "\n", z->name, cum);
	}
}

struct list_status {
	uint64_t entries, updated, failures;
	bool ok;
};

/* Reads <dir>/<name>.status as the feeds job writes it ("key value" lines); all zero when absent. */
static struct list_status read_status(const char *dir, const char *name)
{
	struct list_status s = { 0 };
	char path[4400], key[32], value[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.status", dir, name);
	f = fopen(path, "r");
	if (!f)
		return s;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %63s", key, value) != 2)
			continue;
		if (!strcmp(key, "entries"))
			s.entries = strtoull(value, NULL, 10);
		else if (!strcmp(key, "updated"))
			s.updated = strtoull(value, NULL, 10);
		else if (!strcmp(key, "failures"))
			s.failures = strtoull(value, NULL, 10);
	}
	fclose(f);
	s.ok = s.updated > 0;
	return s;
}

/* The fetched lists' state, from the feeds job's status files. */
static void lists(struct out *o, const struct ds_config *c)
{
	header(o, "router_dns_list_loaded", "gauge", "1 when a fetched list has passed its checks at least once.");
	for (unsigned l = 0; l < c->n_lists; l++)
		if (c->lists[l].feed)
			emit(o, "router_dns_list_loaded{list=\"%s\"} %d\n", c->lists[l].name,
			     read_status(c->lists_dir, c->lists[l].name).ok);
	static const struct {
		const char *name, *type, *help;
	} families[] = {
		{ "router_dns_list_entries", "gauge", "Names on the fetched list in use." },
		{ "router_dns_list_updated_timestamp_seconds", "gauge", "When the list in use was fetched." },
		{ "router_dns_list_failures_total", "counter", "Fetches refused or failed (the last good list stays)." },
	};
	for (unsigned f = 0; f < 3; f++) {
		header(o, families[f].name, families[f].type, families[f].help);
		for (unsigned l = 0; l < c->n_lists; l++) {
			if (!c->lists[l].feed)
				continue;
			struct list_status s = read_status(c->lists_dir, c->lists[l].name);
			uint64_t v = f == 0 ? s.entries : f == 1 ? s.updated : s.failures;
			emit(o, "%s{list=\"%s\"} %" PRIu64 "\n", families[f].name, c->lists[l].name, v);
		}
	}
}

void ds_metrics(const struct ds_config *c, const struct ds_hits *h, bool front_up, uint64_t messages,
		uint64_t malformed, uint64_t unknown, char **buf, size_t *len, size_t *cap)
{
	struct out o = { buf, len, cap };

	header(&o, "router_dns_front_up", "gauge", "1 when the front (dnsdist) gave its counters at this scrape.");
	emit(&o, "router_dns_front_up %d\n", front_up);
	if (front_up)
		zone_counters(&o, c, h);
	zone_latency(&o, c);
	header(&o, "router_dns_latency_sampled", "gauge",
	       "One answer in this many is in the zone's latency histogram (1: every answer, its query log is on).");
	for (unsigned i = 0; i < c->n_zones; i++)
		emit(&o, "router_dns_latency_sampled{zone=\"%s\"} %u\n", c->zones[i].name, c->zones[i].log ? 1 : c->sample);
	lists(&o, c);
	header(&o, "router_dns_stats_messages_total", "counter", "Reports received from the front, by outcome.");
	emit(&o, "router_dns_stats_messages_total{outcome=\"counted\"} %" PRIu64 "\n", messages);
	emit(&o, "router_dns_stats_messages_total{outcome=\"malformed\"} %" PRIu64 "\n", malformed);
	emit(&o, "router_dns_stats_messages_total{outcome=\"unknown_zone\"} %" PRIu64 "\n", unknown);
}
