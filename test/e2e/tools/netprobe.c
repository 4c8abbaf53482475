// SPDX-License-Identifier: Apache-2.0
/*
 * netprobe: the virtual appliance's traffic endpoints.
 *
 *   netprobe serve NAME [--tcp P,P,...] [--udp P,P,...]
 *       Listens on every given port (IPv4 and IPv6, all addresses). A TCP connection is answered with
 *       "NAME tcp PORT PEER\n" and closed; a UDP datagram with "NAME udp PORT PEER\n" from the address it was
 *       sent to (PEER: the source address the server saw; NTP requests get a minimal NTP server reply). Runs until
 *       killed.
 *
 *   netprobe probe [--parallel N] [--gap-us U] [--clock]
 *       Reads probes from stdin, one per line: ID PROTO DST PORT SRC TIMEOUT_MS
 *       (PROTO tcp, udp, ntp or icmp; SRC "-" for the kernel's choice; PORT ignored for icmp), runs them
 *       concurrently (at most N in flight, a new one every U microseconds) and prints one line per probe
 *       (with --clock, the probe's start and end times in ms since the epoch follow the ID):
 *         ID reached ANSWER...        an answer from the destination's application (NAME PROTO PORT PEER)
 *         ID refused                  TCP reset or ICMP port unreachable: the packet reached the host
 *         ID icmp TYPE CODE FROM      any other ICMP error (e.g. 3 13 = administratively prohibited)
 *         ID timeout                  nothing came back
 *         ID error ERRNO-TEXT         the probe could not be sent
 *       ICMP errors are read from the socket error queue (IP_RECVERR), so their type, code and sender are
 *       exact rather than guessed from an errno.
 *
 *   netprobe mdns-announce TAG        multicasts an mDNS announcement of _TAG._tcp.local (IPv4, from port 5353)
 *   netprobe mdns-listen SECONDS TAG  prints "heard FROM" for each mDNS packet naming _TAG._tcp.local
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 256
#define MAX_PROBES 8192
#define NTP_LEN 48

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_ms(void)
{
	struct timespec wall;

	clock_gettime(CLOCK_REALTIME, &wall);
	return wall.tv_sec * 1e3 + wall.tv_nsec / 1e6;
}

static int parse_ports(const char *s, int *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		long p = strtol(s, &end, 10);

		if (end == s || p < 1 || p > 65535)
			return -1;
		out[n++] = (int)p;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* ---------------------------------------------------------------------------------------------- serve */

/* The text form of a socket address (IPv4 or IPv6). */
static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	snprintf(out, cap, "?");
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)cap);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)cap);
}

struct listener {
	int fd;
	int tcp;
	int port;
	int family;
};

/* Binds one socket of a family to a port on every address; exits on failure (a stand-in must not be missing). */
static int bind_any(int family, int type, int port)
{
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;

	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_any;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		fprintf(stderr, "netprobe: cannot bind %s port %d (%s): %s\n", type == SOCK_STREAM ? "tcp" : "udp", port,
			family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		exit(1);
	}
	if (type == SOCK_STREAM && listen(fd, 128) < 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

/* Answers one datagram from the address it was sent to (the host may hold several in the segment). */
static void udp_answer(const char *name, struct listener *l)
{
	unsigned char buf[2048], ctl[256];
	char reply[256];
	struct sockaddr_storage peer;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr m = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(l->fd, &m, 0);
	size_t rlen;
	unsigned char octl[256];
	struct msghdr o = { .msg_name = &peer, .msg_namelen = m.msg_namelen, .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n < 0)
		return;
	if (l->port == 123 && n >= NTP_LEN && (buf[0] & 7) == 3) {
		/* mode 3 (client) → mode 4 (server), stratum 10, the client's transmit time as origin */
		unsigned char ntp[NTP_LEN] = { 0 };

		ntp[0] = (unsigned char)((buf[0] & 0x38) | 4);
		ntp[1] = 10;
		memcpy(ntp + 24, buf + 40, 8);
		memcpy(buf, ntp, NTP_LEN);
		rlen = NTP_LEN;
	} else {
		char who[INET6_ADDRSTRLEN];

		addr_text(&peer, who, sizeof(who));
		rlen = (size_t)snprintf(reply, sizeof(reply), "%s udp %d %s\n", name, l->port, who);
		memcpy(buf, reply, rlen);
	}
	iov.iov_len = rlen;
	/* reply from the destination address of the request */
	memset(octl, 0, sizeof(octl));
	o.msg_control = octl;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct cmsghdr *oc;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			pi.ipi_ifindex = 0;
			pi.ipi_spec_dst = pi.ipi_addr;
			o.msg_controllen = CMSG_SPACE(sizeof(pi));
			oc = CMSG_FIRSTHDR(&o);
			oc->cmsg_level = IPPROTO_IP;
			oc->cmsg_type = IP_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct cmsghdr *oc;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			/* keep the interface index: link-local sources need it */
			o.msg_controllen = CMSG_SPACE(sizeof(pi));
			oc = CMSG_FIRSTHDR(&o);
			oc->cmsg_level = IPPROTO_IPV6;
			oc->cmsg_type = IPV6_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
		}
	}
	if (!o.msg_controllen)
		o.msg_control = NULL;
	sendmsg(l->fd, &o, MSG_DONTWAIT);
}

