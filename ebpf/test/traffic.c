// SPDX-License-Identifier: Apache-2.0
/*
 * Traffic for the network-namespace tests.
 *
 *   traffic send --ifname IF --dst-mac MAC --src IP --dst IP --port P [--sport S] --tag T --count N --pps R
 *       Sends N Ethernet/IPv4/UDP frames (any source address and port, spoofed ones included) through
 *       a packet socket, from port S (default 40000); the payload carries the tag and a sequence
 *       number. Prints {"sent":N}.
 *   traffic sink --port P [--seconds S]
 *       Counts UDP datagrams per tag until S seconds pass or SIGTERM/SIGINT; prints {"ready":true}
 *       once listening, and at the end {"tags":{"T":{"received":N,"distinct":M},...}}.
 *   traffic echo --port P
 *       Answers every UDP datagram and every TCP connection on port P (IPv4 and IPv6) with the
 *       address it came from, as the server sees it (after any NAT). Prints {"ready":true}.
 *   traffic ask --dst IP --port P [--tcp] [--sport S] [--count N] [--interval-ms I] [--timeout-ms T]
 *       Asks the echo server N times, I ms apart (UDP: all from one socket, so one flow, from
 *       source port S if given; TCP: one connection each) and prints one line per question:
 *       {"i":K,"t":SECONDS,"seen_as":"ADDR"} or {"i":K,"t":SECONDS,"error":"..."}.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x44505431u /* "DPT1" */
#define MAX_TAGS 16
#define MAX_SEQ (1u << 22)

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

static uint16_t csum16(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += ((uint32_t)p[i] << 8) | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int send_mode(int argc, char **argv)
{
	const char *ifname = arg(argc, argv, "--ifname", NULL), *mac = arg(argc, argv, "--dst-mac", NULL);
	const char *src = arg(argc, argv, "--src", NULL), *dst = arg(argc, argv, "--dst", NULL);
	unsigned port = (unsigned)atoi(arg(argc, argv, "--port", "9999"));
	unsigned sport = (unsigned)atoi(arg(argc, argv, "--sport", "40000"));
	uint32_t tag = (uint32_t)strtoul(arg(argc, argv, "--tag", "1"), NULL, 0);
	long count = atol(arg(argc, argv, "--count", "1000")), pps = atol(arg(argc, argv, "--pps", "1000"));
	uint8_t f[64] = { 0 }, *ip = f + 14, *udp = f + 34;
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
	struct ifreq ifr = { 0 };
	struct timespec next;
	unsigned m[6];
	long sent = 0;
	int fd;

	if (!ifname || !mac || !src || !dst || sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
		fprintf(stderr, "usage: traffic send --ifname IF --dst-mac MAC --src IP --dst IP [--port P] [--sport S] "
				"[--tag T] [--count N] [--pps R]\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "%s: %s\n", ifname, strerror(errno));
		return 2;
	}
	for (int i = 0; i < 6; i++)
		f[i] = (uint8_t)m[i];
	memcpy(f + 6, ifr.ifr_hwaddr.sa_data, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 20 + 8 + 12;
	ip[8] = 64;
	ip[9] = 17;
	if (inet_pton(AF_INET, src, ip + 12) != 1 || inet_pton(AF_INET, dst, ip + 16) != 1) {
		fprintf(stderr, "bad address\n");
		return 2;
	}
	ip[10] = ip[11] = 0;
	{
		uint16_t c = csum16(ip, 20);

		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
	}
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = (uint8_t)(port >> 8);
	udp[3] = (uint8_t)port;
	udp[5] = 8 + 12;
	{
		uint32_t be = htonl(MAGIC), t = htonl(tag);

		memcpy(udp + 8, &be, 4);
		memcpy(udp + 12, &t, 4);
	}
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	memcpy(sll.sll_addr, f, 6);
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long i = 0; i < count; i++) {
		uint32_t seq = htonl((uint32_t)i);

		memcpy(udp + 16, &seq, 4);
		if (sendto(fd, f, 60, 0, (struct sockaddr *)&sll, sizeof(sll)) == 60)
			sent++;
		next.tv_nsec += 1000000000L / pps;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	printf("{\"sent\":%ld,\"tag\":%u}\n", sent, tag);
	return sent == count ? 0 : 1;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int sink_mode(int argc, char **argv)
{
	unsigned port = (unsigned)atoi(arg(argc, argv, "--port", "9999"));
	double seconds = atof(arg(argc, argv, "--seconds", "3600"));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	static uint8_t seen[MAX_TAGS][MAX_SEQ / 8];
	uint64_t received[MAX_TAGS] = { 0 }, distinct[MAX_TAGS] = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), buf = 8 << 20, first = 1;
	struct timespec t0, now;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "bind port %u: %s\n", port, strerror(errno));
		return 2;
	}
	printf("{\"ready\":true}\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint8_t d[64];
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		while ((n = recv(fd, d, sizeof(d), MSG_DONTWAIT)) >= 12) {
			uint32_t magic, tag, seq;

			memcpy(&magic, d, 4);
			memcpy(&tag, d + 4, 4);
			memcpy(&seq, d + 8, 4);
			magic = ntohl(magic);
			tag = ntohl(tag);
			seq = ntohl(seq);
			if (magic != MAGIC || tag >= MAX_TAGS || seq >= MAX_SEQ)
				continue;
			received[tag]++;
			if (!(seen[tag][seq / 8] & (1u << (seq % 8)))) {
				seen[tag][seq / 8] |= (uint8_t)(1u << (seq % 8));
				distinct[tag]++;
			}
		}
	}
	printf("{\"tags\":{");
	for (int t = 0; t < MAX_TAGS; t++) {
		if (!received[t])
			continue;
		printf("%s\"%d\":{\"received\":%llu,\"distinct\":%llu}", first ? "" : ",", t, (unsigned long long)received[t],
		       (unsigned long long)distinct[t]);
		first = 0;
	}
	printf("}}\n");
	return 0;
}

/* Text of a peer address; IPv4-mapped IPv6 addresses are shown as IPv4. */
static void peer_text(const struct sockaddr_in6 *sa, char *buf, size_t len)
{
	if (IN6_IS_ADDR_V4MAPPED(&sa->sin6_addr))
		inet_ntop(AF_INET, &sa->sin6_addr.s6_addr[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, &sa->sin6_addr, buf, (socklen_t)len);
}

/* Answers one datagram waiting on u with its source address, sent from the address it was sent to. */
static void echo_udp(int u, int v6)
{
	char d[512], ctl[256], text[INET6_ADDRSTRLEN + 2];
	struct sockaddr_storage peer;
	struct iovec iov = { .iov_base = d, .iov_len = sizeof(d) };
	struct msghdr mh = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;

	if (recvmsg(u, &mh, MSG_DONTWAIT) < 0)
		return;
	if (v6)
		peer_text((struct sockaddr_in6 *)&peer, text, sizeof(text));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, text, sizeof(text));
	/* reply with the received packet info: the answer leaves from the address that was asked */
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);

			pi->ipi_spec_dst = pi->ipi_addr;
			pi->ipi_ifindex = 0;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			((struct in6_pktinfo *)CMSG_DATA(c))->ipi6_ifindex = 0;
		}
	}
	iov.iov_base = text;
	iov.iov_len = strlen(text);
	sendmsg(u, &mh, 0);
}

