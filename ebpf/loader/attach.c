// SPDX-License-Identifier: Apache-2.0
#include "attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

void dp_link_pin_name(enum dp_hook hook, const char *ifname, char *buf, size_t len)
{
	const char *prefix = hook == DP_HOOK_TCX_INGRESS ? "tcx_ingress"
			     : hook == DP_HOOK_TCX_EGRESS ? "tcx_egress"
							  : "xdp";

	/* bpffs refuses '.' in names; ':' cannot occur in an interface name, so it stands in */
	snprintf(buf, len, "%s@%s", prefix, ifname);
	for (char *p = buf; *p; p++)
		if (*p == '.')
			*p = ':';
}

int dp_mkdirs(const char *dir, struct dp_err *err)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return dp_errf(err, "cannot create directory %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return dp_errf(err, "cannot create directory %s: %s", tmp, strerror(errno));
	return 0;
}

int dp_check_bpffs(const char *path, struct dp_err *err)
{
	struct statfs fs;

	if (statfs(path, &fs))
		return dp_errf(err, "pin_root %s: %s", path, strerror(errno));
	if ((unsigned long)fs.f_type != BPF_FS_MAGIC)
		return dp_errf(err, "pin_root %s is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)", path);
	return 0;
}

/* Link facts the kernel reports: type, ifindex and (tcx) attach type. */
struct link_facts {
	__u32 type;
	__u32 prog_id;
	__u32 ifindex;
	__u32 attach_type;
};

/* Reads the kernel's facts about the link fd; 0 or -1. */
static int link_facts(int fd, struct link_facts *f)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	__u32 u[2];

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -1;
	/* xdp and tcx both start their part of the union with the ifindex; tcx follows it with the
	 * attach type (this libbpf's uapi header predates tcx). */
	memcpy(u, &info.xdp, sizeof(u));
	f->type = info.type;
	f->prog_id = info.prog_id;
	f->ifindex = u[0];
	f->attach_type = u[1];
	return 0;
}

/* True when the link is of the kind hook needs and sits on ifindex. */
static bool facts_match(const struct link_facts *f, enum dp_hook hook, __u32 ifindex)
{
	if (f->ifindex != ifindex)
		return false;
	if (hook == DP_HOOK_XDP_NATIVE || hook == DP_HOOK_XDP_GENERIC)
		return f->type == DP_BPF_LINK_TYPE_XDP;
	return f->type == DP_BPF_LINK_TYPE_TCX &&
	       f->attach_type == (hook == DP_HOOK_TCX_INGRESS ? BPF_TCX_INGRESS : BPF_TCX_EGRESS);
}

/* Current XDP attach mode of ifindex (XDP_ATTACHED_*), or -1. */
static int xdp_mode_of(__u32 ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query((int)ifindex, 0, &q))
		return -1;
	return q.attach_mode;
}

/*
 * The XDP link of an earlier start of ours whose pin is gone (a killed loader's bpffs that went
 * away, a /sys/fs/bpf mounted afresh): the link on ifindex that runs the program the kernel reports
 * attached there (so it is in this network namespace), when that program has prog_fd's name. Its
 * fd (the caller then holds the link and updates it in place), or -1 when there is none, another
 * program is attached, or it is not a link (a foreign attachment stays an error: EBUSY).
 */
static int orphan_xdp_link(__u32 ifindex, int prog_fd)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info mine, theirs;
	__u32 len = sizeof(mine), id = 0;

	memset(&mine, 0, sizeof(mine));
	if (bpf_xdp_query((int)ifindex, 0, &q) || !q.prog_id || bpf_obj_get_info_by_fd(prog_fd, &mine, &len))
		return -1;
	while (!bpf_link_get_next_id(id, &id)) {
		int fd = bpf_link_get_fd_by_id(id), pfd;
		struct link_facts f;
		bool ours = false;

		if (fd < 0)
			continue;
		if (!link_facts(fd, &f) && f.type == DP_BPF_LINK_TYPE_XDP && f.ifindex == ifindex &&
		    f.prog_id == q.prog_id && (pfd = bpf_prog_get_fd_by_id(f.prog_id)) >= 0) {
			memset(&theirs, 0, sizeof(theirs));
			len = sizeof(theirs);
			ours = !bpf_obj_get_info_by_fd(pfd, &theirs, &len) && !strcmp(theirs.name, mine.name);
			close(pfd);
		}
		if (ours)
			return fd;
		close(fd);
	}
	return -1;
}

