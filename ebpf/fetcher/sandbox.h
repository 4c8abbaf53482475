/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Giving up privileges and confining a process, for the code that touches the internet.
 *
 * The loader drops the fetcher's privileges in the child between fork and exec
 * (dp_drop_privileges, which is async-signal-safe for that reason), and router-fetch checks and,
 * when started with privileges by someone else, drops them again itself before it parses its
 * command line further, then confines its writes to its output directory (Landlock) and refuses a
 * set of system calls that only serve an attacker (seccomp). Defence in depth: each layer holds
 * when another is missing (e.g. a kernel without Landlock).
 */
#ifndef DP_SANDBOX_H
#define DP_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Becomes uid/gid for good: no supplementary groups, every capability set empty (bounding set
 * first, while CAP_SETPCAP is still held; then ambient, and after the uid change inheritable,
 * permitted and effective), PR_SET_NO_NEW_PRIVS. Only system calls, no allocation or stdio: safe
 * between fork and exec of a threaded process. Returns NULL, or the name of the step that failed
 * with errno set. A process without CAP_SETPCAP cannot empty its bounding set; that step is then
 * skipped (with no_new_privs and no permitted capabilities the bounding set can never grant one).
 */
const char *dp_drop_privileges(uid_t uid, gid_t gid);

/*
 * True when the process holds a privilege: uid or gid 0 (real, effective or saved), or any
 * capability in the effective, permitted, inheritable or ambient set.
 */
int dp_privileged(void);

/*
 * Checks that the process can no longer gain anything: uids and gids not 0, no supplementary group
 * 0, the effective, permitted, inheritable and ambient sets empty, no_new_privs set. Returns 0, or
 * -1 with the first problem in why.
 */
int dp_check_unprivileged(char *why, size_t whylen);

/*
 * Landlock: from now on this process (and its children) may create, write, truncate, rename or
 * remove files only beneath dir; reading is not restricted. Needs no_new_privs. Returns 0 when
 * applied, 1 when Landlock is not available (why says so), -1 on error (why).
 */
int dp_confine_writes(const char *dir, char *why, size_t whylen);

/*
 * seccomp: system calls a list fetcher never needs and an attacker would (ptrace, mount and
 * namespaces, BPF, perf, kernel modules and kexec, keyrings, io_uring, userfaultfd, clone with
 * namespace flags) fail with EPERM; a call of another architecture ABI kills the process. Needs
 * no_new_privs. Returns 0, 1 when the kernel or architecture has no filter (why), -1 on error (why).
 */
int dp_deny_syscalls(char *why, size_t whylen);

#endif /* DP_SANDBOX_H */
