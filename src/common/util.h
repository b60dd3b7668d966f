/*
 * util.h: small helpers every chorus program uses: allocation that aborts on
 * failure (so no caller handles a half-failed NULL), levelled logging to
 * stderr, and clocks.
 */
#ifndef CHORUS_UTIL_H
#define CHORUS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define CHORUS_VERSION "0.1.0"

/* Allocation: never returns NULL; prints a message and aborts instead. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new allocated string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below the level are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int log_level_parse(const char *name);
/* Fields printed on every line after the time, as "key=value ..." (e.g.
 * "replica=1 server=r1.chorus"); NULL for none. The string is kept. */
void log_set_tag(const char *tag);
/* Writes one line to stderr, key=value: ts=<UTC time> <the tag's fields>
 * level=<level> msg="<the message>" (", \ and control characters escaped
 * as \", \\, \n, \xHH). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Big-endian 32-bit integers in wire formats (p: 4 bytes). */
void put_be32(unsigned char *p, uint32_t v);
uint32_t get_be32(const unsigned char *p);

/* Wall-clock time in milliseconds since the epoch (display only, never order). */
int64_t wall_ms(void);

/* Formats a wall-clock time as IRCv3 server-time: 2024-01-02T03:04:05.678Z.
 * buf must hold at least 25 bytes. */
void format_server_time(int64_t ms, char *buf, size_t len);
/* Parses server-time format (the inverse); returns 0 and sets *ms, or -1. */
int parse_server_time(const char *s, int64_t *ms);

#endif