static int serve(int argc, char **argv)
{
	int tcp[MAX_PORTS], udp[MAX_PORTS], ntcp = 0, nudp = 0, ep, nl = 0;
	static struct listener ls[MAX_PORTS * 4];
	const char *name;

	if (argc < 3)
		return 2;
	name = argv[2];
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--tcp") && i + 1 < argc)
			ntcp = parse_ports(argv[++i], tcp, MAX_PORTS);
		else if (!strcmp(argv[i], "--udp") && i + 1 < argc)
			nudp = parse_ports(argv[++i], udp, MAX_PORTS);
		else
			return 2;
		if (ntcp < 0 || nudp < 0)
			return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int f = 0; f < 2; f++) {
		int fam = f ? AF_INET6 : AF_INET;

		for (int i = 0; i < ntcp; i++)
			ls[nl++] = (struct listener){ bind_any(fam, SOCK_STREAM, tcp[i]), 1, tcp[i], fam };
		for (int i = 0; i < nudp; i++)
			ls[nl++] = (struct listener){ bind_any(fam, SOCK_DGRAM, udp[i]), 0, udp[i], fam };
	}
	for (int i = 0; i < nl; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ls[i] };

		epoll_ctl(ep, EPOLL_CTL_ADD, ls[i].fd, &ev);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			struct listener *l = evs[i].data.ptr;

			if (l->tcp) {
				int c;

				struct sockaddr_storage peer;
				socklen_t plen = sizeof(peer);

				while ((c = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC)) >= 0) {
					char msg[256], who[INET6_ADDRSTRLEN];
					int len;

					addr_text(&peer, who, sizeof(who));
					len = snprintf(msg, sizeof(msg), "%s tcp %d %s\n", name, l->port, who);
					plen = sizeof(peer);

					if (write(c, msg, (size_t)len) < 0) {
						/* the prober went away: nothing to answer */
					}
					close(c);
				}
			} else {
				udp_answer(name, l);
			}
		}
	}
}

/* ---------------------------------------------------------------------------------------------- probe */

enum proto { P_TCP, P_UDP, P_NTP, P_ICMP };

struct probe {
	char id[64];
	enum proto proto;
	int family;
	struct sockaddr_storage dst, src;
	socklen_t dlen;
	int has_src;
	double timeout;
	double started; /* wall clock, ms since the epoch */
	double deadline;
	int fd;
	int connected; /* tcp: connect finished, waiting for the answer */
	int done;
	uint16_t echo_id;
};

static int parse_addr(const char *s, int port, struct sockaddr_storage *out, socklen_t *len)
{
	memset(out, 0, sizeof(*out));
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, s, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)out;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, s, &a->sin_addr) != 1)
			return -1;
		*len = sizeof(*a);
	}
	return 0;
}

