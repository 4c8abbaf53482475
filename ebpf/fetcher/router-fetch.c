// SPDX-License-Identifier: Apache-2.0
/*
 * router-fetch: downloads one list over HTTPS, checks it as a whole and writes its canonical form
 * atomically, for the router's data plane and for the DNS and IDS layers (contract: fetch.h).
 *
 * Privileges. The loader starts it already unprivileged: it forks, and the child gives up
 * everything (dp_drop_privileges: uid/gid 65534, no groups, every capability set empty,
 * no_new_privs) before exec, so not one instruction of this program runs as root. This program
 * checks that again at start and, when whoever started it left it privileged (uid 0 or a
 * capability), drops to --user itself before it touches the network; then it confines its own
 * writes to the output directory (Landlock) and refuses system calls only an attacker needs
 * (seccomp). Both places drop on purpose: a caller that forgets is caught here, and this program
 * never has to be trusted to do it for the loader.
 *
 * Output. FILE is replaced only by a list that passed every check (temporary file in FILE's
 * directory, fsync, rename, fsync of the directory); any failure leaves it byte for byte as it
 * was. The directory must be writable by the unprivileged user; the loader creates it for that.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "lists.h"
#include "sandbox.h"
#include "util.h"

struct opts {
	char url[4096];
	enum dp_list_kind kind;
	const char *out;
	struct dp_pfx protect[DP_FETCH_MAX_PROTECT + 1]; /* + the list's own server */
	size_t n_protect;
	const char *protect_names[DP_FETCH_MAX_PROTECT];
	size_t n_protect_names;
	bool protect_source;
	char countries[256][3];
	size_t n_countries;
	size_t max_bytes, min_entries;
	long timeout_s;
	const char *ca_file;
	uid_t uid;
	gid_t gid;
};

/* Prints the command line synopsis. */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: router-fetch --url URL|- --kind cidr|geo|domains --out FILE [options]\n"
		"  --url URL            https:// only (also after redirects); '-' reads it from stdin's first line\n"
		"  --kind KIND          cidr: one prefix per line; geo: 'CIDR CC' lines; domains: names, hosts-file\n"
		"                       lines (0.0.0.0 name) or ||name^ rules\n"
		"  --out FILE           where the canonical list goes (replaced only by a list that passed)\n"
		"  --protect ADDR       cidr/geo: refuse the list if an entry covers ADDR (repeatable)\n"
		"  --protect-source     cidr/geo: also protect the address the list was downloaded from\n"
		"  --block-country CC   geo: a covering entry counts only with one of these countries (repeatable)\n"
		"  --protect-name NAME  domains: refuse the list if an entry is NAME or a parent of it (repeatable)\n"
		"  --max-bytes N        refuse a larger download (default %u)\n"
		"  --min-entries N      refuse a list with fewer distinct entries (default 1)\n"
		"  --timeout SECONDS    whole transfer (default %d)\n"
		"  --ca-file F          CA bundle to verify the server with (default: libcurl's)\n"
		"  --user UID[:GID]     identity to drop to when started privileged (default %d:%d)\n"
		"exit: 0 written or unchanged, 1 download failed, 2 usage, 3 list refused, 4 local failure\n",
		DP_FETCH_MAX_BYTES_DEFAULT, DP_FETCH_TIMEOUT_DEFAULT_S, DP_FETCH_UID, DP_FETCH_GID);
}

/* Reports a bad command line and returns the usage exit code. */
static int bad_usage(const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	dp_log("error", "usage", "%s", msg);
	usage(stderr);
	return DP_FETCH_USAGE;
}

/* Parses an unsigned number from min to max; 0 or -1. */
static int num(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno || *end || *out < min || *out > max ? -1 : 0;
}

/* Reads the URL from stdin's first line into o->url; 0 or -1. */
static int url_from_stdin(struct opts *o)
{
	if (!fgets(o->url, sizeof(o->url), stdin))
		return -1;
	o->url[strcspn(o->url, "\r\n")] = '\0';
	return 0;
}

