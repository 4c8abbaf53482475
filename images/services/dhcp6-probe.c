// SPDX-License-Identifier: Apache-2.0
/*
 * dhcp6-probe LINK START-END TIMEOUT_MS       (stateful: a segment whose DHCPv6 server hands out addresses)
 * dhcp6-probe -i LINK DNS|- TIMEOUT_MS        (stateless: a segment whose DHCPv6 server hands out options only)
 *
 * Asks the DHCPv6 server of a segment, from the router itself, whether it answers, as a client on the link would
 * (RFC 8415): from LINK's link-local address, UDP port 546, to All_DHCP_Relay_Agents_and_Servers (ff02::1:2) port
 * 547, with a fresh client DUID (DUID-LL of a random locally administered MAC, so the probe is never mistaken for a
 * real client) and a fresh transaction id.
 *   stateful:  sends one SOLICIT with an IA_NA and reads the ADVERTISE (§18.2.1; no Rapid Commit option, so the
 *              server never commits a lease). It is never followed by a REQUEST: no lease is taken. The advertise
 *              must carry an IA_NA address inside START-END (the segment's pool) and no status NoAddrsAvail.
 *   stateless: sends one INFORMATION-REQUEST (§18.2.6) asking for the DNS servers option (ORO) and reads the REPLY;
 *              it must carry the DNS recursive name server option (RFC 3646) naming DNS (`-`: any reply will do).
 * The server answers to the client's link-local address and port 546 (§7.2): the probe binds that address (with
 * LINK as its scope) and port on LINK only (SO_BINDTODEVICE), with SO_REUSEADDR, so a DHCPv6 client holding port 546
 * on another link (a WAN's) keeps its socket and the probe still binds. Binding port 546 needs
 * CAP_NET_BIND_SERVICE.
 *
 * Prints one line: `advertise ADDRESS from SERVER` / `reply from SERVER with DNS A[, B…]` (exit 0); otherwise a line
 * saying what was wrong (exit 1: no answer in time, an address outside the pool, a status code instead of an
 * address, no or another DNS server); exit 2 on bad arguments or a socket error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_PORT 546
#define SERVER_PORT 547
#define SOLICIT 1
#define ADVERTISE 2
#define REPLY 7
#define INFORMATION_REQUEST 11
#define OPT_CLIENTID 1
#define OPT_IA_NA 3
#define OPT_IAADDR 5
#define OPT_ORO 6
#define OPT_ELAPSED_TIME 8
#define OPT_STATUS_CODE 13
#define OPT_DNS_SERVERS 23
#define OPT_DOMAIN_LIST 24
#define DUID_LEN 10 /* DUID-LL: type 3, hardware type 1, a 6-byte MAC */
#define IAID 1

struct probe {
	int stateless;
	const char *link;
	int ifindex;
	uint8_t xid[3];
	uint8_t duid[DUID_LEN];
	struct in6_addr start, end; /* stateful: the pool */
	struct in6_addr dns;        /* stateless: the DNS server the reply must name */
	int any_dns;                /* stateless: `-`, any reply will do */
};

/* The text of a status code (RFC 8415 §21.13), for messages. */
static const char *status_name(unsigned code)
{
	static const char *names[] = {"Success",   "UnspecFail",   "NoAddrsAvail", "NoBinding",
				      "NotOnLink", "UseMulticast", "NoPrefixAvail"};
	return code < sizeof(names) / sizeof(names[0]) ? names[code] : "unknown status";
}

/*
 * put_option: appends an option (code, length, LEN bytes of DATA) at BUF + *AT and advances *AT. The caller
 * guarantees the room (the messages are a few dozen bytes in a 512-byte buffer).
 */
static void put_option(uint8_t *buf, size_t *at, uint16_t code, const void *data, uint16_t len)
{
	buf[*at] = (uint8_t)(code >> 8);
	buf[*at + 1] = (uint8_t)code;
	buf[*at + 2] = (uint8_t)(len >> 8);
	buf[*at + 3] = (uint8_t)len;
	if (len)
		memcpy(buf + *at + 4, data, len);
	*at += 4u + len;
}

/*
 * build_message: writes the probe's SOLICIT (client id, elapsed time 0, ORO, one IA_NA with IAID 1 and T1/T2 0) or
 * INFORMATION-REQUEST (client id, elapsed time 0, ORO) into BUF (at least 128 bytes). Returns its length.
 */
