// SPDX-License-Identifier: Apache-2.0
#include "nft.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKENS 8

struct scan {
	const char *path;
	const char *p;
	int line;
	struct dp_err *err;
	const char *tok_start; /* where the last token began in the text */
};

/* Next token: '{', '}', ';', '\n' or a word/string (copied into tok). Returns 0 at end of text. */
static int next_token(struct scan *s, char *tok, size_t cap, int *tok_line)
{
	size_t n = 0;

	for (;;) {
		if (*s->p == '\\' && s->p[1] == '\n') {
			s->p += 2;
			s->line++;
		} else if (*s->p == ' ' || *s->p == '\t' || *s->p == '\r') {
			s->p++;
		} else if (*s->p == '#') {
			while (*s->p && *s->p != '\n')
				s->p++;
		} else {
			break;
		}
	}
	*tok_line = s->line;
	s->tok_start = s->p;
	if (!*s->p)
		return 0;
	if (strchr("{};\n", *s->p)) {
		tok[0] = *s->p;
		tok[1] = '\0';
		if (*s->p == '\n')
			s->line++;
		s->p++;
		return 1;
	}
	while (*s->p && !strchr(" \t\r\n{};#", *s->p)) {
		if (*s->p == '"') {
			const char *q = s->p + 1;

			while (*q && *q != '"' && *q != '\n')
				q += (*q == '\\' && q[1]) ? 2 : 1;
			if (*q == '"')
				q++;
			for (; s->p < q; s->p++)
				if (n + 1 < cap)
					tok[n++] = *s->p;
			continue;
		}
		if (n + 1 < cap)
			tok[n++] = *s->p;
		s->p++;
	}
	tok[n] = '\0';
	return 1;
}

int dp_nft_scope_check(const char *path, const char *text, struct dp_err *err)
{
	struct scan s = { .path = path, .p = text, .line = 1, .err = err };
	char stmt[MAX_TOKENS][128], tok[128];
	int ntok = 0, depth = 0, stmt_line = 0, tables = 0, tline;
	int define_depth = -1; /* braces inside a define's set literal */

	while (next_token(&s, tok, sizeof(tok), &tline)) {
		if (strcmp(tok, "include") == 0)
			return dp_errf(err, "%s:%d: include is not allowed: the ruleset must be self-contained", path, tline);
		if (depth > 0 && define_depth < 0) {
			if (tok[0] == '{' && !tok[1])
				depth++;
			else if (tok[0] == '}' && !tok[1])
				depth--;
			continue;
		}
		if (define_depth >= 0) {
			if (tok[0] == '{' && !tok[1]) {
				depth++;
			} else if (tok[0] == '}' && !tok[1]) {
				if (depth == 0)
					return dp_errf(err, "%s:%d: unbalanced '}'", path, tline);
				depth--;
			} else if (depth == 0 && (tok[0] == '\n' || tok[0] == ';')) {
				define_depth = -1;
				ntok = 0;
			}
			continue;
		}
		/* top level */
		if (tok[0] == '\n' || tok[0] == ';') {
			if (ntok > 0)
				return dp_errf(err,
					       "%s:%d: '%s%s%s' is not allowed at the top level: the file may only define "
					       "table inet router (and define variables)",
					       path, stmt_line, stmt[0], ntok > 1 ? " " : "", ntok > 1 ? stmt[1] : "");
			continue;
		}
		if (tok[0] == '}' && !tok[1])
			return dp_errf(err, "%s:%d: unbalanced '}'", path, tline);
		if (tok[0] == '{' && !tok[1]) {
			if (ntok == 3 && !strcmp(stmt[0], "table") && !strcmp(stmt[1], "inet") && !strcmp(stmt[2], "router")) {
				tables++;
				depth = 1;
				ntok = 0;
				continue;
			}
			if (ntok >= 1 && (!strcmp(stmt[0], "table") || !strcmp(stmt[0], "add") || !strcmp(stmt[0], "create")))
				return dp_errf(err,
					       "%s:%d: only table inet router may be defined here, found '%s%s%s%s%s'",
					       path, stmt_line, stmt[0], ntok > 1 ? " " : "", ntok > 1 ? stmt[1] : "",
					       ntok > 2 ? " " : "", ntok > 2 ? stmt[2] : "");
			return dp_errf(err, "%s:%d: '%s' is not allowed at the top level: the file may only define table "
					    "inet router (and define variables)",
				       path, stmt_line, ntok ? stmt[0] : "{");
		}
		if (ntok == 0) {
			stmt_line = tline;
			if (!strcmp(tok, "define") || !strcmp(tok, "redefine") || !strcmp(tok, "undefine")) {
				define_depth = 0;
				continue;
			}
		}
		if (ntok < MAX_TOKENS)
			snprintf(stmt[ntok++], sizeof(stmt[0]), "%s", tok);
	}
	if (depth != 0)
		return dp_errf(err, "%s:%d: unbalanced '{' (missing '}')", path, s.line);
	if (ntok > 0)
		return dp_errf(err, "%s:%d: '%s' is not allowed at the top level: the file may only define table inet "
				    "router (and define variables)",
			       path, stmt_line, stmt[0]);
	if (tables == 0)
		return dp_errf(err, "%s: defines no table inet router", path);
	return 0;
}

