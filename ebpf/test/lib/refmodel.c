// SPDX-License-Identifier: Apache-2.0
/*
 * Reference model of the WAN guard, written from the specification (ebpf/README.md, "WAN guard
 * semantics") and nothing else: fixed byte offsets into the frame, and plain linear scans over the
 * prefix lists. It shares no lookup code with the program or the table builder; only the built-in
 * bogon list (specification data) and the documented bucket hash are reused.
 */
#include <stdlib.h>
#include <string.h>

#include "tables.h"
#include "testlib.h"

const char *const ref_verdict_name[] = {
	"pass", "pass_allowlist", "pass_non_ip", "pass_conntrack_reply", "malformed", "bogon", "blocklist", "geoip",
	"ratelimit_syn", "ratelimit_icmp", "ratelimit_udp", "dynamic",
};

static struct dp_pfx defaults[64];
static size_t n_defaults;

int ref_init(struct ref_model *m)
{
	char why[128];

	n_defaults = 0;
	for (int fam = 0; fam < 2; fam++) {
		const char *const *l = fam ? dp_default_bogons6 : dp_default_bogons4;

		for (int i = 0; l[i]; i++)
			if (dp_pfx_parse(l[i], &defaults[n_defaults++], why, sizeof(why)))
				return -1;
	}
	m->spent = calloc((size_t)4 << m->slot_bits, sizeof(*m->spent));
	return m->spent ? 0 : -1;
}

void ref_reset_buckets(struct ref_model *m)
{
	memset(m->spent, 0, ((size_t)4 << m->slot_bits) * sizeof(*m->spent));
}

void ref_free(struct ref_model *m)
{
	free(m->spent);
	m->spent = NULL;
}

static unsigned be16(const uint8_t *p)
{
	return ((unsigned)p[0] << 8) | p[1];
}

