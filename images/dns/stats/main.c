// SPDX-License-Identifier: Apache-2.0
/*
 * router-dns-stats -c CONFIG [--check]
 *
 * Accepts dnsdist's remote-logger connections on the configured address, adds every reported answer to its
 * zone's latency histogram, writes the query log of the zones whose log is on (JSON lines, one rotation to
 * PATH.1 at the size limit), and serves http://METRICS/metrics: at each scrape it reads dnsdist's rule counters
 * from http://FRONT/metrics and names them by zone. --check reads the configuration, reports the first problem
 * and exits 1, or exits 0 (the renderer's validator).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dnsstats.h"
#include "util.h"

#define MAX_CONNS 16
#define CONN_BUF (1 << 17)

static struct ds_config cfg;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t n_counted, n_malformed, n_unknown;
static volatile sig_atomic_t stop;

struct conn {
	int fd;
	uint8_t buf[CONN_BUF];
	size_t len;
};

struct qlog {
	FILE *f;
	uint64_t size;
};

/* Parses "a.b.c.d:port" or "[v6]:port" into ss; 0 or -1. */
static int parse_endpoint(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[strlen(host) - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a);
		return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*sl = sizeof(*a);
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* A listening TCP socket on an endpoint; the fd, or -1 (logged). */
static int listen_on(const char *endpoint)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	if (parse_endpoint(endpoint, &ss, &sl)) {
		dp_log("error", "config", "not an endpoint: %s (allowed: a.b.c.d:port or [v6]:port)", endpoint);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 16)) {
		dp_log("error", "listen", "cannot listen on %s: %s", endpoint, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Opens (appending) the query log; rotates it to PATH.1 first when it reached the size limit. */
static void qlog_open(struct qlog *q)
{
	struct stat st;
	char old[4200];

	if (!cfg.query_log[0])
		return;
	if (q->f)
		fclose(q->f);
	q->f = NULL;
	if (!stat(cfg.query_log, &st) && (uint64_t)st.st_size >= cfg.query_log_max) {
		snprintf(old, sizeof(old), "%s.1", cfg.query_log);
		if (rename(cfg.query_log, old))
			dp_log("warning", "query_log", "cannot rotate %s: %s", cfg.query_log, strerror(errno));
	}
	q->f = fopen(cfg.query_log, "a");
	if (!q->f) {
		dp_log("error", "query_log", "cannot open %s: %s (the query log is off)", cfg.query_log, strerror(errno));
		return;
	}
	q->size = stat(cfg.query_log, &st) ? 0 : (uint64_t)st.st_size;
}

/* Counts one frame and logs it when its zone's log is on. */
static void handle(const uint8_t *frame, size_t len, struct qlog *q)
{
	struct ds_msg m;
	struct ds_zone *z;

	if (ds_decode(frame, len, &m)) {
		pthread_mutex_lock(&lock);
		n_malformed++;
		pthread_mutex_unlock(&lock);
		return;
	}
	pthread_mutex_lock(&lock);
	z = ds_observe(&cfg, &m);
	if (z)
		n_counted++;
	else
		n_unknown++;
	pthread_mutex_unlock(&lock);
	if (!z || !z->log || !q->f)
		return;
	long before = ftell(q->f);
	ds_log_line(q->f, &m);
	q->size += (uint64_t)(ftell(q->f) - before);
	if (q->size >= cfg.query_log_max) {
		fflush(q->f);
		qlog_open(q);
	}
}

/* Reads what a connection has and handles every complete frame; -1 when the peer closed or erred. */
static int drain(struct conn *c, struct qlog *q)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	size_t off = 0;

	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	c->len += (size_t)n;
	while (c->len - off >= 2) {
		size_t flen = (size_t)c->buf[off] << 8 | c->buf[off + 1];
		if (c->len - off - 2 < flen)
			break;
		handle(c->buf + off + 2, flen, q);
		off += 2 + flen;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return 0;
}

/*
 * GETs http://FRONT/metrics (HTTP/1.0, 2 s for everything) into a NUL-terminated malloc'd buffer; NULL when
 * the front does not answer with 200.
 */
static char *front_metrics(void)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = 2 };
	size_t len = 0, cap = 1 << 16;
	char *buf = NULL;
	socklen_t sl;
	ssize_t n;
	int fd;

	if (parse_endpoint(cfg.front, &ss, &sl))
		return NULL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) || connect(fd, (struct sockaddr *)&ss, sl) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1 || !(buf = malloc(cap)))
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 4096 && !(buf = realloc(buf, cap *= 2)))
			goto fail;
	}
	buf[len] = '\0';
	close(fd);
	if (n < 0 || strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 8, " 200", 4)) {
		free(buf);
		return NULL;
	}
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