/* Adds an address to protect (IPv4/IPv6, an IPv6 zone is ignored) while fewer than max are; 0 or -1. */
static int add_protect(struct opts *o, const char *arg, size_t max)
{
	char buf[64], why[128];

	if (o->n_protect >= max || strchr(arg, '/') || strlen(arg) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", arg);
	buf[strcspn(buf, "%")] = '\0';
	if (dp_pfx_parse(buf, &o->protect[o->n_protect], why, sizeof(why)))
		return -1;
	o->n_protect++;
	return 0;
}

/* Parses the command line into o; DP_FETCH_OK or DP_FETCH_USAGE (reported). */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },	  { "kind", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },	  { "protect", required_argument, NULL, 'p' },
		{ "protect-name", required_argument, NULL, 'n' }, { "protect-source", no_argument, NULL, 's' },
		{ "block-country", required_argument, NULL, 'c' }, { "max-bytes", required_argument, NULL, 'm' },
		{ "min-entries", required_argument, NULL, 'e' },  { "timeout", required_argument, NULL, 't' },
		{ "ca-file", required_argument, NULL, 'a' },	  { "user", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },		  { NULL, 0, NULL, 0 },
	};
	bool have_kind = false;
	unsigned long long v, g;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			if (!strcmp(optarg, "-") && url_from_stdin(o))
				return bad_usage("--url -: no URL on stdin%s", "");
			if (strcmp(optarg, "-") && snprintf(o->url, sizeof(o->url), "%s", optarg) >= (int)sizeof(o->url))
				return bad_usage("--url: longer than 4095 characters%s", "");
			break;
		case 'k':
			if (dp_list_kind_parse(optarg, &o->kind))
				return bad_usage("--kind %s: expected cidr, geo or domains", optarg);
			have_kind = true;
			break;
		case 'o': o->out = optarg; break;
		case 'p':
			if (add_protect(o, optarg, DP_FETCH_MAX_PROTECT))
				return bad_usage("--protect %s: expected an IPv4 or IPv6 address (at most 256)", optarg);
			break;
		case 'n': {
			bool tld;
			char why[256];

			if (o->n_protect_names == DP_FETCH_MAX_PROTECT || dp_domain_normalise(optarg, &tld, why, sizeof(why)))
				return bad_usage("--protect-name %s: expected a domain name of two labels or more (at most 256)",
						 optarg);
			o->protect_names[o->n_protect_names++] = optarg;
			break;
		}
		case 's': o->protect_source = true; break;
		case 'c':
			if (o->n_countries == 256 || strlen(optarg) != 2 || optarg[0] < 'A' || optarg[0] > 'Z' ||
			    optarg[1] < 'A' || optarg[1] > 'Z')
				return bad_usage("--block-country %s: expected an ISO 3166 alpha-2 code (two letters A-Z)",
						 optarg);
			snprintf(o->countries[o->n_countries++], 3, "%s", optarg);
			break;
		case 'm':
			if (num(optarg, 1, 1ULL << 30, &v))
				return bad_usage("--max-bytes %s: expected a number of bytes from 1 to 1073741824", optarg);
			o->max_bytes = (size_t)v;
			break;
		case 'e':
			if (num(optarg, 1, 100000000, &v))
				return bad_usage("--min-entries %s: expected a number from 1 to 100000000", optarg);
			o->min_entries = (size_t)v;
			break;
		case 't':
			if (num(optarg, 1, 3600, &v))
				return bad_usage("--timeout %s: expected seconds from 1 to 3600", optarg);
			o->timeout_s = (long)v;
			break;
		case 'a': o->ca_file = optarg; break;
		case 'U': {
			char uid[32], *colon;

			snprintf(uid, sizeof(uid), "%s", optarg);
			colon = strchr(uid, ':');
			if (colon)
				*colon++ = '\0';
			if (num(uid, 1, 0xfffffffeu, &v) || (colon && num(colon, 1, 0xfffffffeu, &g)))
				return bad_usage("--user %s: expected UID[:GID], numbers other than 0", optarg);
			o->uid = (uid_t)v;
			o->gid = colon ? (gid_t)g : (gid_t)v;
			break;
		}
		case 'h': usage(stdout); exit(0);
		default: return bad_usage("unknown option%s", "");
		}
	}
	if (optind != argc || !o->url[0] || !have_kind || !o->out || !o->out[0])
		return bad_usage("--url, --kind and --out are required%s", "");
	if (strncmp(o->url, "https://", 8) || strpbrk(o->url, " \t\"'\\<>"))
		return bad_usage("--url: expected an https:// URL without spaces or quotes%s", "");
	return DP_FETCH_OK;
}