/* traffic echo: see the top of the file. */
static int echo_mode(int argc, char **argv)
{
	unsigned port = (unsigned)atoi(arg(argc, argv, "--port", "7777"));
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int u4 = socket(AF_INET, SOCK_DGRAM, 0), u6 = socket(AF_INET6, SOCK_DGRAM, 0), t = socket(AF_INET6, SOCK_STREAM, 0);
	int off = 0, on = 1;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (u4 < 0 || u6 < 0 || t < 0)
		return 2;
	setsockopt(u6, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	setsockopt(u4, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	setsockopt(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
	setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(u4, (struct sockaddr *)&a4, sizeof(a4)) || bind(u6, (struct sockaddr *)&a6, sizeof(a6)) ||
	    bind(t, (struct sockaddr *)&a6, sizeof(a6)) || listen(t, 64)) {
		fprintf(stderr, "bind port %u: %s\n", port, strerror(errno));
		return 2;
	}
	printf("{\"ready\":true}\n");
	fflush(stdout);
	while (!stop) {
		struct pollfd p[3] = { { .fd = u4, .events = POLLIN }, { .fd = u6, .events = POLLIN }, { .fd = t, .events = POLLIN } };
		struct sockaddr_in6 peer;
		socklen_t plen = sizeof(peer);
		char text[INET6_ADDRSTRLEN + 2];

		if (poll(p, 3, 200) <= 0)
			continue;
		if (p[0].revents & POLLIN)
			echo_udp(u4, 0);
		if (p[1].revents & POLLIN)
			echo_udp(u6, 1);
		if (p[2].revents & POLLIN) {
			int c = accept(t, (struct sockaddr *)&peer, &plen);

			if (c >= 0) {
				peer_text(&peer, text, sizeof(text));
				if (write(c, text, strlen(text)) < 0)
					fprintf(stderr, "write: %s\n", strerror(errno));
				close(c);
			}
		}
	}
	return 0;
}

/* Monotonic time in seconds. */
static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits up to ms for fd to become ready for events; 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, ms) > 0 && (p.revents & events);
}

