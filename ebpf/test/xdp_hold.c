// SPDX-License-Identifier: Apache-2.0
/*
 * A foreign XDP program held through a BPF link, as another daemon (an operator's tool built on
 * libxdp or libbpf links) holds one: loads the first program of OBJECT, attaches it to IFNAME with
 * BPF_LINK_CREATE (native mode, or generic with --generic), prints one JSON line, and keeps the
 * link until SIGTERM or SIGINT. Exiting closes the link's last descriptor, which detaches the
 * program without any netlink notification (unlike `ip link set dev IF xdp off`).
 *
 *   xdp_hold OBJECT IFNAME [--generic]
 *
 * Prints {"ready":true,"prog_id":N,"ifindex":N} once attached, or {"ready":false,"why":"..."} and
 * exits 1.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Prints the failure line and returns 1. */
static int fail(const char *what, int e)
{
	printf("{\"ready\":false,\"why\":\"%s: %s\"}\n", what, strerror(e));
	fflush(stdout);
	return 1;
}

/*
 * Loads OBJECT, links its first program at XDP on IFNAME in the mode asked for, reports, and
 * waits for SIGTERM/SIGINT with the link held; returns the exit status.
 */
int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	sigset_t mask;
	unsigned int ifindex;
	int link, sig;

	if (argc < 3 || (argc == 4 && strcmp(argv[3], "--generic")) || argc > 4) {
		fprintf(stderr, "usage: xdp_hold OBJECT IFNAME [--generic]\n");
		return 2;
	}
	ifindex = if_nametoindex(argv[2]);
	if (!ifindex)
		return fail("no such interface", errno);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return fail("cannot open the object", errno);
	if (bpf_object__load(obj))
		return fail("cannot load the object", errno);
	prog = bpf_object__next_program(obj, NULL);
	if (!prog)
		return fail("the object has no program", ENOENT);
	{
		LIBBPF_OPTS(bpf_link_create_opts, o, .flags = argc == 4 ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);

		link = bpf_link_create(bpf_program__fd(prog), (int)ifindex, BPF_XDP, &o);
	}
	if (link < 0)
		return fail("cannot attach", errno);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return fail("cannot read the program's id", errno);
	printf("{\"ready\":true,\"prog_id\":%u,\"ifindex\":%u}\n", info.id, ifindex);
	fflush(stdout);
	sigwait(&mask, &sig);
	close(link);
	bpf_object__close(obj);
	return 0;
}