static size_t build_message(const struct probe *p, uint8_t *buf)
{
	size_t at = 4;
	buf[0] = p->stateless ? INFORMATION_REQUEST : SOLICIT;
	memcpy(buf + 1, p->xid, 3);
	put_option(buf, &at, OPT_CLIENTID, p->duid, DUID_LEN);
	static const uint8_t elapsed[2] = {0, 0};
	put_option(buf, &at, OPT_ELAPSED_TIME, elapsed, 2);
	static const uint8_t oro[4] = {0, OPT_DNS_SERVERS, 0, OPT_DOMAIN_LIST};
	put_option(buf, &at, OPT_ORO, oro, 4);
	if (!p->stateless) {
		uint8_t ia[12] = {0, 0, 0, IAID}; /* IAID, T1 0, T2 0: the server's choice (§21.4) */
		put_option(buf, &at, OPT_IA_NA, ia, sizeof(ia));
	}
	return at;
}

/*
 * find_option: the first option CODE among the LEN bytes of options at OPTS; stores its data's length in *OUT_LEN
 * and returns its data, or NULL when there is none (or the options are truncated). Reads nothing past LEN.
 */
static const uint8_t *find_option(const uint8_t *opts, size_t len, uint16_t code, size_t *out_len)
{
	size_t at = 0;
	while (at + 4 <= len) {
		uint16_t c = (uint16_t)(opts[at] << 8 | opts[at + 1]);
		size_t l = (size_t)(opts[at + 2] << 8 | opts[at + 3]);
		if (at + 4 + l > len)
			return NULL;
		if (c == code) {
			*out_len = l;
			return opts + at + 4;
		}
		at += 4 + l;
	}
	return NULL;
}

/*
 * status_of: the status code option among the LEN bytes of options at OPTS, as "NAME (message)" in OUT (SIZE
 * bytes); returns its code, or 0 (Success) when there is none.
 */
static unsigned status_of(const uint8_t *opts, size_t len, char *out, size_t size)
{
	size_t l;
	const uint8_t *s = find_option(opts, len, OPT_STATUS_CODE, &l);
	if (!s || l < 2)
		return 0;
	unsigned code = (unsigned)(s[0] << 8 | s[1]);
	snprintf(out, size, "%s (%.*s)", status_name(code), (int)(l - 2 > 200 ? 200 : l - 2), (const char *)s + 2);
	return code;
}

/* in_pool: 1 when A lies within the probe's pool (both ends included), else 0. */
static int in_pool(const struct probe *p, const struct in6_addr *a)
{
	return memcmp(a, &p->start, 16) >= 0 && memcmp(a, &p->end, 16) <= 0;
}

/*
 * check_advertise: judges an ADVERTISE's options (LEN bytes at OPTS) from SERVER: prints the verdict line and
 * returns 0 (an IA_NA address inside the pool) or 1.
 */
static int check_advertise(const struct probe *p, const uint8_t *opts, size_t len, const char *server)
{
	char status[256], a[INET6_ADDRSTRLEN];
	if (status_of(opts, len, status, sizeof(status))) {
		printf("advertise from %s carries status %s\n", server, status);
		return 1;
	}
	size_t ial, al;
	const uint8_t *ia = find_option(opts, len, OPT_IA_NA, &ial);
	if (!ia || ial < 12) {
		printf("advertise from %s carries no IA_NA\n", server);
		return 1;
	}
	if (status_of(ia + 12, ial - 12, status, sizeof(status))) {
		printf("advertise from %s carries no address: status %s\n", server, status);
		return 1;
	}
	const uint8_t *addr = find_option(ia + 12, ial - 12, OPT_IAADDR, &al);
	if (!addr || al < 24) {
		printf("advertise from %s carries an IA_NA without an address\n", server);
		return 1;
	}
	struct in6_addr got;
	memcpy(&got, addr, 16);
	inet_ntop(AF_INET6, &got, a, sizeof(a));
	if (!in_pool(p, &got)) {
		char s[INET6_ADDRSTRLEN], e[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &p->start, s, sizeof(s));
		inet_ntop(AF_INET6, &p->end, e, sizeof(e));
		printf("advertised %s (from %s), which is outside %s-%s\n", a, server, s, e);
		return 1;
	}
	printf("advertise %s from %s\n", a, server);
	return 0;
}

