/*
 * procstat.h: what the load generator reads about the server processes it
 * measures (by pid, from /proc) and about itself: resident memory and CPU
 * time.
 */
#ifndef CHORUS_BENCH_PROCSTAT_H
#define CHORUS_BENCH_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/* Resident set size of pid in KiB (VmRSS). Returns 0, or -1 if unreadable. */
int proc_rss_kib(pid_t pid, uint64_t *kib);
/* CPU time pid has used (user + system, all threads) in microseconds.
 * Returns 0, or -1 if unreadable. */
int proc_cpu_us(pid_t pid, uint64_t *us);
/* CPU time this process has used, in microseconds. */
uint64_t self_cpu_us(void);

#endif
