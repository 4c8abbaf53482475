/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Attachment through BPF links pinned in bpffs, so the programs outlive the loader process and a
 * new loader replaces them in place (bpf_link_update) instead of detaching first.
 */
#ifndef DP_ATTACH_H
#define DP_ATTACH_H

#include <linux/types.h>
#include <stdbool.h>

#include "config.h"
#include "util.h"

/* tcx is newer than this libbpf's headers: the kernel ABI values. */
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif
#define DP_BPF_LINK_TYPE_XDP 6
#define DP_BPF_LINK_TYPE_TCX 11
#define DP_BPF_F_BEFORE (1U << 3)

enum dp_hook {
	DP_HOOK_XDP_NATIVE,
	DP_HOOK_XDP_GENERIC,
	DP_HOOK_TCX_INGRESS,
	DP_HOOK_TCX_EGRESS,
};

/* File name of the pinned link of (hook, ifname) inside the links directory ('.' becomes ':'). */
void dp_link_pin_name(enum dp_hook hook, const char *ifname, char *buf, size_t len);

/*
 * Makes prog_fd run at hook on the link ifindex, configured as name (which names the pin; the
 * kernel name may differ when name is a Talos alias). A link pinned in links_dir for the same
 * name and hook that sits on ifindex is updated atomically, and so is (XDP) an unpinned link on
 * ifindex that runs a program of prog_fd's name (ours, its pin lost); otherwise a new link is
 * created (tcx: in front of other programs) and pinned. *updated tells which happened.
 */
int dp_attach(const char *links_dir, enum dp_hook hook, const char *name, __u32 ifindex, int prog_fd, bool *updated,
	      struct dp_err *err);

/* What runs on a configured interface after an attach. */
enum dp_attached {
	DP_ATTACHED_NONE = 0,  /* nothing of ours (see the error) */
	DP_ATTACHED_XDP_NATIVE,
	DP_ATTACHED_XDP_GENERIC,
	DP_ATTACHED_TCX,
};

/* The attach state of one configured interface, for metrics and /health. */
struct dp_iface_attach {
	enum dp_attached attached;
	bool fell_back;  /* xdp_mode native, but the driver has none: generic instead */
	char error[512]; /* why it is not attached ("" when it is) */
};

/*
 * Attaches the WAN guard's prog_fd at XDP on ifindex as configured name (see dp_attach), in mode:
 * generic; native-only (a refusal is an error); or native, falling back to generic when the driver
 * refuses native mode (EOPNOTSUPP, EINVAL), with a warning. A link that refused native mode once is
 * remembered for the life of the process and goes straight to generic (updated in place, no gap).
 * *got is DP_ATTACHED_XDP_NATIVE or _GENERIC on success.
 */
int dp_attach_xdp(const char *links_dir, enum dp_xdp_mode mode, const char *name, __u32 ifindex, int prog_fd,
		  enum dp_attached *got, bool *updated, struct dp_err *err);

/* Creates an unpinned link of prog_fd at hook on ifindex (tcx: first in the chain); fd or -1. */
int dp_link_create(enum dp_hook hook, __u32 ifindex, int prog_fd);

/*
 * Detaches and unpins every link in links_dir whose file name is not in keep (n names);
 * returns the number removed or -1.
 */
int dp_detach_stale(const char *links_dir, char *const *keep, int n, struct dp_err *err);

/* Creates dir and its parents (mode 0700). */
int dp_mkdirs(const char *dir, struct dp_err *err);

/* Checks that path lies on a mounted bpffs. */
int dp_check_bpffs(const char *path, struct dp_err *err);

#endif /* DP_ATTACH_H */
