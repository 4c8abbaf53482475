/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header cursor shared by the XDP and tc programs. Every read of packet bytes goes through
 * cur_pull(): it is the one place that compares against data_end.
 */
#ifndef DP_PARSE_H
#define DP_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct cursor {
	void *pos;
	void *end;
};

/* Ethernet header with a 2-byte aligned EtherType (linux/if_ether.h's ethhdr is packed, so the
 * compiler reads its EtherType a byte at a time). */
struct eth_hdr {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 proto;
};

struct vlan_tag {
	__be16 tci;
	__be16 inner_proto;
};

/*
 * Returns a pointer to the next len bytes and advances past them, or NULL (cursor unchanged) when
 * fewer than len bytes remain. len may be a bounded variable (option/extension lengths); only a
 * constant len makes the returned bytes readable for the verifier.
 */
static __always_inline void *cur_pull(struct cursor *c, __u32 len)
{
	void *p = c->pos;

	/* packet pointers are never NULL: lets the compiler drop the callers' NULL tests on success */
	__builtin_assume(p != NULL);
	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

struct l2_info {
	__be16 proto;    /* EtherType after the VLAN tags, network order (compare with bpf_htons) */
	__u16 outer_vid; /* 0 = untagged */
	__u8 tags;
	__u8 pcp;        /* PCP of the outer tag (valid when tags > 0) */
};

/* An 802.1Q or 802.1ad tag protocol identifier (network order). */
static __always_inline int is_vlan_tpid(__be16 p)
{
	return p == bpf_htons(ETH_P_8021Q) || p == bpf_htons(ETH_P_8021AD);
}

/*
 * Parses Ethernet and up to two VLAN tags (802.1Q or 802.1ad, in any order). Returns 0 with *l2
 * filled, or -1 when a header is truncated or a third tag follows; outer_vid is set as soon as the
 * outer tag has been read, so the caller can still account a malformed frame to its VLAN.
 *
 * EtherTypes stay in network order (the constants are swapped at compile time, not each value at
 * run time), and only a frame with two tags is checked for a third.
 */
static __always_inline int parse_l2(struct cursor *c, struct l2_info *l2)
{
	struct eth_hdr *eth = cur_pull(c, sizeof(*eth));
	struct vlan_tag *tag;
	__be16 proto;
	__u16 tci;

	l2->outer_vid = 0;
	l2->tags = 0;
	l2->pcp = 0;
	if (!eth)
		return -1;
	proto = eth->proto;
	if (is_vlan_tpid(proto)) {
		tag = cur_pull(c, sizeof(*tag));
		if (!tag)
			return -1;
		tci = bpf_ntohs(tag->tci);
		l2->outer_vid = tci & 0x0fff;
		l2->pcp = tci >> 13;
		l2->tags = 1;
		proto = tag->inner_proto;
		if (is_vlan_tpid(proto)) {
			tag = cur_pull(c, sizeof(*tag));
			if (!tag)
				return -1;
			l2->tags = 2;
			proto = tag->inner_proto;
			if (is_vlan_tpid(proto))
				return -1;
		}
	}
	l2->proto = proto;
	return 0;
}

#endif /* DP_PARSE_H */
