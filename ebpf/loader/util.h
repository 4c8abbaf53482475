/* SPDX-License-Identifier: Apache-2.0 */
/* Logging (JSON lines on stderr) and error messages shared by the loader and the test tools. */
#ifndef DP_UTIL_H
#define DP_UTIL_H

#include <stdarg.h>
#include <stddef.h>

#define DP_ERR_MAX 4096

/* An error message for the operator: names the file, line and field, and what is allowed. */
struct dp_err {
	char msg[DP_ERR_MAX];
};

/* Sets e->msg (replacing it) and returns -1, so callers can write `return dp_errf(e, ...)`. */
int dp_errf(struct dp_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a line to e->msg (errors are collected, one per line); returns -1. */
int dp_err_append(struct dp_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes one JSON object line {"time","level","event","msg"} to stderr. */
void dp_log(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends s to buf (capacity cap, current length *len) as a JSON string body (no quotes). */
void dp_json_escape(char *buf, size_t cap, size_t *len, const char *s);

/* Monotonic and wall-clock time in seconds. */
double dp_now_mono(void);
double dp_now_wall(void);

#endif /* DP_UTIL_H */
