/*
 * procstat.c: reading /proc/<pid>/status (VmRSS) and /proc/<pid>/stat
 * (utime, stime) for the processes under test, and getrusage for the
 * generator itself.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "procstat.h"

int proc_rss_kib(pid_t pid, uint64_t *kib)
{
	char path[64], line[256];
	int rc = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long long v;
		if (sscanf(line, "VmRSS: %llu kB", &v) == 1) {
			*kib = v;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int proc_cpu_us(pid_t pid, uint64_t *us)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	unsigned long long utime, stime;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
			 &stime) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	*us = (utime + stime) * 1000000ull / (unsigned long long)(hz > 0 ? hz : 100);
	return 0;
}

uint64_t self_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

