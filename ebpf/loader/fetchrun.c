// SPDX-License-Identifier: Apache-2.0
#include "fetchrun.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netlink.h"
#include "sandbox.h"

#define OUTPUT_CAP (64u << 10) /* what the fetcher may say on stderr; more means it misbehaves */

extern char **environ;

struct addrs {
	dp_addr_text *v;
	size_t n, max;
	bool full;
};

/* Adds an address (canonical text) unless it is listed already. */
static void add_text(struct addrs *a, const char *t)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], t))
			return;
	if (a->n == a->max) {
		a->full = true;
		return;
	}
	snprintf(a->v[a->n++], sizeof(a->v[0]), "%s", t);
}

/* dp_routes_dump callback: the gateway of a default route. */
static void gateway_cb(void *ctx, const struct dp_route *r)
{
	char t[INET6_ADDRSTRLEN];

	if (r->dst_len == 0 && r->has_gw && inet_ntop(r->family, r->gw, t, sizeof(t)))
		add_text(ctx, t);
}

/* The nameservers of a resolv.conf (an IPv6 zone is dropped); 0, or -1 with err if it cannot be read. */
static int resolvers(const char *path, struct addrs *a, struct dp_err *err)
{
	FILE *f = fopen(path, "re");
	char line[512];

	if (!f)
		return errno == ENOENT ? 0 : dp_errf(err, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t"), *v;
		unsigned char bin[16];
		char t[INET6_ADDRSTRLEN];
		int fam;

		if (strncmp(p, "nameserver", 10) || !isspace((unsigned char)p[10]))
			continue;
		v = p + 10 + strspn(p + 10, " \t");
		v[strcspn(v, " \t\r\n%#;")] = '\0';
		fam = strchr(v, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(fam, v, bin) == 1 && inet_ntop(fam, bin, t, sizeof(t)))
			add_text(a, t);
	}
	fclose(f);
	return 0;
}

int dp_protect_collect(const char *resolv_conf, const dp_addr_text *probes, int n_probes, dp_addr_text *out,
		       size_t max, struct dp_err *err)
{
	struct addrs a = { .v = out, .max = max };

	if (dp_routes_dump(AF_INET, 0, gateway_cb, &a, err) || dp_routes_dump(AF_INET6, 0, gateway_cb, &a, err) ||
	    resolvers(resolv_conf, &a, err))
		return -1;
	for (int i = 0; i < n_probes; i++)
		add_text(&a, probes[i]);
	if (a.full)
		return dp_errf(err, "more than %zu addresses to protect (gateways, resolvers, probe targets)", max);
	return (int)a.n;
}

/* The fetcher's command line and environment, built before fork (the child may not allocate). */
struct cmd {
	char *argv[24 + 2 * DP_FEED_MAX_PROTECT + 2 * 256];
	char *envp[16];
	char out[96], timeout[24], min[24];
};

/* Fills c from job: URL on stdin, output NAME.txt in the working directory; proxy settings pass through. */
static void build_cmd(const struct dp_fetch_job *job, struct cmd *c)
{
	static const char *const pass[] = { "https_proxy=", "HTTPS_PROXY=", "all_proxy=", "ALL_PROXY=",
					    "no_proxy=",    "NO_PROXY=" };
	int n = 0, e = 0;

	snprintf(c->out, sizeof(c->out), "%s.txt", job->name);
	snprintf(c->timeout, sizeof(c->timeout), "%llu", (unsigned long long)((job->timeout_ms + 999) / 1000));
	snprintf(c->min, sizeof(c->min), "%u", job->min_entries);
	c->argv[n++] = (char *)job->fetcher;
	c->argv[n++] = "--url";
	c->argv[n++] = "-";
	c->argv[n++] = "--kind";
	c->argv[n++] = (char *)job->kind;
	c->argv[n++] = "--out";
	c->argv[n++] = c->out;
	c->argv[n++] = "--timeout";
	c->argv[n++] = c->timeout;
	c->argv[n++] = "--min-entries";
	c->argv[n++] = c->min;
	if (job->ca_file && *job->ca_file) {
		c->argv[n++] = "--ca-file";
		c->argv[n++] = (char *)job->ca_file;
	}
	if (job->protect_source)
		c->argv[n++] = "--protect-source";
	for (size_t i = 0; i < job->n_protect && i < DP_FEED_MAX_PROTECT; i++) {
		c->argv[n++] = "--protect";
		c->argv[n++] = (char *)job->protect[i];
	}
	for (size_t i = 0; i < job->n_countries && i < 256; i++) {
		c->argv[n++] = "--block-country";
		c->argv[n++] = (char *)job->countries[i];
	}
	c->argv[n] = NULL;
	for (char **v = environ; v && *v && e < (int)(sizeof(c->envp) / sizeof(c->envp[0])) - 1; v++)
		for (size_t k = 0; k < sizeof(pass) / sizeof(pass[0]); k++)
			if (!strncmp(*v, pass[k], strlen(pass[k])))
				c->envp[e++] = *v;
	c->envp[e] = NULL;
}