int dp_nft_resolve_defines(const char *path, const char *text, const struct dp_links *links, char **out,
			   struct dp_err *err)
{
	struct scan s = { .path = path, .p = text, .line = 1, .err = err };
	char tok[128], name[128] = "";
	size_t len = strlen(text), cap = len + 1, n = 0;
	const char *copied = text; /* text before this point is in the output already */
	char *buf = malloc(cap);
	int depth = 0, state = 0, tline; /* state: 0 statement start, 1 after define, 2 after name, 3 after '=' */

	if (!buf)
		return dp_errf(err, "%s: out of memory", path);
	while (next_token(&s, tok, sizeof(tok), &tline)) {
		bool brace = (tok[0] == '{' || tok[0] == '}') && !tok[1];

		if (brace) {
			depth += tok[0] == '{' ? 1 : -1;
			state = -1;
			continue;
		}
		if (tok[0] == '\n' || tok[0] == ';') {
			state = depth == 0 ? 0 : -1;
			continue;
		}
		if (depth != 0 || state < 0)
			continue;
		if (state == 0) {
			state = !strcmp(tok, "define") || !strcmp(tok, "redefine") ? 1 : -1;
		} else if (state == 1) {
			snprintf(name, sizeof(name), "%s", tok);
			state = 2;
		} else if (state == 2) {
			state = !strcmp(tok, "=") ? 3 : -1;
		} else if (state == 3) {
			size_t tl = strlen(tok);

			state = -1;
			if (tl >= 2 && tok[0] == '"' && tok[tl - 1] == '"' && !memchr(tok + 1, '"', tl - 2) &&
			    !memchr(tok + 1, '\\', tl - 2)) {
				char value[128], why[160];
				const struct dp_link *l;

				snprintf(value, sizeof(value), "%.*s", (int)(tl - 2), tok + 1);
				if (dp_links_by_name(links, value))
					continue;
				switch (dp_links_resolve(links, value, &l, why, sizeof(why))) {
				case DP_RESOLVED: {
					size_t pre = (size_t)(s.tok_start - copied), add = strlen(l->name) + 2;

					if (n + pre + add + (len - (size_t)(s.p - text)) + 1 > cap) {
						char *nb;

						cap = n + pre + add + len + 1;
						nb = realloc(buf, cap);
						if (!nb) {
							free(buf);
							return dp_errf(err, "%s: out of memory", path);
						}
						buf = nb;
					}
					memcpy(buf + n, copied, pre);
					n += pre;
					n += (size_t)snprintf(buf + n, cap - n, "\"%s\"", l->name);
					copied = s.p;
					break;
				}
				case DP_RES_AMBIGUOUS:
					free(buf);
					return dp_errf(err,
						       "%s:%d: define %s = \"%s\": no link is named %s and several carry it "
						       "as their alias (%s); an alias must name exactly one link (Talos "
						       "LinkAliasConfig)",
						       path, tline, name, value, value, why);
				default:
					break; /* no such link (yet): nftables matches the name as written */
				}
			}
		}
	}
	if (n + (len - (size_t)(copied - text)) + 1 > cap) {
		char *nb = realloc(buf, n + (len - (size_t)(copied - text)) + 1);

		if (!nb) {
			free(buf);
			return dp_errf(err, "%s: out of memory", path);
		}
		buf = nb;
	}
	memcpy(buf + n, copied, len - (size_t)(copied - text));
	n += len - (size_t)(copied - text);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* Orders IPv4 addresses (network byte order, 16-byte slots) by their bytes: a stable element list. */
static int addr4_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 4);
}

