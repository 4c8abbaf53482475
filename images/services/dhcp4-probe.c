// SPDX-License-Identifier: Apache-2.0
/*
 * dhcp4-probe LINK CIDR TIMEOUT_MS
 *
 * Asks the DHCPv4 server of a segment, from the router itself, whether it answers: sends one DHCPDISCOVER out of
 * LINK through a packet socket and waits for the matching DHCPOFFER. The offer is only read, never requested, so no
 * lease is taken (RFC 2131 §4.3.1: a server commits an address only on DHCPREQUEST). The client hardware address is
 * a random locally administered one, so the probe is never mistaken for a real client.
 *
 * Why a packet socket that sees every frame (ETH_P_ALL): a DHCP server on the same host (Kea with raw sockets) takes
 * the discover as an outgoing frame on LINK and sends its offer through its own packet socket, which never reaches
 * this host's UDP stack; an ETH_P_ALL socket is handed the server's outgoing frames (packet(7)), and the frames of
 * another server on the wire as well.
 *
 * Prints one line: `offer ADDRESS from SERVER` (exit 0) when the offered address is inside CIDR; otherwise a line
 * saying what was wrong (exit 1: no offer in time, or an offer outside CIDR); exit 2 on bad arguments or a socket
 * error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BOOTP_LEN 236
#define DHCP_MAGIC 0x63825363u
#define DHCPDISCOVER 1
#define DHCPOFFER 2

struct probe {
	int ifindex;
	uint8_t link_mac[6];
	uint8_t chaddr[6];
	uint32_t xid;
	uint32_t net, mask;
};

/*
 * ip_checksum: the Internet checksum (RFC 1071) of LEN bytes at DATA, in network order. LEN is even (an IPv4 header).
 */
static uint16_t ip_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/*
 * parse_cidr: reads "a.b.c.d/len" into a network address and mask (host order). Returns 0, or -1 when it is not one.
 */
static int parse_cidr(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	struct in_addr a;
	char *end;
	long len = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, buf, &a) != 1 || *end || end == slash + 1 || len < 0 || len > 32)
		return -1;
	*mask = len == 0 ? 0 : 0xffffffffu << (32 - len);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}

/*
 * build_discover: writes an Ethernet broadcast frame carrying a DHCPDISCOVER from 0.0.0.0:68 to 255.255.255.255:67
 * (broadcast flag set, the probe's xid and chaddr) into BUF (at least 300 bytes). Returns the frame's length.
 */
static size_t build_discover(const struct probe *p, uint8_t *buf)
{
	size_t dhcp_len = BOOTP_LEN + 4 + 3 + 1;
	size_t udp_len = sizeof(struct udphdr) + dhcp_len;
	size_t ip_len = sizeof(struct iphdr) + udp_len;
	memset(buf, 0, ETH_HLEN + ip_len);
	struct ether_header *eth = (struct ether_header *)buf;
	memset(eth->ether_dhost, 0xff, 6);
	memcpy(eth->ether_shost, p->link_mac, 6);
	eth->ether_type = htons(ETHERTYPE_IP);
	struct iphdr *ip = (struct iphdr *)(buf + ETH_HLEN);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons((uint16_t)ip_len);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->daddr = htonl(INADDR_BROADCAST);
	ip->check = ip_checksum(ip, sizeof(*ip));
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	udp->source = htons(68);
	udp->dest = htons(67);
	udp->len = htons((uint16_t)udp_len); /* checksum 0: none (RFC 768) */
	uint8_t *d = (uint8_t *)(udp + 1);
	d[0] = 1; /* BOOTREQUEST */
	d[1] = 1; /* Ethernet */
	d[2] = 6;
	memcpy(d + 4, &p->xid, 4);
	d[10] = 0x80; /* broadcast flag */
	memcpy(d + 28, p->chaddr, 6);
	uint32_t magic = htonl(DHCP_MAGIC);
	memcpy(d + BOOTP_LEN, &magic, 4);
	uint8_t *o = d + BOOTP_LEN + 4;
	o[0] = 53; /* message type */
	o[1] = 1;
	o[2] = DHCPDISCOVER;
	o[3] = 255;
	return ETH_HLEN + ip_len;
}

/*
 * offer_of: when FRAME (LEN bytes) is a DHCPOFFER for this probe (UDP 67 → 68, BOOTREPLY, our xid and chaddr,
 * message type 2), stores the offered address and the server identifier (0 when absent) in network order and
 * returns 1; otherwise 0. Reads nothing past LEN.
 */
