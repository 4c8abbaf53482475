// SPDX-License-Identifier: Apache-2.0
/*
 * Verifier and attachment check: every BPF object given on the command line is loaded through the
 * kernel verifier, and each of its programs is attached to a veth in a private network namespace
 * (XDP in native and in generic mode, tc programs through tcx) and found there by a kernel query.
 *
 *   attach_test OBJECT.bpf.o...
 *
 * One JSON line per program; exits 1 if any program fails.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"

static char verifier_log[1 << 20];

/* True when prog_id is among the programs the kernel reports at (ifindex, hook). */
static int attached_here(__u32 ifindex, enum dp_hook hook, __u32 prog_id)
{
	if (hook == DP_HOOK_XDP_NATIVE || hook == DP_HOOK_XDP_GENERIC) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);

		if (bpf_xdp_query((int)ifindex, 0, &q))
			return 0;
		return hook == DP_HOOK_XDP_NATIVE ? q.attach_mode == XDP_ATTACHED_DRV && q.drv_prog_id == prog_id
						  : q.attach_mode == XDP_ATTACHED_SKB && q.skb_prog_id == prog_id;
	} else {
		__u32 ids[16], cnt = 16, flags = 0;

		if (bpf_prog_query((int)ifindex, hook == DP_HOOK_TCX_INGRESS ? BPF_TCX_INGRESS : BPF_TCX_EGRESS, 0, &flags,
				   ids, &cnt))
			return 0;
		for (__u32 i = 0; i < cnt; i++)
			if (ids[i] == prog_id)
				return 1;
		return 0;
	}
}

static int check_object(const char *path, __u32 ifindex)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .kernel_log_buf = verifier_log, .kernel_log_size = sizeof(verifier_log),
		    .kernel_log_level = 0);
	struct bpf_object *obj = bpf_object__open_file(path, &oo);
	struct bpf_program *prog;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int failed = 0, rc;

	if (!obj) {
		printf("{\"object\":\"%s\",\"ok\":false,\"why\":\"cannot open\"}\n", base);
		return 1;
	}
	rc = bpf_object__load(obj);
	if (rc) {
		char *nl;

		/* last verifier line names the problem */
		verifier_log[sizeof(verifier_log) - 1] = '\0';
		for (nl = verifier_log + strlen(verifier_log); nl > verifier_log && (nl[-1] == '\n'); nl--)
			nl[-1] = '\0';
		nl = strrchr(verifier_log, '\n');
		printf("{\"object\":\"%s\",\"ok\":false,\"why\":\"verifier rejected: %s\"}\n", base,
		       nl ? nl + 1 : strerror(-rc));
		bpf_object__close(obj);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd = bpf_program__fd(prog), link;
		enum dp_hook hooks[2];
		int nh = 0, ok = 1;
		const char *kind;

		memset(&info, 0, sizeof(info));
		bpf_obj_get_info_by_fd(fd, &info, &len);
		if (bpf_program__type(prog) == BPF_PROG_TYPE_XDP) {
			hooks[nh++] = DP_HOOK_XDP_NATIVE;
			hooks[nh++] = DP_HOOK_XDP_GENERIC;
			kind = "xdp-native+generic";
		} else {
			hooks[nh++] = DP_HOOK_TCX_INGRESS;
			hooks[nh++] = DP_HOOK_TCX_EGRESS;
			kind = "tcx-ingress+egress";
		}
		for (int h = 0; h < nh; h++) {
			link = dp_link_create(hooks[h], ifindex, fd);
			if (link < 0 || !attached_here(ifindex, hooks[h], info.id))
				ok = 0;
			if (link >= 0)
				close(link);
		}
		failed += !ok;
		printf("{\"object\":\"%s\",\"program\":\"%s\",\"verified_insns\":%u,\"xlated_bytes\":%u,\"jited_bytes\":%u,"
		       "\"attach\":\"%s\",\"ok\":%s}\n",
		       base, bpf_program__name(prog), info.verified_insns, info.xlated_prog_len, info.jited_prog_len, kind,
		       ok ? "true" : "false");
	}
	bpf_object__close(obj);
	return failed;
}

int main(int argc, char **argv)
{
	__u32 ifindex;
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: attach_test OBJECT.bpf.o...\n");
		return 2;
	}
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s (needs root)\n", strerror(errno));
		return 2;
	}
	if (system("ip link add dpt0 type veth peer name dpt1 && ip link set dpt0 up && ip link set dpt1 up")) {
		fprintf(stderr, "cannot create the veth pair\n");
		return 2;
	}
	ifindex = if_nametoindex("dpt0");
	for (int i = 1; i < argc; i++)
		failed += check_object(argv[i], ifindex);
	printf("{\"summary\":{\"objects\":%d,\"failed\":%d}}\n", argc - 1, failed);
	return failed ? 1 : 0;
}