/*
 * Appends to *buf (length *n, capacity *cap, grown as needed) one `add element` statement for set,
 * holding the IPv4 addresses of link (sorted); nothing when it has none. Returns 0, or -1 when out
 * of memory (*buf stays valid).
 */
static int append_addr4(char **buf, size_t *n, size_t *cap, const char *set, const struct dp_link *link)
{
	uint8_t addrs[64][16], v4[64][16];
	int fam[64], got = dp_addrs_of(link->ifindex, addrs, fam, 64), k = 0;
	char line[64 * 18 + 256];
	size_t len;

	for (int i = 0; i < got; i++)
		if (fam[i] == AF_INET)
			memcpy(v4[k++], addrs[i], 16);
	if (!k)
		return 0;
	qsort(v4, (size_t)k, sizeof(v4[0]), addr4_cmp);
	len = (size_t)snprintf(line, sizeof(line), "add element inet router %s {", set);
	for (int i = 0; i < k; i++) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, v4[i], a, sizeof(a));
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s %s", i ? "," : "", a);
	}
	len += (size_t)snprintf(line + len, sizeof(line) - len, " }\n");
	if (*n + len + 1 > *cap) {
		char *nb = realloc(*buf, *n + len + 1);

		if (!nb)
			return -1;
		*buf = nb;
		*cap = *n + len + 1;
	}
	memcpy(*buf + *n, line, len + 1);
	*n += len;
	return 0;
}

int dp_nft_wan_addresses(const char *path, char **text, const struct dp_links *links, struct dp_err *err)
{
	struct scan s = { .path = path, .p = *text, .line = 1, .err = err };
	char tok[128], sets[32][128];
	int nsets = 0, tline, after_set = 0, depth = 0;
	size_t n = strlen(*text), cap = n + 1;

	while (next_token(&s, tok, sizeof(tok), &tline)) {
		if ((tok[0] == '{' || tok[0] == '}') && !tok[1])
			depth += tok[0] == '{' ? 1 : -1;
		if (after_set && depth == 1 && !strncmp(tok, DP_NFT_WAN_ADDR4, strlen(DP_NFT_WAN_ADDR4))) {
			if (nsets == 32)
				return dp_errf(err, "%s:%d: more than 32 " DP_NFT_WAN_ADDR4 " sets (allowed: one per WAN link)",
					       path, tline);
			snprintf(sets[nsets++], sizeof(sets[0]), "%s", tok);
		}
		after_set = depth == 1 && !strcmp(tok, "set");
	}
	for (int i = 0; i < nsets; i++) {
		const char *name = sets[i] + strlen(DP_NFT_WAN_ADDR4);
		const struct dp_link *l;
		char why[160];

		if (dp_links_resolve(links, name, &l, why, sizeof(why)) != DP_RESOLVED)
			continue; /* no such link (yet): the set keeps its rendered elements */
		if (append_addr4(text, &n, &cap, sets[i], l))
			return dp_errf(err, "%s: out of memory", path);
	}
	return 0;
}

