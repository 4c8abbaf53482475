// SPDX-License-Identifier: Apache-2.0
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int dp_errf(struct dp_err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int dp_err_append(struct dp_err *e, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (!e)
		return -1;
	n = strnlen(e->msg, sizeof(e->msg));
	if (n > 0 && n + 1 < sizeof(e->msg))
		e->msg[n++] = '\n';
	if (n + 1 >= sizeof(e->msg))
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
	return -1;
}

void dp_json_escape(char *buf, size_t cap, size_t *len, const char *s)
{
	for (; *s && *len + 7 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)ch;
		} else if (ch == '\n') {
			buf[(*len)++] = '\\';
			buf[(*len)++] = 'n';
		} else if (ch < 0x20) {
			*len += (size_t)snprintf(buf + *len, cap - *len, "\\u%04x", ch);
		} else {
			buf[(*len)++] = (char)ch;
		}
	}
	buf[*len] = '\0';
}

void dp_log(const char *level, const char *event, const char *fmt, ...)
{
	char msg[DP_ERR_MAX + 256], line[2 * DP_ERR_MAX + 512], ts[40];
	struct timespec now;
	struct tm tm;
	size_t len = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	len = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":\"", ts,
			       now.tv_nsec / 1000000, level);
	dp_json_escape(line, sizeof(line), &len, event);
	len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
	dp_json_escape(line, sizeof(line), &len, msg);
	snprintf(line + len, sizeof(line) - len, "\"}\n");
	fputs(line, stderr);
	fflush(stderr);
}

double dp_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double dp_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
