// SPDX-License-Identifier: Apache-2.0
#include "forwarding.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPV4_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define IPV6_FORWARD "/proc/sys/net/ipv6/conf/all/forwarding"

int dp_sysctl_read(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] >= '0' && buf[0] <= '9' ? atoi(buf) : -1;
}

/* Writes "value\n" to a sysctl file; 0 or -1 with errno. */
static int sysctl_write(const char *path, int value)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	if (fprintf(f, "%d\n", value) < 0) {
		int e = errno;

		fclose(f);
		errno = e;
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

void dp_forwarding_read(struct dp_forwarding *f)
{
	f->ipv4 = dp_sysctl_read(IPV4_FORWARD);
	f->ipv6 = dp_sysctl_read(IPV6_FORWARD);
}

int dp_uplink_accept_ra(const char *wan, const char *kname)
{
	char path[256];
	int cur;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/accept_ra", kname);
	cur = dp_sysctl_read(path);
	if (cur < 0 || cur == 2)
		return 0; /* no IPv6 on this link, or set already */
	if (sysctl_write(path, 2)) {
		dp_log("warn", "wan_accept_ra", "[wan %s]: cannot set %s to 2: %s (no SLAAC on this uplink while forwarding)",
		       wan, path, strerror(errno));
		return -1;
	}
	dp_log("info", "wan_accept_ra", "[wan %s]: %s = 2 (router advertisements accepted while forwarding)", wan, path);
	return 0;
}

int dp_forwarding_enable(const struct dp_uplink *uplinks, int n, struct dp_err *err)
{
	static const char *const keys[2] = { IPV4_FORWARD, IPV6_FORWARD };
	int wrote = 0;

	for (int i = 0; i < n; i++)
		dp_uplink_accept_ra(uplinks[i].name, uplinks[i].kname);
	for (int k = 0; k < 2; k++) {
		int cur = dp_sysctl_read(keys[k]);

		if (cur == 1 || (cur < 0 && k == 1))
			continue; /* on already; or a kernel without IPv6 */
		if (sysctl_write(keys[k], 1))
			return dp_errf(err, "cannot switch forwarding on (%s): %s", keys[k], strerror(errno));
		wrote = 1;
	}
	return wrote;
}
