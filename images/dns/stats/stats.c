// SPDX-License-Identifier: Apache-2.0
/* Configuration, per-zone counting, the Prometheus text and the query-log line of router-dns-stats. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsstats.h"
#include "util.h"

/* Bucket bounds of the latency histogram, in seconds. */
const double ds_bounds[DS_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5 };
const char *const ds_rcode_names[DS_RCODES + 1] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
							 "NOTIMP",  "REFUSED", "other" };

/* True when s is a label of a-z, 0-9 and '-' (a zone or list name as the site model allows). */
static bool label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= DS_NAME_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

/* Sets err to "line N: msg" and returns -1. */
static int bad(char *err, size_t errlen, unsigned line, const char *msg)
{
	snprintf(err, errlen, "line %u: %s", line, msg);
	return -1;
}

/* Applies one directive (the words of a line) to c; 0 or -1 with err set. */
static int directive(struct ds_config *c, char **w, int n, unsigned line, char *err, size_t errlen)
{
	if (n == 2 && !strcmp(w[0], "logger") && strlen(w[1]) < sizeof(c->logger))
		strcpy(c->logger, w[1]);
	else if (n == 2 && !strcmp(w[0], "metrics") && strlen(w[1]) < sizeof(c->metrics))
		strcpy(c->metrics, w[1]);
	else if (n == 2 && !strcmp(w[0], "front") && strlen(w[1]) < sizeof(c->front))
		strcpy(c->front, w[1]);
	else if (n == 2 && !strcmp(w[0], "sample") && atoi(w[1]) >= 1)
		c->sample = (unsigned)atoi(w[1]);
	else if (n == 3 && !strcmp(w[0], "query-log") && strlen(w[1]) < sizeof(c->query_log)) {
		strcpy(c->query_log, w[1]);
		c->query_log_max = strtoull(w[2], NULL, 10);
		if (c->query_log_max < 4096)
			return bad(err, errlen, line, "query-log size below 4096 bytes (allowed: query-log PATH BYTES)");
	} else if (n == 2 && !strcmp(w[0], "lists") && strlen(w[1]) < sizeof(c->lists_dir))
		strcpy(c->lists_dir, w[1]);
	else if (n == 3 && !strcmp(w[0], "zone") && label(w[1]) && (!strcmp(w[2], "log") || !strcmp(w[2], "nolog"))) {
		if (c->n_zones >= DS_MAX_ZONES || ds_zone_find(c, w[1]))
			return bad(err, errlen, line, "too many zones or a zone twice (allowed: each zone once)");
		struct ds_zone *z = &c->zones[c->n_zones++];
		strcpy(z->name, w[1]);
		z->log = !strcmp(w[2], "log");
	} else if (n == 3 && !strcmp(w[0], "list") && label(w[1]) && (!strcmp(w[2], "feed") || !strcmp(w[2], "inline"))) {
		if (c->n_lists >= DS_MAX_LISTS)
			return bad(err, errlen, line, "too many lists");
		struct ds_list *l = &c->lists[c->n_lists++];
		strcpy(l->name, w[1]);
		l->feed = !strcmp(w[2], "feed");
	} else
		return bad(err, errlen, line,
			   "unknown directive (allowed: logger ADDR:PORT, metrics ADDR:PORT, front ADDR:PORT, sample N, "
			   "query-log PATH BYTES, lists DIR, zone NAME log|nolog, list NAME feed|inline)");
	return 0;
}

int ds_config_load(const char *path, struct ds_config *c, char *err, size_t errlen)
{
	char buf[8192], *w[8];
	unsigned line = 0;
	FILE *f = fopen(path, "r");

	memset(c, 0, sizeof(*c));
	if (!f) {
		snprintf(err, errlen, "cannot open %s", path);
		return -1;
	}
	while (fgets(buf, sizeof(buf), f)) {
		int n = 0;
		line++;
		for (char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save); t && n < 8; t = strtok_r(NULL, " \t\r\n", &save))
			w[n++] = t;
		if (n == 0 || w[0][0] == '#')
			continue;
		if (directive(c, w, n, line, err, errlen)) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (!c->logger[0] || !c->metrics[0] || !c->front[0] || c->n_zones == 0)
		return bad(err, errlen, line, "logger, metrics, front and at least one zone are required");
	if (!c->sample)
		c->sample = 1;
	return 0;
}