/* Reads a whole text file (no NUL bytes) into a malloc'ed string, or NULL with err. */
static char *read_text(const char *path, struct dp_err *err)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	long size;

	if (!f) {
		dp_errf(err, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		dp_errf(err, "%s: cannot read", path);
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)size + 1);
	if (buf)
		len = fread(buf, 1, (size_t)size, f);
	fclose(f);
	if (!buf || len != (size_t)size) {
		free(buf);
		dp_errf(err, "%s: cannot read", path);
		return NULL;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		free(buf);
		dp_errf(err, "%s: contains a NUL byte", path);
		return NULL;
	}
	return buf;
}

/* Writes text to path (mode 0600, truncating); 0 or -1 with err. */
static int write_file(const char *path, const char *text, struct dp_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text), done = 0;

	if (fd < 0)
		return dp_errf(err, "cannot write %s: %s", path, strerror(errno));
	while (done < len) {
		ssize_t w = write(fd, text + done, len - done);

		if (w <= 0) {
			close(fd);
			return dp_errf(err, "cannot write %s: %s", path, strerror(errno));
		}
		done += (size_t)w;
	}
	close(fd);
	return 0;
}

/* Copies libnftables' messages into err, naming the operator's file instead of the private copy. */
static void nft_errors(struct dp_err *err, const char *path, const char *copy, const char *msgs)
{
	char out[DP_ERR_MAX];
	size_t n = 0, clen = strlen(copy);
	const char *p = msgs;

	while (*p && n + 1 < sizeof(out)) {
		if (strncmp(p, "In file included from", 21) == 0) {
			const char *nl = strchr(p, '\n');

			p = nl ? nl + 1 : p + strlen(p);
			continue;
		}
		if (strncmp(p, copy, clen) == 0) {
			size_t plen = strlen(path);

			if (n + plen + 1 >= sizeof(out))
				break;
			memcpy(out + n, path, plen);
			n += plen;
			p += clen;
			continue;
		}
		out[n++] = *p++;
	}
	while (n > 0 && out[n - 1] == '\n')
		n--;
	out[n] = '\0';
	dp_errf(err, "%s: nftables rejected the ruleset:\n%s", path, out);
}

/* Runs the wrapper through libnftables; 0 or -1 with the messages in err. */
static int nft_run(const char *wrapper, bool dry_run, const char *path, const char *copy, struct dp_err *err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc;

	if (!ctx)
		return dp_errf(err, "cannot create a libnftables context");
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	nft_ctx_set_dry_run(ctx, dry_run);
	rc = nft_run_cmd_from_filename(ctx, wrapper);
	if (rc)
		nft_errors(err, path, copy, nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	return rc ? -1 : 0;
}

void dp_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int dp_nft_load(const char *path, const char *work_dir, bool check_only, const struct dp_links *links,
		char **content, char *sha256, struct dp_err *err)
{
	char copy[4096], wrapper[4096], wrap_text[4400];
	char *text = read_text(path, err);
	int rc = -1;

	if (!text)
		return -1;
	if (sha256)
		dp_sha256_hex(text, strlen(text), sha256);
	if (dp_nft_scope_check(path, text, err))
		goto out;
	if (links) {
		char *resolved;

		if (dp_nft_resolve_defines(path, text, links, &resolved, err))
			goto out;
		free(text);
		text = resolved;
		if (dp_nft_wan_addresses(path, &text, links, err))
			goto out;
	}
	snprintf(copy, sizeof(copy), "%s/router.nft.loading", work_dir);
	snprintf(wrapper, sizeof(wrapper), "%s/router.nft.transaction", work_dir);
	if (strchr(copy, '"')) {
		dp_errf(err, "state_dir %s must not contain '\"'", work_dir);
		goto out;
	}
	snprintf(wrap_text, sizeof(wrap_text),
		 "# one transaction: replace table inet router, touch nothing else\n"
		 "add table inet router\ndelete table inet router\ninclude \"%s\"\n",
		 copy);
	if (write_file(copy, text, err) || write_file(wrapper, wrap_text, err))
		goto out;
	if (nft_run(wrapper, true, path, copy, err))
		goto out;
	if (!check_only && nft_run(wrapper, false, path, copy, err))
		goto out;
	rc = 0;
	if (content) {
		*content = text;
		text = NULL;
	}
out:
	free(text);
	return rc;
}

/* True for a link name that can be written inside an nft string as it is. */
static bool nft_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

/*
 * Adds the kernel name of configured name (resolved by name or Talos alias; as written while no link
 * has it) to list unless it is there already or cannot be written safely. An alias on several links
 * adds nothing: the fallback only ever accepts on the lists, so a left-out name only closes more.
 */
static void add_link(const struct dp_links *links, const char *name, char (*list)[IFNAMSIZ], int *n)
{
	const struct dp_link *l = NULL;
	char why[160];
	const char *k = name;

	if (links) {
		enum dp_resolve r = dp_links_resolve(links, name, &l, why, sizeof(why));

		if (r == DP_RES_AMBIGUOUS)
			return;
		if (r == DP_RESOLVED)
			k = l->name;
	}
	if (!nft_name_ok(k))
		return;
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], k) == 0)
			return;
	snprintf(list[(*n)++], IFNAMSIZ, "%s", k);
}

