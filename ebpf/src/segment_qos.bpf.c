// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Segment accounting and QoS marking: tc programs attached through tcx to a segment's link
 * (e.g. lan0.10), ingress and egress.
 *
 * Ingress (traffic entering the router from the segment): count, then set the DSCP of IP packets
 * to the segment's rewrite value, or, when the segment trusts 802.1p and the frame still carries
 * a tag (in the skb metadata or in the frame), to the DSCP mapped from its PCP.
 * Egress (traffic leaving towards the segment): count, then set skb->priority of IP packets from
 * the segment's DSCP -> priority rules (default when no rule matches); the VLAN device's
 * egress-qos-map turns the priority into 802.1p.
 *
 * Both return TC_ACT_UNSPEC (TCX_NEXT): the programs never decide a packet's fate and leave the
 * rest of the tcx chain (e.g. Cilium) to run.
 */
#include <linux/bpf.h>
#include <stddef.h>
#include <linux/pkt_cls.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dp_shared.h"
#include "parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* ifindex */
	__type(value, struct dp_seg_policy);
} dp_seg_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_VLAN_IDS);
	__type(key, __u32); /* segment_id */
	__type(value, struct dp_seg_counter);
} dp_seg_stats SEC(".maps");

struct l3_info {
	__u16 proto;    /* ETH_P_IP / ETH_P_IPV6 / other */
	__u8 tagged;    /* a VLAN tag was seen (metadata or in-band) */
	__u8 pcp;
	__u32 l3_off;   /* offset of the IP header from skb->data */
};

/* Locates the IP header of an skb whose data starts at the Ethernet header. */
static __always_inline int locate_l3(struct __sk_buff *skb, struct l3_info *li)
{
	struct cursor c = { .pos = (void *)(long)skb->data, .end = (void *)(long)skb->data_end };
	struct l2_info l2;

	if (parse_l2(&c, &l2) < 0)
		return -1;
	li->proto = bpf_ntohs(l2.proto);
	li->l3_off = c.pos - (void *)(long)skb->data;
	if (skb->vlan_present) {
		li->tagged = 1;
		li->pcp = (skb->vlan_tci >> 13) & 7;
	} else {
		li->tagged = l2.tags > 0;
		li->pcp = l2.pcp;
	}
	return 0;
}

/* Reads the DSCP of the IP header at li->l3_off; -1 for non-IP or truncated packets. */
static __always_inline int read_dscp(struct __sk_buff *skb, const struct l3_info *li)
{
	struct cursor c = { .pos = (void *)(long)skb->data, .end = (void *)(long)skb->data_end };
	__u8 *h;

	if (li->proto != ETH_P_IP && li->proto != ETH_P_IPV6)
		return -1;
	if (!cur_pull(&c, li->l3_off & 0x3f))
		return -1;
	h = cur_pull(&c, 2);
	if (!h)
		return -1;
	if (li->proto == ETH_P_IP)
		return h[1] >> 2;
	return ((h[0] & 0x0f) << 2) | (h[1] >> 6);
}

/* Writes DSCP dscp into the IP header (IPv4 with checksum fix-up); no-op when unchanged. */
static __always_inline void write_dscp(struct __sk_buff *skb, const struct l3_info *li, __u8 dscp)
{
	struct cursor c = { .pos = (void *)(long)skb->data, .end = (void *)(long)skb->data_end };
	__u8 *h;

	if (!cur_pull(&c, li->l3_off & 0x3f))
		return;
	h = cur_pull(&c, 2);
	if (!h)
		return;
	if (li->proto == ETH_P_IP) {
		__u16 old = bpf_htons(((__u16)h[0] << 8) | h[1]);
		__u8 tos = (h[1] & 3) | (dscp << 2);
		__u16 new = bpf_htons(((__u16)h[0] << 8) | tos);

		if (tos == h[1])
			return;
		h[1] = tos;
		bpf_l3_csum_replace(skb, (li->l3_off & 0x3f) + offsetof(struct iphdr, check), old, new, 2);
	} else {
		__u8 b0 = (h[0] & 0xf0) | (dscp >> 2);
		__u8 b1 = (h[1] & 0x3f) | ((dscp & 3) << 6);

		h[0] = b0;
		h[1] = b1;
	}
}

SEC("tc")
int segment_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct dp_seg_policy *pol = bpf_map_lookup_elem(&dp_seg_policy, &ifindex);
	struct dp_seg_counter *ct;
	struct l3_info li;
	__u32 sid;
	int dscp;

	if (!pol)
		return TC_ACT_UNSPEC;
	sid = pol->segment_id & (DP_VLAN_IDS - 1);
	ct = bpf_map_lookup_elem(&dp_seg_stats, &sid);
	if (ct) {
		ct->in_packets++;
		ct->in_bytes += skb->len;
	}
	if (pol->rewrite_dscp == DP_SEG_KEEP_DSCP && !pol->trust_pcp)
		return TC_ACT_UNSPEC;
	if (locate_l3(skb, &li) < 0)
		return TC_ACT_UNSPEC;
	dscp = read_dscp(skb, &li);
	if (dscp < 0)
		return TC_ACT_UNSPEC;
	if (pol->rewrite_dscp != DP_SEG_KEEP_DSCP)
		write_dscp(skb, &li, pol->rewrite_dscp & 0x3f);
	else if (li.tagged)
		write_dscp(skb, &li, pol->pcp_dscp[li.pcp & 7] & 0x3f);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int segment_egress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct dp_seg_policy *pol = bpf_map_lookup_elem(&dp_seg_policy, &ifindex);
	struct dp_seg_counter *ct;
	struct l3_info li;
	__u32 sid, prio;
	int dscp;

	if (!pol)
		return TC_ACT_UNSPEC;
	sid = pol->segment_id & (DP_VLAN_IDS - 1);
	ct = bpf_map_lookup_elem(&dp_seg_stats, &sid);
	if (ct) {
		ct->out_packets++;
		ct->out_bytes += skb->len;
	}
	if (locate_l3(skb, &li) < 0)
		return TC_ACT_UNSPEC;
	dscp = read_dscp(skb, &li);
	if (dscp < 0)
		return TC_ACT_UNSPEC;
	prio = pol->dscp_priority[dscp & 63];
	skb->priority = prio == DP_SEG_NO_RULE ? pol->default_priority : prio;
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
