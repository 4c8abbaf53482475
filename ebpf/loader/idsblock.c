// SPDX-License-Identifier: Apache-2.0
/*
 * The dynamic blocklist's intake (idsblock.h).
 */
#include "idsblock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attach.h"
#include "fetchrun.h"
#include "netlink.h"
#include "wan_guard.skel.h"

#define LIVE_REFRESH_S 10.0 /* the live addresses are read again at least this often */
#define SWEEP_MIN_S 1.0     /* at most one sweep a second */
#define LOG_PER_SECOND 10   /* limited log lines (refusals, extensions) */
#define MAX_LIVE 256        /* gateways, resolvers and probe targets */
#define BATCH 256           /* requests read per wake-up */
#define SOCKET_RETRY_S 5.0  /* a socket that cannot be bound is tried again this often */

const char *const dp_ids_result_name[DP_IDS_RESULTS] = {
	"added", "extended", "protected", "full", "invalid", "error", "foreign_sender", "malformed",
};

void dp_ids_init(struct dp_idsblock *b)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

/* True when a limited log line may be written now (at most LOG_PER_SECOND a second). */
static bool log_ok(struct dp_idsblock *b)
{
	double sec = floor(dp_now_mono());

	if (sec != b->log_second) {
		if (b->log_skipped)
			dp_log("warn", "dynamic_block_refused", "%llu more lines about refused or repeated requests "
			       "were left out (see router_dataplane_dynamic_block_requests_total)",
			       (unsigned long long)b->log_skipped);
		b->log_second = sec;
		b->log_lines = 0;
		b->log_skipped = 0;
	}
	if (b->log_lines < LOG_PER_SECOND) {
		b->log_lines++;
		return true;
	}
	b->log_skipped++;
	return false;
}

/*
 * Creates the socket's directory when it is missing, mode 0711: the agent's uid may pass through to
 * the socket, nobody may list it. An existing directory is left as it is (its owner decides).
 */
static int socket_dir(const char *path, struct dp_err *err)
{
	char dir[108], parent[108];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(parent, sizeof(parent), "%s", dirname(dir));
	if (!stat(parent, &st))
		return 0;
	if (dp_mkdirs(dirname(dir), err) || mkdir(parent, 0711) || chmod(parent, 0711))
		return err->msg[0] ? -1 : dp_errf(err, "cannot create directory %s: %s", parent, strerror(errno));
	return 0;
}

