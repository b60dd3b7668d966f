/*
 * util.c: allocation that aborts, logging, clocks and time formatting.
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;
static const char *current_tag;

static void out_of_memory(size_t n)
{
	fprintf(stderr, "chorus: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		out_of_memory(n);
	return p;
}

void *xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (!p)
		out_of_memory(count * n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		out_of_memory(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory(0);
	va_end(ap);
	return s;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

int log_level_parse(const char *name)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, names[i]) == 0)
			return i;
	return -1;
}

void log_set_tag(const char *tag)
{
	current_tag = tag;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char when[32];
	va_list ap;

	if (level < current_level)
		return;
	char text[4096], line[4096 * 4 + 256];
	format_server_time(wall_ms(), when, sizeof when);
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	int n = snprintf(line, sizeof line, "ts=%s %s%slevel=%s msg=\"", when, current_tag ? current_tag : "",
			 current_tag ? " " : "", names[level]);
	for (const unsigned char *p = (const unsigned char *)text; *p && n < (int)sizeof line - 8; p++) {
		if (*p == '"' || *p == '\\')
			n += snprintf(line + n, sizeof line - (size_t)n, "\\%c", *p);
		else if (*p == '\n')
			n += snprintf(line + n, sizeof line - (size_t)n, "\\n");
		else if (*p < 0x20 || *p == 0x7f)
			n += snprintf(line + n, sizeof line - (size_t)n, "\\x%02x", *p);
		else
			line[n++] = (char)*p;
	}
	line[n++] = '"';
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void format_server_time(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int parse_server_time(const char *s, int64_t *ms)
{
	struct tm tm;
	int millis = 0, n = 0;
	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	s += n;
	if (*s == '.') {
		int digits = 0;
		s++;
		while (*s >= '0' && *s <= '9') {
			if (digits < 3) {
				millis = millis * 10 + (*s - '0');
				digits++;
			}
			s++;
		}
		while (digits++ < 3)
			millis *= 10;
	}
	if (strcmp(s, "Z") != 0 && *s != '\0')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + millis;
	return 0;
}

void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
