// SPDX-License-Identifier: Apache-2.0
/* Frame builder and BPF_PROG_TEST_RUN helpers for the test tools. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tables.h"
#include "testlib.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void mark(struct frame_layout *lay, size_t off, const char *name)
{
	if (lay && lay->n < MAX_BOUNDS) {
		lay->bounds[lay->n] = off;
		lay->names[lay->n++] = name;
	}
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += ((uint32_t)p[i] << 8) | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void frame_spec_init(struct frame_spec *s, int family, const char *src, const char *dst, uint8_t proto)
{
	memset(s, 0, sizeof(*s));
	s->ethertype = family == 4 ? 0x0800 : family == 6 ? 0x86dd : 0x0806;
	if (family == 4) {
		inet_pton(AF_INET, src, s->src);
		inet_pton(AF_INET, dst, s->dst);
	} else if (family == 6) {
		inet_pton(AF_INET6, src, s->src);
		inet_pton(AF_INET6, dst, s->dst);
	}
	s->proto = proto;
	s->tcp_flags = 0x02; /* SYN */
	s->icmp_type = family == 6 ? 128 : 8;
	s->payload = 16;
}

void frame_spec_tag(struct frame_spec *s, uint16_t tpid, uint16_t vid)
{
	if (s->n_tags < 3) {
		s->tpid[s->n_tags] = tpid;
		s->vid[s->n_tags++] = vid;
	}
}

/* L4 header for proto at p; returns its length (0 = protocol without a parsed header). */
static size_t l4_header(const struct frame_spec *s, uint8_t *p)
{
	switch (s->proto) {
	case 6: /* TCP */
		memset(p, 0, 20);
		put16(p, s->sport ? s->sport : 40000);
		put16(p + 2, s->dport ? s->dport : 443);
		p[12] = 5 << 4;
		p[13] = s->tcp_flags;
		put16(p + 14, 65535);
		return 20;
	case 17: /* UDP */
		memset(p, 0, 8);
		put16(p, s->sport ? s->sport : 40000);
		put16(p + 2, s->dport ? s->dport : 53);
		put16(p + 4, (uint16_t)(8 + s->payload));
		return 8;
	case 1:  /* ICMP */
	case 58: /* ICMPv6 */
		memset(p, 0, 8);
		p[0] = s->icmp_type;
		return 8;
	default:
		return 0;
	}
}