/* Writes `{ "a", "b" }` for a list of link names. */
static void name_set(FILE *f, char (*list)[IFNAMSIZ], int n)
{
	fputs("{ ", f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\"%s\"", i ? ", " : "", list[i]);
	fputs(" }", f);
}

/* The TCP ports of a management session: management_ports and the metrics port, sorted, once each. */
static int mgmt_ports(const struct dp_config *cfg, unsigned *ports)
{
	int n = 0;

	for (int i = 0; i <= cfg->n_management_ports; i++) {
		unsigned p = i < cfg->n_management_ports ? cfg->management_ports[i] : (unsigned)cfg->metrics_port;
		int j = n;

		if (p == 0)
			continue;
		for (int k = 0; k < n; k++)
			if (ports[k] == p)
				j = -1;
		if (j < 0)
			continue;
		while (j > 0 && ports[j - 1] > p) {
			ports[j] = ports[j - 1];
			j--;
		}
		ports[j] = p;
		n++;
	}
	return n;
}

/* The input chain of the fallback: what reaches the router itself. */
static void fallback_input(FILE *f, char (*wan)[IFNAMSIZ], int n_wan, char (*mgmt)[IFNAMSIZ], int n_mgmt,
			   bool any_inside, const unsigned *ports, int n_ports)
{
	static const char *const common[] = {
		"iif lo accept",
		"ct state established,related accept",
		"ct state invalid drop",
		"# ICMP the network needs (RFC 792 errors; RFC 4890 for ICMPv6, neighbour discovery only on-link)",
		"icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
		"icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
		"icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit "
		"255 accept",
		"icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr "
		"fe80::/10 accept",
		"# the router's own pods (Cilium, CoreDNS) reach the Kubernetes API through the host",
		"iifname \"lxc*\" accept",
		"iifname \"cilium_*\" accept",
	};

	fputs("\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n", f);
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		fprintf(f, "\t\t%s\n", common[i]);
	if (n_wan) {
		fputs("\t\t# the router's own DHCP clients on its uplinks\n\t\tiifname ", f);
		name_set(f, wan, n_wan);
		fputs(" udp sport 67 udp dport 68 accept\n\t\tiifname ", f);
		name_set(f, wan, n_wan);
		fputs(" ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept\n", f);
	}
	if ((n_mgmt || any_inside) && n_ports) {
		char match[1200];
		FILE *m = fmemopen(match, sizeof(match), "w");

		if (!m)
			return;
		if (n_mgmt) {
			fputs("iifname ", m);
			name_set(m, mgmt, n_mgmt);
		} else if (n_wan) {
			fputs("iifname != ", m);
			name_set(m, wan, n_wan);
		}
		fclose(m);
		fprintf(f, "\t\t# management: %s\n\t\t%s%stcp dport { ",
			n_mgmt ? "from the management links" : "from every link but the uplinks (no management_links given)",
			match, match[0] ? " " : "");
		for (int i = 0; i < n_ports; i++)
			fprintf(f, "%s%u", i ? ", " : "", ports[i]);
		fprintf(f, " } accept\n\t\t%s%sicmp type echo-request accept\n\t\t%s%sicmpv6 type echo-request accept\n",
			match, match[0] ? " " : "", match, match[0] ? " " : "");
	}
	fputs("\t\tcounter drop\n\t}\n", f);
}