/* Binds the socket at path, owned by uid with mode 0600 (socket_dir). fd or -1 with err. */
static int open_socket(const char *path, uint32_t uid, struct dp_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, one = 1;

	if (socket_dir(path, err))
		return -1;
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return dp_errf(err, "%s exists and is not a socket; it is left alone", path);
		unlink(path); /* a socket of an earlier start */
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return dp_errf(err, "socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    lchown(path, uid, (gid_t)-1) || chmod(path, 0600)) {
		dp_errf(err, "cannot set up %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* The socket as cfg wants it: bound at [dynamic_block] socket, or none. */
static void sync_socket(struct dp_idsblock *b, const struct dp_config *cfg)
{
	const char *want = cfg->dyn.enabled ? cfg->dyn.socket : "";
	struct dp_err err = { "" };

	if (b->fd >= 0 && strcmp(b->path, want)) {
		close(b->fd);
		unlink(b->path);
		b->fd = -1;
		dp_log("info", "dynamic_block", "%s closed", b->path);
	}
	if (b->fd >= 0 || !want[0] || (!strcmp(b->path, want) && dp_now_mono() < b->socket_due))
		return; /* open, not wanted, or failed a moment ago */
	snprintf(b->path, sizeof(b->path), "%s", want);
	b->fd = open_socket(want, cfg->dyn.agent_uid, &err);
	b->socket_due = dp_now_mono() + SOCKET_RETRY_S;
	if (b->fd < 0)
		dp_log("error", "dynamic_block", "%s:%d: [dynamic_block] %s; alerts block nothing until it can be bound "
		       "(tried again every %.0f s)", cfg->path, cfg->dyn.line, err.msg, SOCKET_RETRY_S);
	else
		dp_log("info", "dynamic_block", "taking block requests from uid %u on %s (block for %u s, at most %u "
		       "entries)", cfg->dyn.agent_uid, want, cfg->dyn.seconds, cfg->dyn.max_entries);
}

/* dp_dynblock.on_expired: one log line per entry removed. */
static void removed(void *arg, unsigned family, uint64_t key)
{
	struct dp_idsblock *b = arg;
	char text[64];

	dp_dyn_key_format(family, key, text, sizeof(text));
	b->removed++;
	dp_log("info", "dynamic_block_expired", "%s unblocked: %s", text,
	       b->ready ? "its block expired" : "blocking is turned off");
}

/* Drops the blocklist state (the tables keep what they hold). */
static void release(struct dp_idsblock *b, struct dp_instance *inst)
{
	if (b->ready)
		dp_dyn_free(&b->dyn);
	b->ready = false;
	b->owner = NULL;
	if (inst)
		inst->maps.on_publish = NULL;
}

void dp_ids_sync(struct dp_idsblock *b, const struct dp_config *cfg, struct dp_instance *inst, pthread_mutex_t *lock)
{
	struct dp_err err = { "" };
	size_t n;

	sync_socket(b, cfg);
	if (b->ready && b->owner == inst->wan && cfg->dyn.enabled) {
		b->dyn.max = cfg->dyn.max_entries;
		return;
	}
	if (!b->ready && (!cfg->dyn.enabled || !inst->wan))
		return; /* nothing set up, nothing to set up */
	pthread_mutex_lock(lock);
	if (b->ready && b->owner == inst->wan && !cfg->dyn.enabled) {
		b->ready = false; /* the log lines say why the entries go */
		n = dp_dyn_clear(&b->dyn);
		b->ready = true;
		dp_log("info", "dynamic_block", "[dynamic_block] is gone: %zu entries removed, blocking is off", n);
	}
	release(b, inst);
	if (cfg->dyn.enabled && inst->wan) {
		if (dp_dyn_init(&b->dyn, &inst->maps, bpf_map__fd(inst->wan->maps.dp_dyn4),
				bpf_map__fd(inst->wan->maps.dp_dyn6), cfg->dyn.max_entries, &err)) {
			dp_log("error", "dynamic_block", "%s; alerts block nothing", err.msg);
		} else {
			b->dyn.on_expired = removed;
			b->dyn.on_expired_arg = b;
			inst->maps.on_publish = dp_dyn_on_publish;
			inst->maps.on_publish_arg = &b->dyn;
			b->ready = true;
			b->owner = inst->wan;
			n = dp_dyn_resume(&b->dyn);
			if (n)
				dp_log("info", "dynamic_block", "%zu blocked sources taken over from the previous programs", n);
		}
	}
	pthread_mutex_unlock(lock);
}

void dp_ids_carry(struct dp_idsblock *b, const struct dp_instance *fresh)
{
	size_t n;

	if (!b->ready)
		return;
	n = dp_dyn_copy(b->dyn.fd4, b->dyn.fd6, bpf_map__fd(fresh->wan->maps.dp_dyn4),
			bpf_map__fd(fresh->wan->maps.dp_dyn6), fresh->dyn_max);
	if (n)
		dp_log("info", "dynamic_block", "%zu blocked sources copied to the new programs' tables", n);
}

/* addrs_dump callback: the router's own addresses. */
static void own_address(void *ctx, const struct dp_addr *a)
{
	struct dp_pfx p = { .family = a->family == AF_INET ? 4 : 6, .len = a->family == AF_INET ? 32 : 128 };

	memcpy(p.addr, a->local, p.family == 4 ? 4 : 16);
	dp_pfx_list_push(ctx, &p);
}

/* Reads the live addresses never blocked: gateways, resolvers, probe targets, the router's addresses. */
static void live_collect(struct dp_idsblock *b, const struct dp_config *cfg)
{
	static dp_addr_text probes[DP_MAX_WANS * DP_MAX_PROBES], out[MAX_LIVE];
	struct dp_err err = { "" };
	int np = 0, n;

	for (int w = 0; w < cfg->n_wans; w++)
		for (int i = 0; i < cfg->wans[w].n_probes; i++)
			snprintf(probes[np++], sizeof(probes[0]), "%s", cfg->wans[w].probes[i].text);
	b->live.n = 0;
	b->live_due = dp_now_mono() + LIVE_REFRESH_S;
	n = dp_protect_collect(cfg->resolv_conf, probes, np, out, MAX_LIVE, &err);
	if (n >= 0 && !dp_addrs_dump(own_address, &b->live, &err)) {
		for (int i = 0; i < n; i++) {
			struct dp_pfx p;
			char why[128];

			if (!dp_pfx_parse(out[i], &p, why, sizeof(why)))
				dp_pfx_list_push(&b->live, &p);
		}
		if (!b->live_ok)
			dp_log("info", "dynamic_block", "%zu gateways, resolvers, probe targets and own addresses are "
			       "never blocked", b->live.n);
		b->live_ok = true;
		return;
	}
	if (b->live_ok || strcmp(b->live_error, err.msg))
		dp_log("error", "dynamic_block", "the gateways, resolvers and own addresses cannot be read (%s): "
		       "nothing is blocked until they can", err.msg);
	snprintf(b->live_error, sizeof(b->live_error), "%s", err.msg);
	b->live_ok = false;
	b->live_due = dp_now_mono() + 1.0;
}

/* Splits "block ADDRESS [SID]" (text is changed); 0, or -1 when it is something else. */
static int parse_request(char *text, char **addr, char **sid)
{
	char *save = NULL, *verb = strtok_r(text, " \t\r\n", &save);

	*addr = strtok_r(NULL, " \t\r\n", &save);
	*sid = strtok_r(NULL, " \t\r\n", &save);
	if (!verb || strcmp(verb, "block") || !*addr || strlen(*addr) > 45 || strtok_r(NULL, " \t\r\n", &save))
		return -1;
	if (*sid && (strlen(*sid) > 10 || strspn(*sid, "0123456789") != strlen(*sid)))
		return -1;
	return 0;
}

/* Acts on one datagram of n bytes from uid (has_uid: the kernel said who sent it). */
static void request(struct dp_idsblock *b, const struct dp_config *cfg, const struct dp_sources *src, char *buf,
		    size_t n, bool has_uid, uint32_t uid, pthread_mutex_t *lock)
{
	const struct dp_pfx_list *lists[3] = { &src->protect, &src->allow, &b->live };
	char *addr, *sid, why[600] = "";
	enum dp_dyn_result r;

	buf[n] = '\0';
	if (!has_uid || uid != cfg->dyn.agent_uid) {
		b->requests[DP_IDS_FOREIGN]++;
		if (log_ok(b))
			dp_log("warn", "dynamic_block_refused", "a request from uid %d was ignored: only the agent's "
			       "(uid %u) are taken", has_uid ? (int)uid : -1, cfg->dyn.agent_uid);
		return;
	}
	if (parse_request(buf, &addr, &sid)) {
		b->requests[DP_IDS_MALFORMED]++;
		if (log_ok(b))
			dp_log("warn", "dynamic_block_refused", "a request that is not 'block ADDRESS [SID]' was ignored");
		return;
	}
	if (b->live_due <= dp_now_mono())
		live_collect(b, cfg);
	pthread_mutex_lock(lock);
	if (!b->ready || !b->live_ok) {
		snprintf(why, sizeof(why), "%s", !b->ready ? "the guard's programs are not loaded" : b->live_error);
		r = DP_DYN_ERROR;
	} else {
		r = dp_dyn_add(&b->dyn, addr, cfg->dyn.seconds, lists, 3, why, sizeof(why));
	}
	b->requests[r]++;
	pthread_mutex_unlock(lock);
	if (r == DP_DYN_ADDED)
		dp_log("info", "dynamic_block", "%s blocked for %u s: IDS alert%s%s; %zu of %u entries", addr,
		       cfg->dyn.seconds, sid ? " sid " : "", sid ? sid : "", b->dyn.live, b->dyn.max);
	else if (log_ok(b))
		dp_log(r == DP_DYN_EXTENDED ? "info" : "warn", r == DP_DYN_EXTENDED ? "dynamic_block" : "dynamic_block_refused",
		       "%s (IDS alert%s%s): %s%s%s", addr, sid ? " sid " : "", sid ? sid : "",
		       r == DP_DYN_EXTENDED  ? "blocked again, until the later expiry"
		       : r == DP_DYN_PROTECTED ? "not blocked: never blocked, covered by "
		       : r == DP_DYN_FULL      ? "not blocked: the table is full"
		       : r == DP_DYN_INVALID   ? "not blocked: "
					       : "not blocked: ",
		       why, r == DP_DYN_FULL ? " (see [dynamic_block] max_entries)" : "");
}

void dp_ids_readable(struct dp_idsblock *b, const struct dp_config *cfg, const struct dp_sources *src,
		     pthread_mutex_t *lock)
{
	for (int i = 0; i < BATCH && b->fd >= 0; i++) {
		char buf[256], ctl[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		struct ucred cred = { 0 };
		bool has_uid = false;
		ssize_t n = recvmsg(b->fd, &msg, MSG_DONTWAIT);

		if (n < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				has_uid = true;
			}
		if (msg.msg_flags & MSG_TRUNC)
			n = 0; /* longer than any request: malformed */
		request(b, cfg, src, buf, (size_t)n, has_uid, cred.uid, lock);
	}
}

double dp_ids_due(const struct dp_idsblock *b)
{
	double exp;

	if (!b->ready || b->dyn.next_exp == UINT64_MAX)
		return -1;
	exp = (double)b->dyn.next_exp / 1e9;
	return exp > b->swept + SWEEP_MIN_S ? exp : b->swept + SWEEP_MIN_S;
}

void dp_ids_tick(struct dp_idsblock *b, double now, pthread_mutex_t *lock)
{
	double due = dp_ids_due(b);

	if (due < 0 || now < due)
		return;
	pthread_mutex_lock(lock);
	dp_dyn_sweep(&b->dyn);
	b->swept = now;
	pthread_mutex_unlock(lock);
}

void dp_ids_routes_changed(struct dp_idsblock *b)
{
	b->live_due = 0;
}

void dp_ids_metrics(const struct dp_idsblock *b, const struct dp_config *cfg,
		    void (*emit)(void *t, const char *fmt, ...), void *t)
{
	if (!cfg->dyn.enabled)
		return;
	emit(t, "# HELP router_dataplane_dynamic_block_up 1 when block requests are taken (socket bound, tables "
		"set up).\n# TYPE router_dataplane_dynamic_block_up gauge\n");
	emit(t, "router_dataplane_dynamic_block_up %d\n", b->fd >= 0 && b->ready);
	emit(t, "# HELP router_dataplane_dynamic_block_entries Sources on the dynamic blocklist now.\n"
		"# TYPE router_dataplane_dynamic_block_entries gauge\n");
	emit(t, "router_dataplane_dynamic_block_entries %zu\n", b->ready ? b->dyn.live : 0);
	emit(t, "# HELP router_dataplane_dynamic_block_max_entries Most sources the dynamic blocklist holds.\n"
		"# TYPE router_dataplane_dynamic_block_max_entries gauge\n");
	emit(t, "router_dataplane_dynamic_block_max_entries %u\n", cfg->dyn.max_entries);
	emit(t, "# HELP router_dataplane_dynamic_block_requests_total Block requests by what became of them.\n"
		"# TYPE router_dataplane_dynamic_block_requests_total counter\n");
	for (int r = 0; r < DP_IDS_RESULTS; r++)
		emit(t, "router_dataplane_dynamic_block_requests_total{result=\"%s\"} %llu\n", dp_ids_result_name[r],
		     (unsigned long long)b->requests[r]);
	emit(t, "# HELP router_dataplane_dynamic_block_removed_total Entries removed (expired, or blocking turned "
		"off).\n# TYPE router_dataplane_dynamic_block_removed_total counter\n");
	emit(t, "router_dataplane_dynamic_block_removed_total %llu\n", (unsigned long long)b->removed);
}

void dp_ids_close(struct dp_idsblock *b)
{
	if (b->fd >= 0) {
		close(b->fd);
		unlink(b->path);
	}
	b->fd = -1;
	release(b, NULL);
	dp_pfx_list_free(&b->live);
}
