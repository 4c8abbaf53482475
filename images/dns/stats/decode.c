// SPDX-License-Identifier: Apache-2.0
/*
 * Decoding of the PBDNSMessage dnsdist's remote logger sends (field numbers from PowerDNS
 * pdns/dnsmessage.proto: type 1, serverIdentity 3, socketProtocol 5, from 6, timeSec 9, timeUsec 10,
 * question 12 {qName 1, qType 2}, response 13 {rcode 1, rrs 2 {name 1, type 2, rdata 5}, queryTimeSec 5,
 * queryTimeUsec 6}). Only the protobuf wire types 0 (varint), 1 (64-bit), 2 (length-delimited) and 5 (32-bit)
 * occur; anything else makes the message malformed.
 */
#include <arpa/inet.h>
#include <string.h>

#include "dnsstats.h"

struct cur {
	const uint8_t *p, *end;
};

/* Reads a varint; 0, or -1 at the end of the buffer or after ten bytes. */
static int varint(struct cur *c, uint64_t *out)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		if (c->p >= c->end)
			return -1;
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/*
 * Reads the next field: its number, its wire type, and either its varint value or its bytes (for wire
 * type 2). Fixed-width fields are skipped (value 0). 0, or -1 when the field runs past the buffer.
 */
static int field(struct cur *c, uint32_t *num, uint64_t *val, struct cur *bytes)
{
	uint64_t key, len;

	if (varint(c, &key))
		return -1;
	*num = (uint32_t)(key >> 3);
	*val = 0;
	switch (key & 7) {
	case 0:
		return varint(c, val);
	case 1:
	case 5: {
		size_t w = (key & 7) == 1 ? 8 : 4;
		if ((size_t)(c->end - c->p) < w)
			return -1;
		c->p += w;
		return 0;
	}
	case 2:
		if (varint(c, &len) || len > (uint64_t)(c->end - c->p))
			return -1;
		bytes->p = c->p;
		bytes->end = c->p + len;
		c->p += len;
		return 0;
	default:
		return -1;
	}
}

/* Copies bytes as a NUL-terminated string of at most cap-1 bytes; -1 when they do not fit. */
static int text(const struct cur *b, char *out, size_t cap)
{
	size_t n = (size_t)(b->end - b->p);

	if (n >= cap)
		return -1;
	memcpy(out, b->p, n);
	out[n] = '\0';
	return 0;
}

/* Splits the identity "<zone>[\tcache|\tblocked\t<list>]" into m; 0 or -1. */
static int identity(const struct cur *b, struct ds_msg *m)
{
	char id[2 * DS_NAME_MAX + 16], *tab, *list;

	if (text(b, id, sizeof(id)))
		return -1;
	m->kind = DS_RESOLVED;
	m->list[0] = '\0';
	tab = strchr(id, '\t');
	if (tab) {
		*tab++ = '\0';
		if (!strcmp(tab, "cache"))
			m->kind = DS_CACHED;
		else if (!strncmp(tab, "blocked\t", 8)) {
			list = tab + 8;
			if (!*list || strlen(list) >= DS_NAME_MAX)
				return -1;
			m->kind = DS_BLOCKED;
			strcpy(m->list, list);
		} else
			return -1;
	}
	if (!*id || strlen(id) >= DS_NAME_MAX)
		return -1;
	strcpy(m->zone, id);
	return 0;
}

/* Decodes one resource record of the answer into m->answers (dropped once DS_MAX_ANSWERS are kept). */
static int answer(struct cur rr, struct ds_msg *m)
{
	struct ds_rr *a = &m->answers[m->n_answers];
	struct cur rdata = { 0 };
	uint32_t num;
	uint64_t val;
	struct cur b;

	if (m->n_answers >= DS_MAX_ANSWERS)
		return 0;
	memset(a, 0, sizeof(*a));
	while (rr.p < rr.end) {
		if (field(&rr, &num, &val, &b))
			return -1;
		if (num == 2)
			a->type = (uint32_t)val;
		else if (num == 5)
			rdata = b;
	}
	size_t n = (size_t)(rdata.end - rdata.p);
	if (a->type == 1 && n == 4)
		inet_ntop(AF_INET, rdata.p, a->data, sizeof(a->data));
	else if (a->type == 28 && n == 16)
		inet_ntop(AF_INET6, rdata.p, a->data, sizeof(a->data));
	else if (a->type == 5 && rdata.p && text(&rdata, a->data, sizeof(a->data)))
		a->data[0] = '\0';
	m->n_answers++;
	return 0;
}

/* Decodes the question (12) or the response (13) sub-message. */
static int sub(uint32_t which, struct cur s, struct ds_msg *m, uint64_t *qsec, uint64_t *qusec)
{
	uint32_t num;
	uint64_t val;
	struct cur b;

	while (s.p < s.end) {
		if (field(&s, &num, &val, &b))
			return -1;
		if (which == 12 && num == 1 && text(&b, m->qname, sizeof(m->qname)))
			return -1;
		if (which == 12 && num == 2)
			m->qtype = (uint32_t)val;
		if (which == 13 && num == 1)
			m->rcode = (uint32_t)val;
		if (which == 13 && num == 2 && answer(b, m))
			return -1;
		if (which == 13 && num == 5)
			*qsec = val;
		if (which == 13 && num == 6)
			*qusec = val;
	}
	return 0;
}

/* Formats the client address (4 or 16 bytes); 0 or -1. */
static int client(const struct cur *b, struct ds_msg *m)
{
	size_t n = (size_t)(b->end - b->p);

	if (n == 4)
		return inet_ntop(AF_INET, b->p, m->client, sizeof(m->client)) ? 0 : -1;
	if (n == 16)
		return inet_ntop(AF_INET6, b->p, m->client, sizeof(m->client)) ? 0 : -1;
	return -1;
}

int ds_decode(const uint8_t *buf, size_t len, struct ds_msg *m)
{
	struct cur c = { buf, buf + len }, b = { 0 };
	uint64_t val, type = 0, sec = 0, usec = 0, qsec = 0, qusec = 0;
	bool have_id = false;
	uint32_t num;

	memset(m, 0, sizeof(*m));
	while (c.p < c.end) {
		if (field(&c, &num, &val, &b))
			return -1;
		if (num == 1)
			type = val;
		else if (num == 3) {
			if (identity(&b, m))
				return -1;
			have_id = true;
		} else if (num == 5)
			m->proto = (uint32_t)val;
		else if (num == 6 && client(&b, m))
			return -1;
		else if (num == 9)
			sec = val;
		else if (num == 10)
			usec = val;
		else if ((num == 12 || num == 13) && sub(num, b, m, &qsec, &qusec))
			return -1;
	}
	if (type != 2 || !have_id)
		return -1;
	m->answer_us = sec * 1000000 + usec;
	m->query_us = qsec * 1000000 + qusec;
	return 0;
}