char *dp_nft_fallback_text(const struct dp_config *cfg, const struct dp_links *links)
{
	char wan[DP_MAX_IFACES + DP_MAX_WANS][IFNAMSIZ], mgmt[DP_MAX_IFACES][IFNAMSIZ];
	unsigned ports[DP_MAX_MGMT_PORTS + 1];
	int n_wan = 0, n_mgmt = 0, n_ports = mgmt_ports(cfg, ports);
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	for (int i = 0; i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].role == DP_ROLE_WAN)
			add_link(links, cfg->ifaces[i].name, wan, &n_wan);
	for (int i = 0; i < cfg->n_wans; i++)
		add_link(links, cfg->wans[i].name, wan, &n_wan);
	for (int i = 0; i < cfg->n_management_links; i++) {
		char one[1][IFNAMSIZ];
		int n = 0;
		bool is_wan = false;

		add_link(links, cfg->management_links[i], one, &n);
		for (int w = 0; n && w < n_wan; w++)
			is_wan |= strcmp(wan[w], one[0]) == 0;
		if (n && !is_wan)
			add_link(NULL, one[0], mgmt, &n_mgmt);
	}
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fputs("# router-dataplane's built-in fail-closed ruleset, loaded when the configured ruleset is refused:\n"
	      "# nothing is forwarded but established connections; the router accepts only what its uplinks and a\n"
	      "# management session need.\n"
	      "table inet router {\n\tcomment \"" DP_NFT_FALLBACK_COMMENT "\"\n",
	      f);
	fallback_input(f, wan, n_wan, mgmt, n_mgmt, !cfg->has_management_links, ports, n_ports);
	fputs("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
	      "\t\tct state established,related accept\n\t\tcounter drop\n\t}\n}\n",
	      f);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

int dp_nft_fallback_load(const struct dp_config *cfg, const struct dp_links *links, bool check_only,
			 struct dp_err *err)
{
	static const char head[] = "add table inet router\ndelete table inet router\n";
	char *text = dp_nft_fallback_text(cfg, links), *all;
	struct nft_ctx *ctx;
	int rc;

	if (!text)
		return dp_errf(err, "cannot build the fallback ruleset: out of memory");
	all = malloc(sizeof(head) + strlen(text));
	ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!all || !ctx) {
		free(text);
		free(all);
		if (ctx)
			nft_ctx_free(ctx);
		return dp_errf(err, "cannot create a libnftables context");
	}
	memcpy(all, head, sizeof(head) - 1);
	strcpy(all + sizeof(head) - 1, text);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	nft_ctx_set_dry_run(ctx, check_only);
	rc = nft_run_cmd_from_buffer(ctx, all);
	if (rc)
		dp_errf(err, "the built-in fallback ruleset was refused:\n%s\n%s", nft_ctx_get_error_buffer(ctx), text);
	nft_ctx_free(ctx);
	free(all);
	free(text);
	return rc ? -1 : 0;
}