/* Writes s to fd 2 (async-signal-safe). */
static void say(const char *s)
{
	ssize_t r = write(2, s, strlen(s));

	(void)r;
}

/* In the child: reports why it could not become the fetcher (a JSON line the parent reads) and exits. */
__attribute__((noreturn)) static void child_fail(const char *step, int e)
{
	const char *name = strerrorname_np(e);

	say("{\"level\":\"error\",\"event\":\"local\",\"msg\":\"cannot start the fetcher: ");
	say(step);
	say(": ");
	say(name ? name : "unknown error");
	say("\"}\n");
	_exit(DP_FETCH_LOCAL);
}

/*
 * In the child, between fork and exec (async-signal-safe calls only): signals as a fresh process
 * has them, stdin = the URL, stdout = /dev/null, stderr = the pipe to the parent, working directory
 * = staging, no other descriptor, privileges dropped for good, killed when the loader (parent, its
 * pid before the fork) dies; then exec.
 */
__attribute__((noreturn)) static void child(const struct dp_fetch_job *job, int in, int err, int null,
					    struct cmd *c, pid_t parent)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	const char *step;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	if (dup2(err, 2) < 0)
		_exit(DP_FETCH_LOCAL);
	if (dup2(in, 0) < 0 || dup2(null, 1) < 0)
		child_fail("dup2", errno);
	if (chdir(job->staging))
		child_fail("chdir to the staging directory", errno);
	if (syscall(SYS_close_range, 3U, ~0U, 0U))
		child_fail("close_range", errno);
	step = dp_drop_privileges(DP_FETCH_UID, DP_FETCH_GID);
	if (step)
		child_fail(step, errno);
	/* after the credentials change, which clears it; a fetcher outliving a killed loader would hold
	 * the loader's mounts (its bpffs, and with it the pinned links) and its staging files */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		child_fail("prctl(PR_SET_PDEATHSIG)", errno);
	if (getppid() != parent)
		_exit(DP_FETCH_LOCAL); /* the loader died before the line above */
	execve(job->fetcher, c->argv, c->envp);
	child_fail("execve", errno);
}

/*
 * Reads the child's stderr into buf (at most OUTPUT_CAP, the rest is dropped and *overflow set)
 * until EOF; kills the child at deadline (monotonic) and sets *killed.
 */