struct ds_zone *ds_zone_find(struct ds_config *c, const char *name)
{
	for (unsigned i = 0; i < c->n_zones; i++)
		if (!strcmp(c->zones[i].name, name))
			return &c->zones[i];
	return NULL;
}

struct ds_zone *ds_observe(struct ds_config *c, const struct ds_msg *m)
{
	struct ds_zone *z = ds_zone_find(c, m->zone);
	unsigned b = 0, list = 0;
	double s;

	if (!z)
		return NULL;
	if (m->kind == DS_BLOCKED) {
		while (list < c->n_lists && strcmp(c->lists[list].name, m->list))
			list++;
		if (list == c->n_lists)
			return NULL;
	}
	s = m->answer_us > m->query_us ? (double)(m->answer_us - m->query_us) / 1e6 : 0;
	while (b < DS_BUCKETS && s > ds_bounds[b])
		b++;
	z->buckets[b]++;
	z->latency_sum += s;
	return z;
}

void ds_parse_hits(const char *text, struct ds_hits *h)
{
	static const char key[] = "dnsdist_rule_hits{id=\"";
	size_t cap = 0;

	h->n = 0;
	for (const char *p = strstr(text, key); p; p = strstr(p, key)) {
		const char *name = p + sizeof(key) - 1, *end = strchr(name, '"');
		p = name;
		if (!end || (size_t)(end - name) >= sizeof(h->v[0].name) || strncmp(end, "\"} ", 3))
			continue;
		if (h->n == cap) {
			cap = cap ? cap * 2 : 64;
			h->v = realloc(h->v, cap * sizeof(*h->v));
			if (!h->v)
				abort();
		}
		memcpy(h->v[h->n].name, name, (size_t)(end - name));
		h->v[h->n].name[end - name] = '\0';
		h->v[h->n].v = strtoull(end + 3, NULL, 10);
		h->n++;
	}
}

uint64_t ds_hit(const struct ds_hits *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].name, name))
			return h->v[i].v;
	return 0;
}

static const char *proto_name(uint32_t p)
{
	return p == 1 ? "udp" : p == 2 ? "tcp" : p == 3 ? "dot" : p == 4 ? "doh" : "other";
}

void ds_log_line(FILE *f, const struct ds_msg *m)
{
	char line[8192];
	size_t len;

	len = (size_t)snprintf(line, sizeof(line), "{\"ts\":%" PRIu64 ".%06" PRIu64 ",\"zone\":\"%s\",\"client\":\"%s\",\"proto\":\"%s\",\"name\":\"",
			       m->answer_us / 1000000, m->answer_us % 1000000, m->zone, m->client, proto_name(m->proto));
	dp_json_escape(line, sizeof(line), &len, m->qname);
	len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"type\":%u,\"rcode\":\"%s\",\"answer\":[", m->qtype,
				ds_rcode_names[m->rcode < DS_RCODES ? m->rcode : DS_RCODES]);
	for (unsigned i = 0, first = 1; i < m->n_answers; i++) {
		if (!m->answers[i].data[0])
			continue;
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s\"", first ? "" : ",");
		dp_json_escape(line, sizeof(line), &len, m->answers[i].data);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "\"");
		first = 0;
	}
	len += (size_t)snprintf(line + len, sizeof(line) - len, "],\"cached\":%s,\"blocked_by\":",
				m->kind == DS_CACHED ? "true" : "false");
	if (m->kind == DS_BLOCKED)
		snprintf(line + len, sizeof(line) - len, "\"%s\"}\n", m->list);
	else
		snprintf(line + len, sizeof(line) - len, "null}\n");
	fputs(line, f);
}