/* BPF_LINK_CREATE for tcx, first in the chain; the header of this libbpf lacks the tcx fields. */
static int tcx_link_create(int prog_fd, __u32 ifindex, __u32 attach_type)
{
	union bpf_attr attr;
	struct {
		__u32 prog_fd;
		__u32 target_ifindex;
		__u32 attach_type;
		__u32 flags;
		__u32 relative_fd;
		__u32 pad;
		__u64 expected_revision;
	} tcx = { .prog_fd = (__u32)prog_fd, .target_ifindex = ifindex, .attach_type = attach_type,
		  .flags = DP_BPF_F_BEFORE };

	_Static_assert(sizeof(tcx) <= sizeof(attr), "bpf_attr too small for tcx link_create");
	memset(&attr, 0, sizeof(attr));
	memcpy(&attr, &tcx, sizeof(tcx));
	return (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}

int dp_link_create(enum dp_hook hook, __u32 ifindex, int prog_fd)
{
	if (hook == DP_HOOK_XDP_NATIVE || hook == DP_HOOK_XDP_GENERIC) {
		LIBBPF_OPTS(bpf_link_create_opts, o,
			    .flags = hook == DP_HOOK_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);

		return bpf_link_create(prog_fd, (int)ifindex, BPF_XDP, &o);
	}
	return tcx_link_create(prog_fd, ifindex, hook == DP_HOOK_TCX_INGRESS ? BPF_TCX_INGRESS : BPF_TCX_EGRESS);
}

/* dp_attach; when creating the link failed, *create_errno is the kernel's reason (else 0). */
static int attach_link(const char *links_dir, enum dp_hook hook, const char *ifname, __u32 ifindex, int prog_fd,
		       bool *updated, int *create_errno, struct dp_err *err)
{
	char pin[4096], name[64];
	int fd = -1, want_mode = hook == DP_HOOK_XDP_GENERIC ? XDP_ATTACHED_SKB : XDP_ATTACHED_DRV;
	bool xdp = hook == DP_HOOK_XDP_NATIVE || hook == DP_HOOK_XDP_GENERIC;
	struct link_facts f;

	*updated = false;
	*create_errno = 0;
	if (!ifindex)
		return dp_errf(err, "interface %s does not exist", ifname);
	dp_link_pin_name(hook, ifname, name, sizeof(name));
	snprintf(pin, sizeof(pin), "%s/%s", links_dir, name);

	fd = bpf_obj_get(pin);
	if (fd >= 0 && (link_facts(fd, &f) || !facts_match(&f, hook, ifindex))) {
		/* a link of a vanished, renumbered or re-resolved interface: let it go */
		close(fd);
		fd = -1;
		unlink(pin);
	}
	if (fd < 0 && xdp && (fd = orphan_xdp_link(ifindex, prog_fd)) >= 0)
		/* without it the attach fails (EBUSY) and the old program goes when its last pin does */
		dp_log("warn", "xdp_adopt", "%s: taking over our guard's link left without its pin %s by an earlier start",
		       ifname, pin);
	if (fd >= 0 && xdp && xdp_mode_of(ifindex) != want_mode) {
		/* native <-> generic cannot be switched in place: the only case with a gap */
		dp_log("warn", "xdp_mode_change", "%s: switching XDP mode requires detaching first", ifname);
		bpf_link_detach(fd);
		close(fd);
		fd = -1;
		unlink(pin);
	}
	if (fd >= 0) {
		if (bpf_link_update(fd, prog_fd, NULL)) {
			dp_errf(err, "%s: cannot update the %s link: %s", ifname, name, strerror(errno));
			close(fd);
			return -1;
		}
		*updated = true;
	} else if (xdp) {
		fd = dp_link_create(hook, ifindex, prog_fd);
		if (fd < 0) {
			*create_errno = errno;
			return dp_errf(err, "%s: cannot attach XDP (%s mode): %s%s", ifname,
				       hook == DP_HOOK_XDP_GENERIC ? "generic" : "native", strerror(*create_errno),
				       *create_errno == EBUSY ? " (another XDP program is attached; detach it first)"
				       : *create_errno == EEXIST
					       ? " (another XDP program is attached in the other mode; detach it first)"
				       : *create_errno == EOPNOTSUPP
					       ? " (the driver lacks native XDP; xdp_mode = native falls back to generic mode)"
					       : "");
		}
	} else {
		fd = dp_link_create(hook, ifindex, prog_fd);
		if (fd < 0) {
			*create_errno = errno;
			return dp_errf(err, "%s: cannot attach tcx %s: %s", ifname,
				       hook == DP_HOOK_TCX_INGRESS ? "ingress" : "egress", strerror(*create_errno));
		}
	}
	if (!*updated || access(pin, F_OK) != 0) {
		unlink(pin);
		if (bpf_obj_pin(fd, pin)) {
			dp_errf(err, "%s: cannot pin link at %s: %s", ifname, pin, strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

int dp_attach(const char *links_dir, enum dp_hook hook, const char *ifname, __u32 ifindex, int prog_fd, bool *updated,
	      struct dp_err *err)
{
	int create_errno;

	return attach_link(links_dir, hook, ifname, ifindex, prog_fd, updated, &create_errno, err);
}

/* Links whose driver refused native XDP in this process (by ifindex, unique while the link exists). */
#define DP_MAX_REFUSED 64
static __u32 native_refused[DP_MAX_REFUSED];
static int n_native_refused;

/* True when ifindex refused native XDP before. */
static bool refused_native(__u32 ifindex)
{
	for (int i = 0; i < n_native_refused; i++)
		if (native_refused[i] == ifindex)
			return true;
	return false;
}

/* The netdev generic netlink family (include/uapi/linux/netdev.h, Linux 6.3+; newer than this libc's headers). */
#define DP_NETDEV_FAMILY "netdev"
#define DP_NETDEV_CMD_DEV_GET 1
#define DP_NETDEV_A_DEV_IFINDEX 1
#define DP_NETDEV_A_DEV_XDP_FEATURES 3
#define DP_NETDEV_XDP_ACT_BASIC 1ULL

/* One generic netlink request with one attribute; the reply in buf. Returns its length or -1. */
static ssize_t genl_ask(int fd, __u16 family, __u8 cmd, __u16 type, const void *val, __u16 len, char *buf, size_t cap)
{
	struct {
		struct nlmsghdr n;
		struct genlmsghdr g;
		char attrs[64];
	} req = { 0 };
	struct nlattr *a = (struct nlattr *)req.attrs;

	req.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(NLA_HDRLEN + len);
	req.n.nlmsg_type = family;
	req.n.nlmsg_flags = NLM_F_REQUEST;
	req.g.cmd = cmd;
	req.g.version = 1;
	a->nla_type = type;
	a->nla_len = (__u16)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, val, len);
	if (send(fd, &req, req.n.nlmsg_len, 0) < 0)
		return -1;
	return recv(fd, buf, cap, 0);
}

/* Finds attribute type in a generic netlink reply; NULL when absent or the reply is an error. */
static const struct nlattr *genl_attr(const char *buf, ssize_t n, __u16 type)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	const char *p, *end;

	if (n < (ssize_t)NLMSG_LENGTH(GENL_HDRLEN) || !NLMSG_OK(h, (size_t)n) || h->nlmsg_type == NLMSG_ERROR)
		return NULL;
	p = (const char *)NLMSG_DATA(h) + GENL_HDRLEN;
	end = (const char *)h + h->nlmsg_len;
	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const struct nlattr *)p;

		if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

/*
 * What the kernel says of ifindex's native XDP (the netdev family's xdp-features): 1 when the driver
 * has it (NETDEV_XDP_ACT_BASIC), 0 when it has none, -1 when the kernel cannot say (older than 6.3).
 */
static int native_xdp_hint(__u32 ifindex)
{
	char buf[1024];
	const struct nlattr *a;
	__u16 family;
	__u64 features;
	ssize_t n;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC), rc = -1;

	if (fd < 0)
		return -1;
	n = genl_ask(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, DP_NETDEV_FAMILY,
		     sizeof(DP_NETDEV_FAMILY), buf, sizeof(buf));
	a = genl_attr(buf, n, CTRL_ATTR_FAMILY_ID);
	if (a && a->nla_len >= NLA_HDRLEN + sizeof(family)) {
		memcpy(&family, (const char *)a + NLA_HDRLEN, sizeof(family));
		n = genl_ask(fd, family, DP_NETDEV_CMD_DEV_GET, DP_NETDEV_A_DEV_IFINDEX, &ifindex, sizeof(ifindex), buf,
			     sizeof(buf));
		a = genl_attr(buf, n, DP_NETDEV_A_DEV_XDP_FEATURES);
		if (a && a->nla_len >= NLA_HDRLEN + sizeof(features)) {
			memcpy(&features, (const char *)a + NLA_HDRLEN, sizeof(features));
			rc = (features & DP_NETDEV_XDP_ACT_BASIC) != 0;
		}
	}
	close(fd);
	return rc;
}

/* Remembers that ifindex refused native XDP and says so (once per link and process). */
static void remember_refused(const char *name, __u32 ifindex, const char *why)
{
	if (refused_native(ifindex))
		return;
	if (n_native_refused < DP_MAX_REFUSED)
		native_refused[n_native_refused++] = ifindex;
	dp_log("warn", "xdp_generic_fallback",
	       "%s: the driver has no native XDP (%s); the guard runs in generic (SKB) mode instead, at a higher cost "
	       "per packet (xdp_mode = native-only would make this an error)",
	       name, why);
}

int dp_attach_xdp(const char *links_dir, enum dp_xdp_mode mode, const char *name, __u32 ifindex, int prog_fd,
		  enum dp_attached *got, bool *updated, struct dp_err *err)
{
	struct dp_err nerr = { "" };
	int why;

	*got = DP_ATTACHED_NONE;
	/* our generic link from before a restart, on a driver the kernel says has no native XDP: keep it, in place
	 * (trying native mode would detach it first and leave the link unguarded for a moment) */
	if (mode == DP_XDP_NATIVE && !refused_native(ifindex) && xdp_mode_of(ifindex) == XDP_ATTACHED_SKB &&
	    native_xdp_hint(ifindex) == 0)
		remember_refused(name, ifindex, "the kernel reports no xdp-features for it");
	if (mode == DP_XDP_GENERIC || (mode == DP_XDP_NATIVE && refused_native(ifindex))) {
		if (dp_attach(links_dir, DP_HOOK_XDP_GENERIC, name, ifindex, prog_fd, updated, err))
			return -1;
		*got = DP_ATTACHED_XDP_GENERIC;
		return 0;
	}
	if (!attach_link(links_dir, DP_HOOK_XDP_NATIVE, name, ifindex, prog_fd, updated, &why, &nerr)) {
		*got = DP_ATTACHED_XDP_NATIVE;
		return 0;
	}
	if (mode == DP_XDP_NATIVE_ONLY || (why != EOPNOTSUPP && why != EINVAL))
		return dp_errf(err, "%s%s", nerr.msg, mode == DP_XDP_NATIVE_ONLY ? " [xdp_mode = native-only]" : "");
	remember_refused(name, ifindex, strerror(why));
	if (dp_attach(links_dir, DP_HOOK_XDP_GENERIC, name, ifindex, prog_fd, updated, err))
		return -1;
	*got = DP_ATTACHED_XDP_GENERIC;
	return 0;
}

int dp_detach_stale(const char *links_dir, char *const *keep, int n, struct dp_err *err)
{
	DIR *d = opendir(links_dir);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return errno == ENOENT ? 0 : dp_errf(err, "cannot list %s: %s", links_dir, strerror(errno));
	while ((e = readdir(d))) {
		char path[4096];
		bool kept = false;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		for (int i = 0; i < n; i++)
			kept |= strcmp(keep[i], e->d_name) == 0;
		if (kept)
			continue;
		snprintf(path, sizeof(path), "%s/%s", links_dir, e->d_name);
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			bpf_link_detach(fd);
			close(fd);
		}
		unlink(path);
		dp_log("info", "detach", "removed link %s (interface no longer configured)", e->d_name);
		removed++;
	}
	closedir(d);
	return removed;
}