/*
 * check_reply: judges a REPLY's options (LEN bytes at OPTS) from SERVER to the information request: prints the
 * verdict line and returns 0 (the DNS servers option names the expected server, or any reply when none is expected)
 * or 1.
 */
static int check_reply(const struct probe *p, const uint8_t *opts, size_t len, const char *server)
{
	char status[256], list[8 * (INET6_ADDRSTRLEN + 2)] = "", a[INET6_ADDRSTRLEN];
	if (status_of(opts, len, status, sizeof(status))) {
		printf("reply from %s carries status %s\n", server, status);
		return 1;
	}
	size_t l;
	const uint8_t *dns = find_option(opts, len, OPT_DNS_SERVERS, &l);
	int found = 0;
	for (size_t i = 0; dns && i + 16 <= l && i < 8 * 16; i += 16) {
		struct in6_addr x;
		memcpy(&x, dns + i, 16);
		found |= !memcmp(&x, &p->dns, 16);
		inet_ntop(AF_INET6, &x, a, sizeof(a));
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", a);
	}
	if (p->any_dns || found) {
		printf("reply from %s with DNS %s\n", server, *list ? list : "(none)");
		return 0;
	}
	inet_ntop(AF_INET6, &p->dns, a, sizeof(a));
	if (!dns)
		printf("reply from %s carries no DNS servers option (expected %s)\n", server, a);
	else
		printf("reply from %s names DNS %s but not %s\n", server, list, a);
	return 1;
}

/*
 * answer_of: when MSG (LEN bytes) answers the probe (ADVERTISE to a solicit, REPLY to an information request; our
 * transaction id; our client id), returns its options and stores their length in *OPTS_LEN; otherwise NULL.
 */
static const uint8_t *answer_of(const struct probe *p, const uint8_t *msg, size_t len, size_t *opts_len)
{
	if (len < 4 || msg[0] != (p->stateless ? REPLY : ADVERTISE) || memcmp(msg + 1, p->xid, 3))
		return NULL;
	size_t l;
	const uint8_t *id = find_option(msg + 4, len - 4, OPT_CLIENTID, &l);
	if (!id || l != DUID_LEN || memcmp(id, p->duid, DUID_LEN))
		return NULL;
	*opts_len = len - 4;
	return msg + 4;
}

/* now_ms: a monotonic clock in milliseconds. */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* readable_before: 1 once FD has a datagram to read, 0 when DEADLINE (now_ms) passes first. */
static int readable_before(int fd, long long deadline)
{
	long long left;
	while ((left = deadline - now_ms()) > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)left) > 0)
			return 1;
	}
	return 0;
}

/*
 * link_local: stores LINK's (first) link-local address in *OUT. Returns 0, or -1 with a message on stderr when the
 * link has none (IPv6 off, or the address is still tentative).
 */
static int link_local(const char *link, struct in6_addr *out)
{
	struct ifaddrs *all, *i;
	if (getifaddrs(&all) < 0) {
		fprintf(stderr, "dhcp6-probe: getifaddrs: %s\n", strerror(errno));
		return -1;
	}
	int found = 0;
	for (i = all; i && !found; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 && !strcmp(i->ifa_name, link)) {
			const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(a)) {
				*out = *a;
				found = 1;
			}
		}
	freeifaddrs(all);
	if (!found)
		fprintf(stderr, "dhcp6-probe: link %s has no link-local IPv6 address\n", link);
	return found ? 0 : -1;
}

/*
 * open_link: a UDP socket on LINK only, bound to the link's link-local address and port 546, sending its multicast
 * out of LINK. Returns the socket, or -1 with a message on stderr.
 */