static enum MHD_Result serve(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			     const char *version, const char *data, size_t *size, void **state)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls, (void)version, (void)data, (void)size, (void)state;
	if (!buf)
		return MHD_NO;
	if (strcmp(method, "GET") || strcmp(url, "/metrics")) {
		free(buf);
		r = MHD_create_response_from_buffer(10, "not found\n", MHD_RESPMEM_PERSISTENT);
		ret = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, r);
		MHD_destroy_response(r);
		return ret;
	}
	char *front = front_metrics();
	struct ds_hits hits = { 0 };
	bool up = front != NULL;
	if (up)
		ds_parse_hits(front, &hits);
	free(front);
	pthread_mutex_lock(&lock);
	ds_metrics(&cfg, &hits, up, n_counted, n_malformed, n_unknown, &buf, &len, &cap);
	pthread_mutex_unlock(&lock);
	free(hits.v);
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* The metrics server on the configured endpoint; NULL when it cannot listen (logged). */
static struct MHD_Daemon *start_metrics(void)
{
	int fd = listen_on(cfg.metrics);

	if (fd < 0)
		return NULL;
	return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, serve, NULL,
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 32, MHD_OPTION_END);
}

/* Accepts and drains logger connections until a signal asks to stop. */
static void loop(int lfd, struct qlog *q)
{
	static struct conn conns[MAX_CONNS];
	struct pollfd p[MAX_CONNS + 1];

	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	while (!stop) {
		p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < MAX_CONNS; i++)
			p[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		if (poll(p, MAX_CONNS + 1, 1000) < 0)
			continue;
		for (int i = 0; i < MAX_CONNS; i++)
			if (conns[i].fd >= 0 && (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) && drain(&conns[i], q)) {
				close(conns[i].fd);
				conns[i].fd = -1;
			}
		if (q->f)
			fflush(q->f);
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int slot = 0;
		while (slot < MAX_CONNS && conns[slot].fd >= 0)
			slot++;
		if (fd >= 0 && slot == MAX_CONNS) {
			dp_log("warning", "logger", "more than %d logger connections; refusing one", MAX_CONNS);
			close(fd);
		} else if (fd >= 0) {
			conns[slot].fd = fd;
			conns[slot].len = 0;
		}
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool check = false;
	char err[512];
	struct qlog q = { 0 };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--check"))
			check = true;
	}
	if (!path) {
		fprintf(stderr, "usage: router-dns-stats -c CONFIG [--check]\n");
		return 2;
	}
	if (ds_config_load(path, &cfg, err, sizeof(err))) {
		dp_log("error", "config", "%s: %s", path, err);
		return 1;
	}
	if (check)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	int lfd = listen_on(cfg.logger);
	struct MHD_Daemon *d = start_metrics();
	if (lfd < 0 || !d)
		return 1;
	qlog_open(&q);
	dp_log("info", "start", "%u zones, %u lists; reports on %s, metrics on %s", cfg.n_zones, cfg.n_lists, cfg.logger,
	       cfg.metrics);
	loop(lfd, &q);
	MHD_stop_daemon(d);
	if (q.f)
		fclose(q.f);
	return 0;
}