static int print_clock;

static void finish(struct probe *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finish(struct probe *p, const char *fmt, ...)
{
	va_list ap;

	if (p->done)
		return;
	p->done = 1;
	if (print_clock)
		printf("%s %.0f %.0f ", p->id, p->started, wall_ms());
	else
		printf("%s ", p->id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* Reports the ICMP error waiting in the socket's error queue; returns 1 when there was one. */
static int report_errqueue(struct probe *p)
{
	unsigned char ctl[512], data[512];
	struct sockaddr_storage from;
	struct iovec iov = { data, sizeof(data) };
	struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;

	if (recvmsg(p->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		struct sock_extended_err *ee;
		char who[INET6_ADDRSTRLEN] = "?";
		struct sockaddr *off;

		if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
		      (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
			continue;
		ee = (struct sock_extended_err *)CMSG_DATA(c);
		if (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6) {
			finish(p, "error %s", strerror((int)ee->ee_errno));
			return 1;
		}
		off = SO_EE_OFFENDER(ee);
		if (off->sa_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)off)->sin_addr, who, sizeof(who));
		else if (off->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)off)->sin6_addr, who, sizeof(who));
		/* port unreachable: the datagram reached the destination's stack */
		if ((ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_type == ICMP_DEST_UNREACH &&
		     ee->ee_code == ICMP_PORT_UNREACH) ||
		    (ee->ee_origin == SO_EE_ORIGIN_ICMP6 && ee->ee_type == ICMP6_DST_UNREACH &&
		     ee->ee_code == ICMP6_DST_UNREACH_NOPORT))
			finish(p, "refused %s", who);
		else
			finish(p, "icmp %u %u %s", ee->ee_type, ee->ee_code, who);
		return 1;
	}
	return 0;
}

static void start(struct probe *p)
{
	int one = 1, type, proto = 0;

	p->started = wall_ms();
	p->deadline = now_ms() + p->timeout;
	if (p->proto == P_TCP)
		type = SOCK_STREAM;
	else
		type = SOCK_DGRAM;
	if (p->proto == P_ICMP)
		proto = p->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	p->fd = socket(p->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (p->fd < 0) {
		finish(p, "error socket:%s", strerror(errno));
		return;
	}
	if (p->family == AF_INET)
		setsockopt(p->fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	else
		setsockopt(p->fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	if (p->has_src) {
		int fb = 1;

		setsockopt(p->fd, IPPROTO_IP, IP_FREEBIND, &fb, sizeof(fb));
		if (bind(p->fd, (struct sockaddr *)&p->src,
			 p->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
			finish(p, "error bind:%s", strerror(errno));
			return;
		}
	}
	if (connect(p->fd, (struct sockaddr *)&p->dst, p->dlen) < 0 && errno != EINPROGRESS) {
		if (!report_errqueue(p))
			finish(p, "error connect:%s", strerror(errno));
		return;
	}
	if (p->proto == P_UDP) {
		char msg[96];
		int n = snprintf(msg, sizeof(msg), "probe %s", p->id);

		if (send(p->fd, msg, (size_t)n, 0) < 0 && !report_errqueue(p))
			finish(p, "error send:%s", strerror(errno));
	} else if (p->proto == P_NTP) {
		unsigned char ntp[NTP_LEN] = { 0x23 }; /* LI 0, version 4, mode 3 */
		double t = now_ms();

		memcpy(ntp + 40, &t, sizeof(t));
		if (send(p->fd, ntp, sizeof(ntp), 0) < 0 && !report_errqueue(p))
			finish(p, "error send:%s", strerror(errno));
	} else if (p->proto == P_ICMP) {
		unsigned char pkt[64] = { 0 };

		/* the kernel fills in the identifier of a ping socket and the checksum */
		pkt[0] = p->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
		pkt[7] = 1;
		memcpy(pkt + 8, p->id, strlen(p->id) < 56 ? strlen(p->id) : 56);
		if (send(p->fd, pkt, sizeof(pkt), 0) < 0 && !report_errqueue(p))
			finish(p, "error send:%s", strerror(errno));
	}
}

/* Handles readiness of a probe's socket. */
static void step(struct probe *p, short rev)
{
	char buf[512];
	ssize_t n;

	if (rev & POLLERR) {
		if (report_errqueue(p))
			return;
	}
	if (p->proto == P_TCP && !p->connected) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
			return;
		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err == ECONNREFUSED) {
			finish(p, "refused tcp-reset");
			return;
		}
		if (err) {
			if (!report_errqueue(p))
				finish(p, "error %s", strerror(err));
			return;
		}
		p->connected = 1;
		return;
	}
	if (!(rev & POLLIN))
		return;
	n = recv(p->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN)
			return;
		if (!report_errqueue(p))
			finish(p, "error recv:%s", strerror(errno));
		return;
	}
	if (p->proto == P_NTP) {
		if (n >= NTP_LEN && (buf[0] & 7) == 4)
			finish(p, "reached ntp stratum=%d", (unsigned char)buf[1]);
		else
			finish(p, "reached not-ntp");
		return;
	}
	if (p->proto == P_ICMP) {
		unsigned char t = (unsigned char)buf[0];

		if ((p->family == AF_INET && t == ICMP_ECHOREPLY) || (p->family == AF_INET6 && t == ICMP6_ECHO_REPLY))
			finish(p, "reached echo-reply");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	finish(p, "reached %s", n ? buf : "tcp-closed");
}

static int probe(int argc, char **argv)
{
	static struct probe ps[MAX_PROBES];
	static struct pollfd pf[MAX_PROBES];
	static int idx[MAX_PROBES];
	int np = 0, parallel = 64, next = 0, left;
	double gap = 2.0, last_start = 0;
	char line[512];

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--parallel") && i + 1 < argc)
			parallel = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--gap-us") && i + 1 < argc)
			gap = atof(argv[++i]) / 1000.0;
		else if (!strcmp(argv[i], "--clock"))
			print_clock = 1;
		else
			return 2;
	}
	while (np < MAX_PROBES && fgets(line, sizeof(line), stdin)) {
		char id[64], proto[8], dst[64], src[64];
		int port, tmo;
		struct probe *p = &ps[np];

		if (sscanf(line, "%63s %7s %63s %d %63s %d", id, proto, dst, &port, src, &tmo) != 6) {
			fprintf(stderr, "netprobe: bad probe line: %s", line);
			return 2;
		}
		memset(p, 0, sizeof(*p));
		snprintf(p->id, sizeof(p->id), "%s", id);
		p->proto = !strcmp(proto, "tcp") ? P_TCP : !strcmp(proto, "udp") ? P_UDP : !strcmp(proto, "ntp") ? P_NTP : P_ICMP;
		if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "ntp") && strcmp(proto, "icmp")) {
			fprintf(stderr, "netprobe: unknown protocol %s\n", proto);
			return 2;
		}
		if (parse_addr(dst, p->proto == P_ICMP ? 0 : port, &p->dst, &p->dlen)) {
			fprintf(stderr, "netprobe: bad address %s\n", dst);
			return 2;
		}
		p->family = p->dst.ss_family;
		if (strcmp(src, "-")) {
			socklen_t sl;

			if (parse_addr(src, 0, &p->src, &sl) || p->src.ss_family != p->family) {
				fprintf(stderr, "netprobe: bad source %s for %s\n", src, dst);
				return 2;
			}
			p->has_src = 1;
		}
		p->timeout = tmo;
		p->fd = -1;
		np++;
	}
	left = np;
	while (left > 0) {
		int nfd = 0, inflight = 0, wait;
		double t = now_ms(), soonest = t + 1000;

		for (int i = 0; i < next; i++)
			if (!ps[i].done)
				inflight++;
		while (next < np && inflight < parallel && t - last_start >= gap) {
			start(&ps[next]);
			last_start = t;
			inflight++;
			next++;
			if (gap > 0)
				break;
		}
		for (int i = 0; i < next; i++) {
			struct probe *p = &ps[i];

			if (p->done)
				continue;
			if (t >= p->deadline) {
				finish(p, "timeout");
				continue;
			}
			if (p->deadline < soonest)
				soonest = p->deadline;
			pf[nfd] = (struct pollfd){ .fd = p->fd,
						   .events = (short)(POLLIN | (p->proto == P_TCP && !p->connected ? POLLOUT : 0)) };
			idx[nfd++] = i;
		}
		if (next < np && t + gap < soonest)
			soonest = t + gap;
		wait = (int)(soonest - t);
		if (wait < 0)
			wait = 0;
		if (poll(pf, (nfds_t)nfd, wait) > 0)
			for (int k = 0; k < nfd; k++)
				if (pf[k].revents)
					step(&ps[idx[k]], pf[k].revents);
		left = 0;
		for (int i = 0; i < np; i++)
			if (!ps[i].done)
				left++;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- mDNS */

/* Appends a DNS name of dot-separated labels; returns the new length. */
static size_t dns_name(unsigned char *out, size_t n, const char *name)
{
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		out[n++] = (unsigned char)len;
		memcpy(out + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	out[n++] = 0;
	return n;
}

/* Multicasts an mDNS announcement (a PTR record for _TAG._tcp.local) from port 5353, three times. */
static int mdns_announce(const char *tag)
{
	unsigned char pkt[512] = { 0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0 };
	char owner[128];
	size_t n = 12;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, ttl = 255;
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(5353) };
	struct sockaddr_in grp = { .sin_family = AF_INET, .sin_port = htons(5353) };

	snprintf(owner, sizeof(owner), "_%s._tcp.local", tag);
	n = dns_name(pkt, n, owner);
	pkt[n++] = 0, pkt[n++] = 12;         /* PTR */
	pkt[n++] = 0, pkt[n++] = 1;          /* IN */
	pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 120;
	pkt[n++] = 0, pkt[n++] = 8;          /* rdlength: "probe" + pointer to the owner name */
	pkt[n++] = 5;
	memcpy(pkt + n, "probe", 5);
	n += 5;
	pkt[n++] = 0xc0, pkt[n++] = 12;
	inet_pton(AF_INET, "224.0.0.251", &grp.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl));
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("bind 5353");
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		if (sendto(fd, pkt, n, 0, (struct sockaddr *)&grp, sizeof(grp)) < 0) {
			perror("sendto");
			return 1;
		}
		usleep(200000);
	}
	return 0;
}

