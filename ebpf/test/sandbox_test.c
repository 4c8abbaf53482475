// SPDX-License-Identifier: Apache-2.0
/*
 * sandbox_test --allowed DIR --other DIR: exercises fetcher/sandbox.c as root. Each check runs in a
 * forked child and prints one JSON line; errno values are numbers (0 = the call worked).
 *
 *   {"check":"status"}    after dp_drop_privileges(65534, 65534): the /proc/self/status lines that
 *                          matter (Uid, Gid, Groups, Cap*, NoNewPrivs, Seccomp)
 *   {"check":"baseline"}  dropped but not confined: what the same calls do without the sandbox
 *   {"check":"confined"}  dropped, dp_confine_writes(allowed), dp_deny_syscalls
 *   {"check":"root"}      dp_check_unprivileged in the (root) parent
 *
 * The vitest side compares baseline and confined, so a confined refusal is the sandbox's doing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetch.h"
#include "sandbox.h"

/* errno of a call that returns -1 on failure (0 when it worked). */
#define ERR(call) ((call) < 0 ? errno : 0)

/* Creates path (a new regular file); errno or 0. */
static int create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void *thread_fn(void *arg)
{
	return arg;
}

/* Prints the status lines of the calling process as one JSON object. */
static void print_status(void)
{
	static const char *const keys[] = { "Uid", "Gid", "Groups", "CapInh", "CapPrm",
					    "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp" };
	FILE *f = fopen("/proc/self/status", "re");
	char line[512];

	printf("{\"check\":\"status\"");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *v;

		if (!colon)
			continue;
		*colon = '\0';
		v = colon + 1 + strspn(colon + 1, " \t");
		v[strcspn(v, "\n")] = '\0';
		for (char *t = v; *t; t++)
			if (*t == '\t')
				*t = ' ';
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(line, keys[i]))
				printf(",\"%s\":\"%s\"", line, v);
	}
	if (f)
		fclose(f);
	printf("}\n");
}

/* The calls an attacker in the fetcher would try, printed as errno values under name. */
static void probe(const char *name, const char *allowed, const char *other)
{
	char a[4096], b[4096], c[4096];
	pthread_t th;
	struct addrinfo *ai = NULL;
	int thread, gai;

	snprintf(a, sizeof(a), "%s/%s-file", allowed, name);
	snprintf(b, sizeof(b), "%s/%s-file", other, name);
	snprintf(c, sizeof(c), "%s/%s-dir", other, name);
	printf("{\"check\":\"%s\",\"create_allowed\":%d,\"create_other\":%d", name, create(a), create(b));
	printf(",\"mkdir_other\":%d", ERR(mkdir(c, 0755)));
	snprintf(b, sizeof(b), "%s/%s-moved", other, name);
	printf(",\"rename_out\":%d", ERR(rename(a, b)));
	snprintf(b, sizeof(b), "%s/victim", other);
	printf(",\"unlink_other\":%d", ERR(unlink(b)));
	{
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);

		if (r == 0)
			_exit(0);
		printf(",\"clone_newuser\":%d", r < 0 ? errno : 0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
	}
	/* after clone: a process that is in a new user namespace already may not clone into another */
	printf(",\"unshare_user\":%d", ERR(unshare(CLONE_NEWUSER)));
	thread = pthread_create(&th, NULL, thread_fn, NULL);
	if (!thread)
		pthread_join(th, NULL);
	gai = getaddrinfo("localhost", "443", NULL, &ai);
	if (ai)
		freeaddrinfo(ai);
	printf(",\"thread\":%d,\"getaddrinfo\":%d", thread, gai);
	/* last: a traced child stops at its next signal, and its parent's wait would return */
	printf(",\"ptrace_traceme\":%d}\n", ERR(ptrace(PTRACE_TRACEME, 0, NULL, NULL)));
}

/* In a child that dropped privileges (and confined itself when confine): the status or the probes; waits for it. */
static void in_child(const char *allowed, const char *other, int confine, int status_only)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char why[512];
		const char *step = dp_drop_privileges(DP_FETCH_UID, DP_FETCH_GID);

		if (step) {
			printf("{\"check\":\"error\",\"step\":\"%s\",\"errno\":%d}\n", step, errno);
			_exit(1);
		}
		if (confine && (dp_confine_writes(allowed, why, sizeof(why)) || dp_deny_syscalls(why, sizeof(why)))) {
			/* here both must apply: the kernel has them */
			printf("{\"check\":\"error\",\"step\":\"confine\",\"why\":\"%s\"}\n", why);
			_exit(1);
		}
		if (status_only)
			print_status();
		else
			probe(confine ? "confined" : "baseline", allowed, other);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "allowed", required_argument, NULL, 'a' },
						  { "other", required_argument, NULL, 'o' },
						  { NULL, 0, NULL, 0 } };
	const char *allowed = NULL, *other = NULL;
	char why[256], victim[4096];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'a')
			allowed = optarg;
		else if (opt == 'o')
			other = optarg;
		else
			return 2;
	}
	if (!allowed || !other) {
		fprintf(stderr, "usage: sandbox_test --allowed DIR --other DIR\n");
		return 2;
	}
	rc = dp_check_unprivileged(why, sizeof(why));
	printf("{\"check\":\"root\",\"rc\":%d,\"why\":\"%s\"}\n", rc, why);
	in_child(allowed, other, 0, 1);
	for (int confine = 0; confine < 2; confine++) {
		int e;

		snprintf(victim, sizeof(victim), "%s/victim", other);
		e = create(victim);
		if ((!e || e == EEXIST) && chown(victim, DP_FETCH_UID, DP_FETCH_GID))
			perror("chown");
		in_child(allowed, other, confine, 0);
	}
	return 0;
}
