// SPDX-License-Identifier: Apache-2.0
/*
 * Traffic for the network-namespace tests.
 *
 *   traffic send --ifname IF --dst-mac MAC --src IP --dst IP --port P --tag T --count N --pps R
 *       Sends N Ethernet/IPv4/UDP frames (any source address, spoofed ones included) through a
 *       packet socket; the payload carries the tag and a sequence number. Prints {"sent":N}.
 *   traffic sink --port P [--seconds S]
 *       Counts UDP datagrams per tag until S seconds pass or SIGTERM/SIGINT; prints {"ready":true}
 *       once listening, and at the end {"tags":{"T":{"received":N,"distinct":M},...}}.
 */
#include <arpa/inet.h>
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
		fprintf(stderr, "usage: traffic send --ifname IF --dst-mac MAC --src IP --dst IP [--port P] [--tag T] "
				"[--count N] [--pps R]\n");
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
	udp[0] = 0x9c;
	udp[1] = 0x40;
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

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return send_mode(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "sink"))
		return sink_mode(argc, argv);
	fprintf(stderr, "usage: traffic send|sink ...\n");
	return 2;
}