static int open_link(struct probe *p)
{
	struct sockaddr_in6 me = {.sin6_family = AF_INET6, .sin6_port = htons(CLIENT_PORT)};
	p->ifindex = (int)if_nametoindex(p->link);
	if (!p->ifindex) {
		fprintf(stderr, "dhcp6-probe: link %s: %s\n", p->link, strerror(errno));
		return -1;
	}
	if (link_local(p->link, &me.sin6_addr) < 0)
		return -1;
	me.sin6_scope_id = (uint32_t)p->ifindex;
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1, hops = 1;
	if (fd < 0) {
		fprintf(stderr, "dhcp6-probe: socket: %s\n", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, p->link, (socklen_t)strlen(p->link)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &p->ifindex, sizeof(p->ifindex)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0) {
		fprintf(stderr, "dhcp6-probe: socket options on %s: %s\n", p->link, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		int denied = errno == EACCES || errno == EPERM;
		fprintf(stderr, "dhcp6-probe: bind to port %d on %s: %s%s\n", CLIENT_PORT, p->link, strerror(errno),
			denied ? " (needs CAP_NET_BIND_SERVICE)" : "");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * parse_args: fills the probe from the command line (see the file comment) and the timeout in *TIMEOUT. Returns 0,
 * or -1 after printing the usage.
 */
static int parse_args(int argc, char **argv, struct probe *p, long *timeout)
{
	int i = argc > 1 && !strcmp(argv[1], "-i");
	p->stateless = i;
	char *end = NULL, *dash;
	if (argc != 4 + i || !*argv[1 + i])
		goto usage;
	p->link = argv[1 + i];
	*timeout = strtol(argv[3 + i], &end, 10);
	if (*end || *timeout <= 0 || *timeout > 60000)
		goto usage;
	if (p->stateless) {
		p->any_dns = !strcmp(argv[3], "-");
		if (p->any_dns || inet_pton(AF_INET6, argv[3], &p->dns) == 1)
			return 0;
		goto usage;
	}
	char range[2 * INET6_ADDRSTRLEN];
	snprintf(range, sizeof(range), "%s", argv[2]);
	dash = strchr(range, '-');
	if (!dash)
		goto usage;
	*dash = 0;
	if (inet_pton(AF_INET6, range, &p->start) == 1 && inet_pton(AF_INET6, dash + 1, &p->end) == 1 &&
	    memcmp(&p->start, &p->end, 16) <= 0)
		return 0;
usage:
	fprintf(stderr, "usage: dhcp6-probe LINK IPV6-START-END TIMEOUT_MS | dhcp6-probe -i LINK DNS|- TIMEOUT_MS\n");
	return -1;
}

/*
 * main: parses the arguments, sends the one message, reads datagrams until the answer or the timeout; see the file
 * comment for the output and exit codes.
 */
int main(int argc, char **argv)
{
	struct probe p = {0};
	long timeout = 0;
	if (parse_args(argc, argv, &p, &timeout) < 0)
		return 2;
	uint8_t mac[6];
	if (getrandom(p.xid, sizeof(p.xid), 0) != sizeof(p.xid) || getrandom(mac, sizeof(mac), 0) != sizeof(mac)) {
		fprintf(stderr, "dhcp6-probe: getrandom: %s\n", strerror(errno));
		return 2;
	}
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered, unicast */
	const uint8_t duid_ll[4] = {0, 3, 0, 1};    /* DUID-LL (RFC 8415 §11.4), Ethernet */
	memcpy(p.duid, duid_ll, 4);
	memcpy(p.duid + 4, mac, 6);
	int fd = open_link(&p);
	if (fd < 0)
		return 2;
	uint8_t msg[1500];
	size_t n = build_message(&p, msg);
	struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons(SERVER_PORT)};
	inet_pton(AF_INET6, "ff02::1:2", &to.sin6_addr);
	to.sin6_scope_id = (uint32_t)p.ifindex;
	if (sendto(fd, msg, n, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		fprintf(stderr, "dhcp6-probe: send on %s: %s\n", p.link, strerror(errno));
		return 2;
	}
	long long deadline = now_ms() + timeout;
	while (readable_before(fd, deadline)) {
		struct sockaddr_in6 from;
		socklen_t fl = sizeof(from);
		ssize_t got = recvfrom(fd, msg, sizeof(msg), 0, (struct sockaddr *)&from, &fl);
		size_t ol;
		const uint8_t *opts = got > 0 ? answer_of(&p, msg, (size_t)got, &ol) : NULL;
		if (!opts)
			continue;
		char server[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &from.sin6_addr, server, sizeof(server));
		return p.stateless ? check_reply(&p, opts, ol, server) : check_advertise(&p, opts, ol, server);
	}
	printf("no DHCPv6 %s on %s within %ld ms\n", p.stateless ? "reply" : "advertise", p.link, timeout);
	return 1;
}