/*
 * Gives up privileges if it still has any, then checks it cannot regain them, confines writes to
 * dir and installs the system call filter. DP_FETCH_OK or DP_FETCH_LOCAL (reported).
 */
static int sandbox(const struct opts *o, const char *dir)
{
	char why[512];
	int rc;

	if (dp_privileged()) {
		const char *step = dp_drop_privileges(o->uid, o->gid);

		if (step) {
			dp_log("error", "local", "cannot give up privileges: %s: %s", step, strerror(errno));
			return DP_FETCH_LOCAL;
		}
	} else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		dp_log("error", "local", "cannot set no_new_privs: %s", strerror(errno));
		return DP_FETCH_LOCAL;
	}
	if (dp_check_unprivileged(why, sizeof(why))) {
		dp_log("error", "local", "refusing to run privileged: %s", why);
		return DP_FETCH_LOCAL;
	}
	rc = dp_confine_writes(dir, why, sizeof(why));
	if (rc < 0) {
		dp_log("error", "local", "cannot confine writes to %s: %s", dir, why);
		return DP_FETCH_LOCAL;
	}
	if (rc > 0)
		dp_log("warn", "sandbox", "%s", why);
	rc = dp_deny_syscalls(why, sizeof(why));
	if (rc < 0) {
		dp_log("error", "local", "%s", why);
		return DP_FETCH_LOCAL;
	}
	if (rc > 0)
		dp_log("warn", "sandbox", "%s", why);
	return DP_FETCH_OK;
}

struct sink {
	char *buf;
	size_t len, cap, max;
	bool too_big;
};

/* libcurl write callback: into memory, refusing more than max bytes (after content decoding). */
static size_t write_cb(char *data, size_t size, size_t nmemb, void *user)
{
	struct sink *s = user;
	size_t n = size * nmemb;

	if (n > s->max - s->len) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 65536;
		char *b;

		while (cap < s->len + n + 1)
			cap *= 2;
		b = realloc(s->buf, cap);
		if (!b)
			return 0;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	return n;
}

/*
 * Downloads o->url into s (HTTPS only, also after redirects; certificate and host verified; at
 * most o->max_bytes; o->timeout_s for the whole transfer) and the address of the server it came
 * from into ip. 0 or -1 with why.
 */
static int download(const struct opts *o, struct sink *s, char ip[64], char *why, size_t whylen)
{
	char cerr[CURL_ERROR_SIZE] = "";
	const char *primary = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc;
	long status = 0;

	if (!c) {
		snprintf(why, whylen, "cannot initialise libcurl");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, o->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->timeout_s < 20 ? o->timeout_s : 20L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "router-fetch/0.1 (+list fetcher)");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &primary) == CURLE_OK && primary)
		snprintf(ip, 64, "%s", primary);
	curl_easy_cleanup(c);
	if (s->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(why, whylen, "larger than %zu bytes; refused", o->max_bytes);
		return -1;
	}
	if (rc != CURLE_OK) {
		if (rc == CURLE_HTTP_RETURNED_ERROR)
			snprintf(why, whylen, "HTTP status %ld", status);
		else
			snprintf(why, whylen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* True when path holds exactly text (len bytes). */
static bool same_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	bool same = false;

	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size == len) {
		char buf[65536];
		size_t off = 0;
		ssize_t r;

		while (off < len && (r = read(fd, buf, sizeof(buf))) > 0 && !memcmp(buf, text + off, (size_t)r))
			off += (size_t)r;
		same = off == len;
	}
	close(fd);
	return same;
}