size_t frame_build(const struct frame_spec *s, uint8_t *buf, struct frame_layout *lay)
{
	size_t off = 0, ip_off, l4len;
	uint16_t type = s->n_tags ? s->tpid[0] : s->ethertype;

	if (lay)
		memset(lay, 0, sizeof(*lay));
	memset(buf, 0, FRAME_MAX);
	memcpy(buf, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(buf + 6, "\x02\x00\x00\x00\x00\x02", 6);
	put16(buf + 12, type);
	off = 14;
	mark(lay, off, "ethernet");
	for (int i = 0; i < s->n_tags; i++) {
		put16(buf + off, (uint16_t)((s->pcp[i] << 13) | (s->vid[i] & 0x0fff)));
		put16(buf + off + 2, i + 1 < s->n_tags ? s->tpid[i + 1] : s->ethertype);
		off += 4;
		mark(lay, off, i == 0 ? "vlan1" : i == 1 ? "vlan2" : "vlan3");
	}
	ip_off = off;
	if (lay)
		lay->l3_off = ip_off;
	if (s->ethertype == 0x0800) {
		uint8_t *ip = buf + off;
		size_t hl = 20 + s->ip_opts;

		ip[0] = (uint8_t)(0x40 | (hl / 4));
		ip[1] = s->tos;
		ip[8] = 64;
		ip[9] = s->proto;
		memcpy(ip + 12, s->src, 4);
		memcpy(ip + 16, s->dst, 4);
		if (s->frag == 1)
			put16(ip + 6, 0x2000);       /* MF, offset 0 */
		else if (s->frag == 2)
			put16(ip + 6, 0x2000 | 185); /* MF, offset 1480 */
		for (size_t i = 20; i < hl; i++)
			ip[i] = 1; /* NOP options */
		off += 20;
		mark(lay, off, "ipv4");
		if (s->ip_opts) {
			off += s->ip_opts;
			mark(lay, off, "ipv4-options");
		}
		l4len = s->frag == 2 ? 0 : l4_header(s, buf + off);
		off += l4len;
		if (l4len)
			mark(lay, off, "l4");
		off += (size_t)s->payload;
		put16(ip + 2, (uint16_t)(off - ip_off));
		put16(ip + 10, ip_csum(ip, hl));
	} else if (s->ethertype == 0x86dd) {
		uint8_t *ip6 = buf + off;
		int stop = 0;

		ip6[0] = (uint8_t)(0x60 | (s->tos >> 4));
		ip6[1] = (uint8_t)(s->tos << 4);
		ip6[6] = s->n_ext ? s->ext[0] : s->proto;
		ip6[7] = 64;
		memcpy(ip6 + 8, s->src, 16);
		memcpy(ip6 + 24, s->dst, 16);
		off += 40;
		mark(lay, off, "ipv6");
		for (int i = 0; i < s->n_ext && !stop; i++) {
			uint8_t *h = buf + off, nh = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
			size_t len;

			h[0] = nh;
			if (s->ext[i] == 44) {
				len = 8;
				if (s->frag == 2) {
					put16(h + 2, (185 << 3) | 1);
					stop = 1;
				} else if (s->frag == 1) {
					put16(h + 2, 1);
				}
			} else if (s->ext[i] == 51) {
				h[1] = s->ext_len[i];
				len = ((size_t)s->ext_len[i] + 2) * 4;
			} else {
				h[1] = s->ext_len[i];
				len = ((size_t)s->ext_len[i] + 1) * 8;
			}
			off += len;
			mark(lay, off, "ipv6-ext");
		}
		l4len = stop ? 0 : l4_header(s, buf + off);
		off += l4len;
		if (l4len)
			mark(lay, off, "l4");
		off += (size_t)s->payload;
		put16(ip6 + 4, (uint16_t)(off - ip_off - 40));
	} else {
		off += 28 + (size_t)s->payload; /* ARP-sized body */
	}
	if (off < 60)
		off = 60; /* minimum Ethernet frame without FCS */
	mark(lay, off, "end");
	return off;
}

int test_run(int prog_fd, const uint8_t *frame, size_t len, uint32_t repeat, uint32_t *duration)
{
	uint8_t out[FRAME_MAX + 256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -1;
	if (duration)
		*duration = o.duration;
	return (int)o.retval;
}

int test_run_on(int prog_fd, const uint8_t *frame, size_t len, uint32_t ifindex)
{
	uint8_t out[FRAME_MAX + 256];
	/* the kernel takes data 0 and data_end = the frame's length; it finds the link's queue 0 */
	struct xdp_md ctx = { .data = 0, .data_end = (uint32_t)len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -1;
	return (int)o.retval;
}

int percpu_read(int map_fd, uint32_t key, uint64_t *out, int nfields)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *v = calloc((size_t)ncpu * (size_t)nfields, sizeof(uint64_t));

	memset(out, 0, sizeof(uint64_t) * (size_t)nfields);
	if (!v || bpf_map_lookup_elem(map_fd, &key, v)) {
		free(v);
		return -1;
	}
	for (int c = 0; c < ncpu; c++)
		for (int f = 0; f < nfields; f++)
			out[f] += v[c * nfields + f];
	free(v);
	return 0;
}

void hex(const uint8_t *p, size_t n, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%02x", p[i]);
	buf[o] = '\0';
}

int percpu_table(int fd, uint32_t entries, uint64_t out[][2], uint64_t tot[2])
{
	int ncpu = libbpf_num_possible_cpus();
	uint32_t *keys = calloc(entries, sizeof(*keys)), count = entries, batch = 0;
	uint64_t *v = calloc((size_t)entries * (size_t)ncpu * 2, sizeof(uint64_t));
	int rc = -1;

	tot[0] = tot[1] = 0;
	if (!keys || !v)
		goto out;
	if (bpf_map_lookup_batch(fd, NULL, &batch, keys, v, &count, NULL) && errno != ENOENT)
		goto out;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t p = 0, b = 0;

		for (int c = 0; c < ncpu; c++) {
			p += v[((size_t)i * (size_t)ncpu + (size_t)c) * 2];
			b += v[((size_t)i * (size_t)ncpu + (size_t)c) * 2 + 1];
		}
		if (out && keys[i] < entries) {
			out[keys[i]][0] = p;
			out[keys[i]][1] = b;
		}
		tot[0] += p;
		tot[1] += b;
	}
	rc = 0;
out:
	free(keys);
	free(v);
	return rc;
}

int guard_counters(int stats_fd, int vlans_fd, uint64_t out[][2])
{
	uint64_t all[2], frames[2];

	memset(out, 0, sizeof(uint64_t) * 2 * DP_STAT_MAX);
	if (percpu_table(stats_fd, DP_STAT_MAX, out, all) || percpu_table(vlans_fd, DP_VLAN_IDS, NULL, frames))
		return -1;
	out[DP_STAT_PASS][0] = frames[0] - (all[0] - out[DP_STAT_PASS][0]);
	out[DP_STAT_PASS][1] = frames[1] - (all[1] - out[DP_STAT_PASS][1]);
	return 0;
}