/* Bit i (0 = most significant) of an address. */
static int bit(const uint8_t *a, int i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* Does prefix p contain address a of the given family? Whole bytes first, then single bits. */
static bool contains(const struct dp_pfx *p, int family, const uint8_t *a)
{
	int whole = p->len / 8;

	if (p->family != family || memcmp(p->addr, a, (size_t)whole) != 0)
		return false;
	for (int i = whole * 8; i < p->len; i++)
		if (bit(p->addr, i) != bit(a, i))
			return false;
	return true;
}

static bool any_contains(const struct dp_pfx *l, size_t n, int family, const uint8_t *a)
{
	for (size_t i = 0; i < n; i++)
		if (contains(&l[i], family, a))
			return true;
	return false;
}

/* Country of a source per the specification: IPv6 longest prefix; IPv4 at /24 resolution, where
 * the entry with the greatest (length, address) covering or lying inside the source's /24 wins. */
static const struct dp_pfx *geo_of(const struct ref_model *m, int family, const uint8_t *a)
{
	const struct dp_pfx *best = NULL;

	for (size_t i = 0; i < m->n_geo; i++) {
		const struct dp_pfx *e = &m->geo[i];
		bool hit;

		if (e->family != family)
			continue;
		if (family == 6 || e->len <= 24)
			hit = contains(e, family, a);
		else
			hit = memcmp(e->addr, a, 3) == 0;
		if (!hit)
			continue;
		if (!best || e->len > best->len || (e->len == best->len && memcmp(e->addr, best->addr, 16) > 0))
			best = e;
	}
	return best;
}

/* Is the source listed as upstream of the link the frame arrived on? */
static bool upstream_of(const struct ref_model *m, int ifindex, int family, const uint8_t *src)
{
	for (size_t i = 0; i < m->n_up; i++)
		if (m->up[i].ifindex == ifindex && contains(&m->up[i].p, family, src))
			return true;
	return false;
}

/* Allowlist, bogons (unless exempt: a DHCPv4 server reply, or upstream), blocklist, geo; -1 when none decides. */
static int src_checks(struct ref_model *m, int family, const uint8_t *src, bool dhcp, bool upstream)
{
	if (any_contains(m->allow, m->n_allow, family, src))
		return REF_PASS_ALLOW;
	if ((family == 4 ? m->bogons4 : m->bogons6) &&
	    (any_contains(defaults, n_defaults, family, src) ||
	     any_contains(m->bogon_extra, m->n_bogon_extra, family, src))) {
		if (!dhcp && !upstream)
			return REF_DROP_BOGON;
		m->exempt_dhcp += dhcp;
		m->exempt_upstream += !dhcp && upstream;
	}
	if (m->blocklist && any_contains(m->block, m->n_block, family, src))
		return REF_DROP_BLOCK;
	if (m->geoip) {
		const struct dp_pfx *g = geo_of(m, family, src);

		for (int i = 0; g && i < m->n_blocked; i++)
			if (memcmp(g->cc, m->blocked[i], 2) == 0)
				return REF_DROP_GEO;
	}
	return -1;
}

/* Token check with refill rate 0: `burst` packets per bucket, then drops. cls 1 SYN, 2 ICMP, 3 UDP. */
static int bucket(struct ref_model *m, int cls, uint64_t key)
{
	uint64_t slot = ((key ^ m->seed) * 0x9E3779B97F4A7C15ULL) >> (64 - m->slot_bits);
	int64_t *spent = &m->spent[slot * 4 + (uint64_t)cls];

	if (*spent >= (int64_t)m->burst[cls])
		return REF_DROP_RL_SYN + cls - 1;
	(*spent)++;
	return REF_PASS;
}

/* Is (src, dst, sport, dport) of a UDP frame the reply tuple of a flow started from this side? */
static bool is_reply(const struct ref_model *m, int family, const uint8_t *src, const uint8_t *dst, unsigned sport,
		     unsigned dport)
{
	size_t alen = family == 4 ? 4 : 16;

	for (size_t i = 0; i < m->n_replies; i++) {
		const struct ref_flow *r = &m->replies[i];

		if (r->family == family && !memcmp(r->src, src, alen) && !memcmp(r->dst, dst, alen) && r->sport == sport &&
		    r->dport == dport)
			return true;
	}
	return false;
}

enum ref_verdict ref_classify(struct ref_model *m, const uint8_t *f, size_t len, int ifindex, uint16_t *vlan)
{
	size_t off = 14, l4;
	unsigned et;
	int tags = 0, cls = 0, r;
	uint8_t proto;
	uint64_t key;
	/* a UDP frame with its ports (not a later fragment): the conntrack tuple */
	bool udp_ports = false;
	const uint8_t *src = NULL, *dst = NULL;
	size_t ports = 0;
	int family = 0;

	*vlan = 0;
	if (len < 14)
		return REF_DROP_MALFORMED;
	et = be16(f + 12);
	while (et == 0x8100 || et == 0x88a8) {
		if (tags == 2 || off + 4 > len)
			return REF_DROP_MALFORMED;
		if (tags == 0)
			*vlan = be16(f + off) & 0x0fff;
		et = be16(f + off + 2);
		off += 4;
		tags++;
	}

	if (et == 0x0800) {
		unsigned ihl;

		if (off + 20 > len || (f[off] >> 4) != 4 || (f[off] & 15) < 5)
			return REF_DROP_MALFORMED;
		ihl = (f[off] & 15) * 4u;
		if (off + ihl > len)
			return REF_DROP_MALFORMED;
		proto = f[off + 9];
		l4 = off + ihl;
		{
			/* a DHCPv4 server reply, whatever its source */
			bool dhcp = proto == 17 && (be16(f + off + 6) & 0x1fff) == 0 && l4 + 8 <= len && be16(f + l4) == 67 &&
				    be16(f + l4 + 2) == 68;

			r = src_checks(m, 4, f + off + 12, dhcp, upstream_of(m, ifindex, 4, f + off + 12));
		}
		if (r >= 0)
			return r;
		if ((be16(f + off + 6) & 0x1fff) == 0) {
			if (proto == 6) {
				if (l4 + 20 > len)
					return REF_DROP_MALFORMED;
				if ((f[l4 + 13] & 0x12) == 0x02)
					cls = 1;
			} else if (proto == 17) {
				if (l4 + 8 > len)
					return REF_DROP_MALFORMED;
				cls = 3;
				udp_ports = true;
				ports = l4;
			} else if (proto == 1) {
				if (l4 + 8 > len)
					return REF_DROP_MALFORMED;
				if (f[l4] == 8)
					cls = 2;
			}
		} else if (proto == 17) {
			cls = 3;
		}
		key = ((uint64_t)f[off + 12] << 24) | ((uint64_t)f[off + 13] << 16) | ((uint64_t)f[off + 14] << 8) |
		      f[off + 15];
		family = 4;
		src = f + off + 12;
		dst = f + off + 16;
	} else if (et == 0x86dd) {
		bool later_fragment = false;
		size_t p;

		if (off + 40 > len || (f[off] >> 4) != 6)
			return REF_DROP_MALFORMED;
		r = src_checks(m, 6, f + off + 8, false, upstream_of(m, ifindex, 6, f + off + 8));
		if (r >= 0)
			return r;
		proto = f[off + 6];
		p = off + 40;
		for (int i = 0; i < DP_MAX_EXTHDRS; i++) {
			size_t hl;

			if (proto == 0 || proto == 43 || proto == 60 || proto == 51) {
				if (p + 2 > len)
					return REF_DROP_MALFORMED;
				hl = proto == 51 ? ((size_t)f[p + 1] + 2) * 4 : ((size_t)f[p + 1] + 1) * 8;
				if (p + hl > len)
					return REF_DROP_MALFORMED;
				proto = f[p];
				p += hl;
			} else if (proto == 44) {
				if (p + 8 > len)
					return REF_DROP_MALFORMED;
				proto = f[p];
				if (be16(f + p + 2) & 0xfff8) {
					later_fragment = true;
					break;
				}
				p += 8;
			} else {
				break;
			}
		}
		if (later_fragment) {
			if (proto == 17)
				cls = 3;
		} else if (proto == 0 || proto == 43 || proto == 60 || proto == 51 || proto == 44) {
			return REF_DROP_MALFORMED;
		} else if (proto == 6) {
			if (p + 20 > len)
				return REF_DROP_MALFORMED;
			if ((f[p + 13] & 0x12) == 0x02)
				cls = 1;
		} else if (proto == 17) {
			if (p + 8 > len)
				return REF_DROP_MALFORMED;
			cls = 3;
			udp_ports = true;
			ports = p;
		} else if (proto == 58) {
			if (p + 8 > len)
				return REF_DROP_MALFORMED;
			if (f[p] == 128)
				cls = 2;
		}
		key = 0;
		for (int i = 0; i < 8; i++)
			key = (key << 8) | f[off + 8 + i];
		family = 6;
		src = f + off + 8;
		dst = f + off + 24;
	} else {
		return REF_PASS_NONIP;
	}
	if (cls && m->ratelimit) {
		r = bucket(m, cls, key);
		if (r == REF_DROP_RL_UDP && m->ct_replies && udp_ports &&
		    is_reply(m, family, src, dst, be16(f + ports), be16(f + ports + 2)))
			return REF_PASS_REPLY;
		return r;
	}
	return REF_PASS;
}