/* Removes temporary files a killed run of this fetcher left for the same output (.BASE.tmp.PID). */
static void remove_stale(const char *dir, const char *base)
{
	char prefix[NAME_MAX + 8];
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	snprintf(prefix, sizeof(prefix), ".%s.tmp.", base);
	while ((e = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		pid = strtol(e->d_name + strlen(prefix), &end, 10);
		if (!*end && pid > 0 && kill((pid_t)pid, 0) && errno == ESRCH)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* Replaces out by text atomically (temporary file, fsync, rename, directory fsync); 0 or -1 with why. */
static int write_atomic(const char *out, const char *dir, const char *base, const char *text, size_t len, char *why,
			size_t whylen)
{
	char tmp[PATH_MAX];
	size_t off = 0;
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%ld", dir, base, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off < len || fsync(fd) || close(fd) || rename(tmp, out)) {
		snprintf(why, whylen, "cannot write %s: %s", out, strerror(errno));
		unlink(tmp);
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Exit code of a refusal. */
static int exit_code(enum dp_fetch_reason r)
{
	return r == DP_FR_DOWNLOAD ? DP_FETCH_DOWNLOAD : r == DP_FR_LOCAL ? DP_FETCH_LOCAL : DP_FETCH_REJECTED;
}

/* Downloads, checks and writes; returns the exit code after logging the outcome. */
static int run(struct opts *o, const char *dir, const char *base)
{
	struct sink s = { .max = o->max_bytes };
	struct dp_list_result res = { .reason = DP_FR_NONE };
	struct dp_list_rules rules = { 0 };
	char ip[64] = "", why[PATH_MAX + CURL_ERROR_SIZE];
	int rc;

	if (download(o, &s, ip, why, sizeof(why))) {
		free(s.buf);
		dp_log("error", "download", "download failed: %s", why);
		return DP_FETCH_DOWNLOAD;
	}
	/* the server's address joins the protected ones (the array keeps a slot for it) */
	if (o->protect_source && ip[0] && o->kind != DP_LIST_DOMAINS)
		add_protect(o, ip, DP_FETCH_MAX_PROTECT + 1);
	if (!s.buf && !(s.buf = calloc(1, 1))) {
		dp_log("error", "local", "out of memory");
		return DP_FETCH_LOCAL;
	}
	rules = (struct dp_list_rules){ .protect = o->protect,
					.n_protect = o->n_protect,
					.protect_names = o->protect_names,
					.n_protect_names = o->n_protect_names,
					.block_countries = (const char (*)[3])o->countries,
					.n_block_countries = o->n_countries,
					.min_entries = o->min_entries };
	if (dp_list_check(o->kind, s.buf, s.len, &rules, &res)) {
		free(s.buf);
		dp_log("error", dp_fetch_reason_names[res.reason], "%s", res.why);
		return exit_code(res.reason);
	}
	free(s.buf);
	if (same_file(o->out, res.text, res.len)) {
		dp_log("info", "unchanged", "%zu entries, the same as %s", res.entries, o->out);
		rc = DP_FETCH_OK;
	} else if (write_atomic(o->out, dir, base, res.text, res.len, why, sizeof(why))) {
		dp_log("error", "local", "%s", why);
		rc = DP_FETCH_LOCAL;
	} else {
		dp_log("info", "fetched", "%zu entries written to %s", res.entries, o->out);
		rc = DP_FETCH_OK;
	}
	free(res.text);
	return rc;
}

int main(int argc, char **argv)
{
	static struct opts o = { .max_bytes = DP_FETCH_MAX_BYTES_DEFAULT,
				 .min_entries = 1,
				 .timeout_s = DP_FETCH_TIMEOUT_DEFAULT_S,
				 .uid = DP_FETCH_UID,
				 .gid = DP_FETCH_GID };
	char dbuf[PATH_MAX], bbuf[PATH_MAX];
	const char *dir, *base;
	int rc = parse_args(argc, argv, &o);

	if (rc)
		return rc;
	snprintf(dbuf, sizeof(dbuf), "%s", o.out);
	snprintf(bbuf, sizeof(bbuf), "%s", o.out);
	dir = dirname(dbuf);
	base = basename(bbuf);
	rc = sandbox(&o, dir);
	if (rc)
		return rc;
	remove_stale(dir, base);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		dp_log("error", "local", "cannot initialise libcurl");
		return DP_FETCH_LOCAL;
	}
	rc = run(&o, dir, base);
	curl_global_cleanup();
	return rc;
}