/* Prints "heard FROM" for every mDNS packet naming _TAG._tcp.local that arrives within SECONDS. */
static int mdns_listen(const char *seconds, const char *tag)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(5353) };
	struct ip_mreqn mr = { .imr_ifindex = 0 };
	unsigned char want[128], buf[2048];
	char owner[128];
	size_t wlen;
	double until = now_ms() + atof(seconds) * 1000;

	snprintf(owner, sizeof(owner), "_%s._tcp.local", tag);
	wlen = dns_name(want, 0, owner);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("bind 5353");
		return 1;
	}
	inet_pton(AF_INET, "224.0.0.251", &mr.imr_multiaddr);
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		perror("IP_ADD_MEMBERSHIP");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int wait = (int)(until - now_ms());
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;
		char who[INET_ADDRSTRLEN];

		if (wait <= 0 || poll(&pf, 1, wait) <= 0)
			return 0;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0)
			continue;
		if (!memmem(buf, (size_t)n, want, wlen))
			continue;
		inet_ntop(AF_INET, &from.sin_addr, who, sizeof(who));
		printf("heard %s\n", who);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "probe"))
		return probe(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "mdns-announce"))
		return mdns_announce(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "mdns-listen"))
		return mdns_listen(argv[2], argv[3]);
	fprintf(stderr, "usage: netprobe serve NAME [--tcp P,...] [--udp P,...]\n"
			"       netprobe probe [--parallel N] [--gap-us U] [--clock]\n"
			"       netprobe mdns-announce TAG | netprobe mdns-listen SECONDS TAG\n");
	return 2;
}