/* traffic ask: see the top of the file. */
static int ask_mode(int argc, char **argv)
{
	const char *dst = arg(argc, argv, "--dst", NULL);
	unsigned port = (unsigned)atoi(arg(argc, argv, "--port", "7777")), sport = (unsigned)atoi(arg(argc, argv, "--sport", "0"));
	long count = atol(arg(argc, argv, "--count", "1"));
	int interval = atoi(arg(argc, argv, "--interval-ms", "200")), timeout = atoi(arg(argc, argv, "--timeout-ms", "1000"));
	int tcp = 0, fd = -1;
	struct sockaddr_storage sa = { 0 };
	socklen_t salen;
	double t0 = mono();

	for (int i = 2; i < argc; i++)
		tcp |= !strcmp(argv[i], "--tcp");
	if (!dst) {
		fprintf(stderr, "usage: traffic ask --dst IP --port P [--tcp] [--sport S] [--count N] [--interval-ms I] "
				"[--timeout-ms T]\n");
		return 2;
	}
	if (inet_pton(AF_INET, dst, &((struct sockaddr_in *)&sa)->sin_addr) == 1) {
		((struct sockaddr_in *)&sa)->sin_family = AF_INET;
		((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
		salen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, dst, &((struct sockaddr_in6 *)&sa)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&sa)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
		salen = sizeof(struct sockaddr_in6);
	} else {
		fprintf(stderr, "bad address %s\n", dst);
		return 2;
	}
	for (long i = 0; i < count; i++) {
		char reply[128] = "", err[64] = "";
		ssize_t n = -1;

		if (i)
			usleep((useconds_t)interval * 1000);
		if (!tcp && fd < 0) {
			/* one socket for every question: one UDP flow (one conntrack entry) */
			fd = socket(sa.ss_family, SOCK_DGRAM, 0);
			if (sport) {
				struct sockaddr_storage b = { .ss_family = sa.ss_family };

				((struct sockaddr_in *)&b)->sin_port = htons((uint16_t)sport); /* same offset in both */
				if (bind(fd, (struct sockaddr *)&b, salen))
					return 2;
			}
			if (connect(fd, (struct sockaddr *)&sa, salen))
				return 2;
		}
		if (tcp) {
			fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
			if (connect(fd, (struct sockaddr *)&sa, salen) && errno != EINPROGRESS) {
				snprintf(err, sizeof(err), "%s", strerror(errno));
			} else if (!wait_fd(fd, POLLOUT, timeout)) {
				snprintf(err, sizeof(err), "connect timeout");
			} else {
				int e = 0;
				socklen_t el = sizeof(e);

				getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e)
					snprintf(err, sizeof(err), "%s", strerror(e));
				else if (!wait_fd(fd, POLLIN, timeout))
					snprintf(err, sizeof(err), "timeout");
				else
					n = read(fd, reply, sizeof(reply) - 1);
			}
			close(fd);
			fd = -1;
		} else {
			char buf;

			while (recv(fd, &buf, 1, MSG_DONTWAIT) >= 0)
				; /* late answers of earlier questions */
			if (send(fd, "?", 1, 0) != 1)
				snprintf(err, sizeof(err), "%s", strerror(errno));
			else if (!wait_fd(fd, POLLIN, timeout))
				snprintf(err, sizeof(err), "timeout");
			else
				n = recv(fd, reply, sizeof(reply) - 1, 0);
			if (!err[0] && n < 0)
				snprintf(err, sizeof(err), "%s", strerror(errno));
		}
		if (n > 0) {
			reply[n] = '\0';
			printf("{\"i\":%ld,\"t\":%.3f,\"seen_as\":\"%s\"}\n", i, mono() - t0, reply);
		} else {
			printf("{\"i\":%ld,\"t\":%.3f,\"error\":\"%s\"}\n", i, mono() - t0, err[0] ? err : "no answer");
		}
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "echo"))
		return echo_mode(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "ask"))
		return ask_mode(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return send_mode(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "sink"))
		return sink_mode(argc, argv);
	fprintf(stderr, "usage: traffic send|sink|echo|ask ...\n");
	return 2;
}
