// SPDX-License-Identifier: Apache-2.0
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Landlock ABI 3 (Linux 6.2); Debian 12's UAPI headers stop at ABI 2. The value is kernel ABI. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/* Reads the effective, permitted and inheritable sets (both 32-bit words of each); 0 or -1. */
static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };

	return (int)syscall(SYS_capget, &h, d);
}

/* True when capability cap is in the ambient set (false when the kernel has no ambient set). */
static int ambient_has(int cap)
{
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1;
}

/* Number of capabilities this kernel knows: the first index PR_CAPBSET_READ refuses. */
static int cap_count(void)
{
	int cap = 0;

	while (cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

const char *dp_drop_privileges(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	uid_t r, e, s;
	gid_t rg, eg, sg;
	int n = cap_count();

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return "prctl(PR_SET_NO_NEW_PRIVS)";
	for (int cap = 0; cap < n; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EPERM)
			return "prctl(PR_CAPBSET_DROP)";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
	if (syscall(SYS_setgroups, 0, NULL))
		return "setgroups";
	if (syscall(SYS_setresgid, gid, gid, gid))
		return "setresgid";
	if (syscall(SYS_setresuid, uid, uid, uid))
		return "setresuid";
	/* the uid change cleared permitted and effective; inheritable is cleared here */
	if (syscall(SYS_capset, &h, none))
		return "capset";
	if (getresuid(&r, &e, &s) || r != uid || e != uid || s != uid) {
		errno = EPERM;
		return "getresuid (the uid did not change)";
	}
	if (getresgid(&rg, &eg, &sg) || rg != gid || eg != gid || sg != gid) {
		errno = EPERM;
		return "getresgid (the gid did not change)";
	}
	return NULL;
}

int dp_privileged(void)
{
	struct __user_cap_data_struct d[2];
	uid_t r, e, s;
	gid_t rg, eg, sg;
	int n = cap_count();

	if (getresuid(&r, &e, &s) || !r || !e || !s || getresgid(&rg, &eg, &sg) || !rg || !eg || !sg)
		return 1;
	if (caps_get(d))
		return 1;
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			return 1;
	for (int cap = 0; cap < n; cap++)
		if (ambient_has(cap))
			return 1;
	return 0;
}

int dp_check_unprivileged(char *why, size_t whylen)
{
	gid_t groups[256];
	int ng = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups);

	if (dp_privileged()) {
		snprintf(why, whylen, "still uid/gid 0 or holding a capability");
		return -1;
	}
	if (ng < 0) {
		snprintf(why, whylen, "getgroups: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < ng; i++) {
		if (groups[i] == 0) {
			snprintf(why, whylen, "member of group 0");
			return -1;
		}
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		snprintf(why, whylen, "no_new_privs is not set");
		return -1;
	}
	return 0;
}

int dp_confine_writes(const char *dir, char *why, size_t whylen)
{
	struct landlock_ruleset_attr ra = { 0 };
	struct landlock_path_beneath_attr pb = { 0 };
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	int rfd, rc = -1;

	if (abi < 0) {
		/* ENOSYS/EOPNOTSUPP: not built or not enabled; EPERM: a container's seccomp profile */
		snprintf(why, whylen, "Landlock is not available (%s): writes are confined by file permissions only",
			 strerror(errno));
		return 1;
	}
	ra.handled_access_fs = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			       LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
			       LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
			       LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		ra.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		ra.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	rfd = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rfd < 0) {
		snprintf(why, whylen, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	pb.allowed_access = ra.handled_access_fs;
	pb.parent_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pb.parent_fd < 0) {
		snprintf(why, whylen, "cannot open %s: %s", dir, strerror(errno));
	} else if (syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0)) {
		snprintf(why, whylen, "landlock_add_rule %s: %s", dir, strerror(errno));
	} else if (syscall(SYS_landlock_restrict_self, rfd, 0)) {
		snprintf(why, whylen, "landlock_restrict_self: %s", strerror(errno));
	} else {
		rc = 0;
	}
	if (pb.parent_fd >= 0)
		close(pb.parent_fd);
	close(rfd);
	return rc;
}

#if defined(__x86_64__)
#define DP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define DP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* System calls refused with EPERM (those this architecture has). */
static const int denied[] = {
	__NR_ptrace,	      __NR_process_vm_readv, __NR_process_vm_writev, __NR_mount,	  __NR_umount2,
	__NR_pivot_root,      __NR_chroot,	     __NR_unshare,	     __NR_setns,	  __NR_bpf,
	__NR_perf_event_open, __NR_init_module,	     __NR_finit_module,	     __NR_delete_module,  __NR_kexec_load,
	__NR_kexec_file_load, __NR_keyctl,	     __NR_add_key,	     __NR_request_key,	  __NR_userfaultfd,
	__NR_io_uring_setup,  __NR_io_uring_enter,   __NR_io_uring_register, __NR_open_by_handle_at,
	__NR_name_to_handle_at, __NR_swapon,	     __NR_swapoff,	     __NR_reboot,	  __NR_acct,
	__NR_quotactl,	      __NR_open_tree,	     __NR_move_mount,	     __NR_fsopen,	  __NR_fsconfig,
	__NR_fsmount,	      __NR_fspick,	     __NR_mount_setattr,
};

/* clone() flags that create namespaces (CLONE_NEWTIME overlaps clone's exit-signal bits: left out). */
#define NS_FLAGS                                                                                                   \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

int dp_deny_syscalls(char *why, size_t whylen)
{
#ifdef DP_AUDIT_ARCH
	enum { N = sizeof(denied) / sizeof(denied[0]) };
	struct sock_filter f[2 * N + 16];
	struct sock_fprog prog;
	unsigned k = 0;

	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DP_AUDIT_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	/* the x32 ABI shares the architecture value: its numbers have bit 30 set */
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (unsigned i = 0; i < N; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	}
	/* clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes libc use clone */
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)k;
	prog.filter = f;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)) {
		snprintf(why, whylen, "cannot install the seccomp filter: %s", strerror(errno));
		return errno == EINVAL ? 1 : -1; /* EINVAL: a kernel without CONFIG_SECCOMP_FILTER */
	}
	return 0;
#else
	snprintf(why, whylen, "no seccomp filter for this architecture");
	return 1;
#endif
}