static int offer_of(const struct probe *p, const uint8_t *frame, size_t len, uint32_t *yiaddr, uint32_t *server)
{
	if (len < ETH_HLEN + sizeof(struct iphdr))
		return 0;
	const struct ether_header *eth = (const struct ether_header *)frame;
	const struct iphdr *ip = (const struct iphdr *)(frame + ETH_HLEN);
	size_t ihl = (size_t)ip->ihl * 4;
	if (ntohs(eth->ether_type) != ETHERTYPE_IP || ip->version != 4 || ip->protocol != IPPROTO_UDP || ihl < 20)
		return 0;
	size_t at = ETH_HLEN + ihl;
	if (len < at + sizeof(struct udphdr) + BOOTP_LEN + 4)
		return 0;
	const struct udphdr *udp = (const struct udphdr *)(frame + at);
	if (ntohs(udp->source) != 67 || ntohs(udp->dest) != 68)
		return 0;
	const uint8_t *d = frame + at + sizeof(struct udphdr);
	uint32_t magic;
	memcpy(&magic, d + BOOTP_LEN, 4);
	if (d[0] != 2 || memcmp(d + 4, &p->xid, 4) || memcmp(d + 28, p->chaddr, 6) || ntohl(magic) != DHCP_MAGIC)
		return 0;
	const uint8_t *o = d + BOOTP_LEN + 4, *end = frame + len;
	int type = 0;
	*server = 0;
	while (o < end && *o != 255) {
		if (*o == 0) {
			o++;
			continue;
		}
		if (o + 2 > end || o + 2 + o[1] > end)
			break;
		if (o[0] == 53 && o[1] == 1)
			type = o[2];
		if (o[0] == 54 && o[1] == 4)
			memcpy(server, o + 2, 4);
		o += 2 + o[1];
	}
	if (type != DHCPOFFER)
		return 0;
	memcpy(yiaddr, d + 16, 4);
	return 1;
}

/* now_ms: a monotonic clock in milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * open_link: a packet socket bound to LINK that receives every frame on it (incoming and outgoing); fills the
 * probe's ifindex and the link's MAC. Returns the socket, or -1 with a message on stderr.
 */
static int open_link(const char *link, struct probe *p)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0) {
		fprintf(stderr, "dhcp4-probe: packet socket: %s (needs CAP_NET_RAW)\n", strerror(errno));
		return -1;
	}
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", link);
	p->ifindex = (int)if_nametoindex(link);
	if (!p->ifindex || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "dhcp4-probe: link %s: %s\n", link, strerror(errno));
		close(fd);
		return -1;
	}
	memcpy(p->link_mac, ifr.ifr_hwaddr.sa_data, 6);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = p->ifindex};
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "dhcp4-probe: bind to %s: %s\n", link, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * main: parses LINK CIDR TIMEOUT_MS, sends the discover, reads frames until the offer or the timeout; see the file
 * comment for the output and exit codes.
 */
int main(int argc, char **argv)
{
	struct probe p = {0};
	char *end;
	long timeout = argc == 4 ? strtol(argv[3], &end, 10) : -1;
	if (argc != 4 || *end || timeout <= 0 || parse_cidr(argv[2], &p.net, &p.mask) < 0) {
		fprintf(stderr, "usage: dhcp4-probe LINK IPV4-CIDR TIMEOUT_MS\n");
		return 2;
	}
	if (getrandom(&p.xid, sizeof(p.xid), 0) != sizeof(p.xid) ||
	    getrandom(p.chaddr, sizeof(p.chaddr), 0) != sizeof(p.chaddr)) {
		fprintf(stderr, "dhcp4-probe: getrandom: %s\n", strerror(errno));
		return 2;
	}
	p.chaddr[0] = (uint8_t)((p.chaddr[0] & 0xfc) | 0x02); /* locally administered, unicast */
	int fd = open_link(argv[1], &p);
	if (fd < 0)
		return 2;
	uint8_t frame[2048];
	size_t n = build_discover(&p, frame);
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = p.ifindex, .sll_halen = 6};
	memset(to.sll_addr, 0xff, 6);
	if (sendto(fd, frame, n, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		fprintf(stderr, "dhcp4-probe: send on %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	long long deadline = now_ms() + timeout;
	for (long long left; (left = deadline - now_ms()) > 0;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		ssize_t got = recv(fd, frame, sizeof(frame), 0);
		uint32_t yiaddr, server;
		if (got <= 0 || !offer_of(&p, frame, (size_t)got, &yiaddr, &server))
			continue;
		char a[INET_ADDRSTRLEN], s[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &yiaddr, a, sizeof(a));
		inet_ntop(AF_INET, &server, s, sizeof(s));
		if ((ntohl(yiaddr) & p.mask) != p.net) {
			printf("offered %s (from %s), which is outside %s\n", a, s, argv[2]);
			return 1;
		}
		printf("offer %s from %s\n", a, s);
		return 0;
	}
	printf("no DHCPv4 offer on %s within %ld ms\n", argv[1], timeout);
	return 1;
}