static size_t read_output(int fd, pid_t pid, double deadline, char *buf, bool *overflow, bool *killed)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = deadline - dp_now_mono();
		char chunk[4096];
		ssize_t n;

		if (!*killed && left <= 0) {
			kill(pid, SIGKILL);
			*killed = true;
		}
		if (*killed && left < -5)
			break; /* the pipe outlived the killed fetcher: something else holds it */
		if (poll(&p, 1, *killed ? 1000 : (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (len + (size_t)n > OUTPUT_CAP) {
			*overflow = true;
			continue;
		}
		memcpy(buf + len, chunk, (size_t)n);
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

/* The JSON string value of key in one of the fetcher's log lines (escapes decoded); false if absent. */
static bool json_str(const char *line, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	for (p += strlen(pat); *p && *p != '"'; p++) {
		char c = *p;

		if (c == '\\') {
			unsigned v;

			c = *++p;
			if (c == 'n' || c == 't')
				c = ' ';
			else if (c == 'u' && sscanf(p + 1, "%4x", &v) == 1 && strspn(p + 1, "0123456789abcdefABCDEF") >= 4)
				c = v >= 0x20 && v < 0x7f ? (char)v : '?', p += 4;
			else if (c != '"' && c != '\\' && c != '/')
				return false;
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	out[n] = '\0';
	return *p == '"';
}

/* Turns what the fetcher said and how it ended into out; relays its warnings. */
static void interpret(const struct dp_fetch_job *job, char *text, bool overflow, bool killed, int status,
		      struct dp_fetch_outcome *out)
{
	char *last = NULL, *save = NULL, event[64] = "", msg[sizeof(out->why)] = "";

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char level[16];

		if (last && json_str(last, "level", level, sizeof(level)) && !strcmp(level, "warn") &&
		    json_str(last, "msg", msg, sizeof(msg)))
			dp_log("warn", "feed_fetcher", "[feed %s] %s", job->name, msg);
		last = line;
	}
	msg[0] = '\0';
	if (last && json_str(last, "event", event, sizeof(event)))
		json_str(last, "msg", msg, sizeof(msg));
	out->reason = DP_FR_CRASHED;
	if (killed) {
		out->reason = DP_FR_TIMEOUT;
		snprintf(out->why, sizeof(out->why), "no outcome within its timeout (%llu s) and %.0f s more: the fetcher was "
			 "killed", (unsigned long long)((job->timeout_ms + 999) / 1000), DP_FEED_KILL_GRACE_S);
	} else if (WIFSIGNALED(status)) {
		snprintf(out->why, sizeof(out->why), "the fetcher died of signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	} else if (overflow) {
		snprintf(out->why, sizeof(out->why), "the fetcher wrote more than %u bytes of messages", OUTPUT_CAP);
	} else if (WEXITSTATUS(status) == DP_FETCH_OK) {
		out->reason = DP_FR_NONE;
		snprintf(out->why, sizeof(out->why), "%s", msg);
	} else {
		for (int r = DP_FR_DOWNLOAD; r <= DP_FR_LOCAL; r++)
			if (!strcmp(event, dp_fetch_reason_names[r]))
				out->reason = (enum dp_fetch_reason)r;
		if (out->reason != DP_FR_CRASHED)
			snprintf(out->why, sizeof(out->why), "%s", msg);
		else
			snprintf(out->why, sizeof(out->why), "the fetcher exited with status %d: %s", WEXITSTATUS(status),
				 msg[0] ? msg : "no message");
	}
}

void dp_fetch_run(const struct dp_fetch_job *job, struct dp_fetch_outcome *out)
{
	struct cmd c;
	int in[2] = { -1, -1 }, err[2] = { -1, -1 }, null = open("/dev/null", O_RDWR | O_CLOEXEC), status = 0;
	char *text = malloc(OUTPUT_CAP + 1);
	bool overflow = false, killed = false;
	pid_t pid = -1, parent;

	out->reason = DP_FR_LOCAL;
	build_cmd(job, &c);
	/* the URL waits in the pipe (far below its capacity) before the child exists */
	if (!text || null < 0 || pipe2(in, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || dprintf(in[1], "%s\n", job->url) < 0) {
		snprintf(out->why, sizeof(out->why), "cannot start the fetcher: %s", strerror(errno));
		goto out;
	}
	close(in[1]);
	in[1] = -1;
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		snprintf(out->why, sizeof(out->why), "cannot start the fetcher: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(job, in[0], err[1], null, &c, parent);
	close(err[1]);
	err[1] = -1;
	pthread_mutex_lock(job->mu);
	*job->child = pid;
	pthread_mutex_unlock(job->mu);
	read_output(err[0], pid, dp_now_mono() + job->timeout_ms / 1000.0 + DP_FEED_KILL_GRACE_S, text, &overflow,
		    &killed);
	pthread_mutex_lock(job->mu);
	*job->child = 0; /* still a zombie until reaped, so its pid cannot be reused before this */
	pthread_mutex_unlock(job->mu);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	interpret(job, text, overflow, killed, status, out);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (null >= 0)
		close(null);
	free(text);
}

int dp_fetch_import(const char *staging, const char *name, const char *dst, char *why, size_t whylen)
{
	char file[96], buf[65536];
	int dfd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fd = -1, ofd = -1, rc = -1;
	struct stat st;
	off_t left;

	snprintf(file, sizeof(file), "%s.txt", name);
	if (dfd < 0 || (fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0 || fstat(fd, &st)) {
		snprintf(why, whylen, "cannot open the fetcher's %s/%s: %s", staging, file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != DP_FETCH_UID ||
	    (uint64_t)st.st_size > 4ull * DP_FETCH_MAX_BYTES_DEFAULT) {
		snprintf(why, whylen, "the fetcher's %s/%s is not a plain file of its own (type %o, %lu links, uid %u, %lld bytes)",
			 staging, file, (unsigned)(st.st_mode & S_IFMT), (unsigned long)st.st_nlink, (unsigned)st.st_uid,
			 (long long)st.st_size);
		goto out;
	}
	ofd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ofd < 0) {
		snprintf(why, whylen, "cannot write %s: %s", dst, strerror(errno));
		goto out;
	}
	for (left = st.st_size; left > 0;) {
		ssize_t n = read(fd, buf, sizeof(buf) < (size_t)left ? sizeof(buf) : (size_t)left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write(ofd, buf, (size_t)n) != n) {
			snprintf(why, whylen, "cannot copy the fetcher's %s into %s: %s", file, dst,
				 n == 0 ? "the file shrank" : strerror(errno));
			goto out;
		}
		left -= n;
	}
	if (fsync(ofd)) {
		snprintf(why, whylen, "cannot write %s: %s", dst, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (ofd >= 0 && close(ofd) && !rc) {
		snprintf(why, whylen, "cannot write %s: %s", dst, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (rc)
		unlink(dst);
	return rc;
}
