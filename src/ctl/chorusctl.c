/*
 * chorusctl: the operator's tool for a local chorus cluster.
 *
 *   chorusctl up -n 5 [--dir run] [--port 6667] [--mode M] [--sync S] [--detach]
 *       writes a private Corosync configuration (one node on 127.0.0.1) and a
 *       self-signed TLS certificate (files.c), starts Corosync and N replicas
 *       (ids 1..N, client ports port..port+N-1, TLS ports 30 above, data in
 *       DIR/r<i>), and supervises them: a replica (or Corosync) that dies is
 *       started again at once. Runs in the foreground until SIGINT/SIGTERM
 *       (or `chorusctl down`); --detach returns once every replica listens.
 *   chorusctl status [--dir run]   each replica: id, address, state, view size, ops
 *   chorusctl digest [--dir run] [--full]   each replica's set digest (of
 *                                  the operations it applied; --full: of its
 *                                  whole state, a pass over all of it); exit
 *                                  0 iff all are equal and none is syncing
 *   chorusctl down [--dir run]     stops the supervisor and everything it runs
 *
 * Corosync keeps its files in /run, /var/lib/corosync and /dev/shm; the
 * cluster runs in a private mount namespace with directories of DIR bound
 * over those, so it meets no other Corosync's files (it needs root). It
 * shares the machine's network, so clients reach the replicas on 127.0.0.1.
 * DIR/cluster.conf lists the replicas (libconfig, the format chorusd and
 * chorus read).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/buf.h"
#include "common/util.h"
#include "proto/irc.h"
#include "ctl.h"

#define QUICK_DEATH_S 10    /* a replica that dies sooner after its start died "at once" */
#define BACKOFF_MAX_S 60    /* the longest pause before starting it again */

struct child {
	pid_t pid;          /* 0 while it waits for its restart */
	int restarts;       /* deaths "at once" in a row */
	time_t started;
	time_t restart_at;  /* when pid is 0: when to start it again */
};

static volatile sig_atomic_t stopping;

static void on_stop_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* ---- the private mount namespace ---- */

static int bind_over(const char *dir, const char *name, const char *target)
{
	char src[PATH_MAX + 32];
	snprintf(src, sizeof src, "%s/ns/%s", dir, name);
	if (make_dir(src) < 0)
		return -1;
	if (mount(src, target, NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "chorusctl: cannot bind %s over %s: %s\n", src, target, strerror(errno));
		return -1;
	}
	return 0;
}

static int enter_namespace(const char *dir)
{
	char ns[PATH_MAX + 8];
	snprintf(ns, sizeof ns, "%s/ns", dir);
	if (make_dir(ns) < 0)
		return -1;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "chorusctl: cannot make a private mount namespace (%s): run as root\n",
			strerror(errno));
		return -1;
	}
	mkdir("/var/lib/corosync", 0755);
	if (bind_over(dir, "run", "/run") < 0 || bind_over(dir, "lib", "/var/lib/corosync") < 0 ||
	    bind_over(dir, "shm", "/dev/shm") < 0)
		return -1;
	return 0;
}

/* ---- children ---- */

/* The children's malloc heaps on transparent huge pages (glibc's tunable
 * glibc.malloc.hugetlb), unless GLIBC_TUNABLES already sets it. A replica's
 * state is many small objects over a large heap; with 4 KiB pages the
 * replicas of one machine spent much of their time in page faults and TLB
 * misses (docs/PERFORMANCE.md). */
static void heap_on_huge_pages(void)
{
	const char *have = getenv("GLIBC_TUNABLES");
	char value[1024];
	if (have && strstr(have, "glibc.malloc.hugetlb"))
		return;
	snprintf(value, sizeof value, "%s%sglibc.malloc.hugetlb=1", have ? have : "",
		 have && *have ? ":" : "");
	setenv("GLIBC_TUNABLES", value, 1);
}

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		/* children never outlive their supervisor */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setpgid(0, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "chorusctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static pid_t start_corosync(const struct options *o)
{
	char conf[PATH_MAX + 32], log[PATH_MAX + 32];
	snprintf(conf, sizeof conf, "%s/corosync.conf", o->dir);
	snprintf(log, sizeof log, "%s/corosync.out", o->dir);
	char *argv[] = {"corosync", "-f", "-c", conf, NULL};
	return spawn(argv, log);
}

static pid_t start_replica(const struct options *o, int i)
{
	char id[16], port[16], tls_port[16], data[PATH_MAX + 16], conf[PATH_MAX + 32], log[PATH_MAX + 32];
	char cert[PATH_MAX + 32], key[PATH_MAX + 32];
	snprintf(id, sizeof id, "%d", i);
	snprintf(port, sizeof port, "%d", o->port + i - 1);
	snprintf(tls_port, sizeof tls_port, "%d", o->port + i - 1 + TLS_PORT_OFFSET);
	snprintf(cert, sizeof cert, "%s/tls/cert.pem", o->dir);
	snprintf(key, sizeof key, "%s/tls/key.pem", o->dir);
	snprintf(data, sizeof data, "%s/r%d", o->dir, i);
	snprintf(conf, sizeof conf, "%s/cluster.conf", o->dir);
	snprintf(log, sizeof log, "%s/r%d.log", o->dir, i);
	char *fixed[] = {(char *)o->chorusd, "--config", conf, "--id", id, "--port", port, "--data-dir", data,
			 "--group", "corosync", "--sync", (char *)o->sync, "--flood-rate", "1000",
			 "--flood-burst", "1000", "--tls-cert", cert, "--tls-key", key, "--tls-port", tls_port,
			 /* a self-signed certificate: no sts, so clients are not held to it */
			 "--sts-duration", "0"};
	size_t nfixed = sizeof fixed / sizeof fixed[0];
	char *argv[sizeof fixed / sizeof fixed[0] + 2 + 64 + 1];
	memcpy(argv, fixed, sizeof fixed);
	if (o->user) {
		argv[nfixed++] = "--user";
		argv[nfixed++] = (char *)o->user;
	}
	for (int k = 0; k < o->nextra; k++)
		argv[nfixed + (size_t)k] = o->extra[k]; /* later flags override the ones above */
	argv[nfixed + (size_t)o->nextra] = NULL;
	return spawn(argv, log);
}

static int port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static void write_pid(const struct options *o)
{
	char path[PATH_MAX + 32], text[32];
	snprintf(path, sizeof path, "%s/chorusctl.pid", o->dir);
	snprintf(text, sizeof text, "%d\n", (int)getpid());
	write_file(path, text);
}

/* DIR/r<i>.state: why replica i is down and when it starts again (for
 * chorusctl status), or no file. It stays while a replica that kept dying
 * at once is started again, until that one has run QUICK_DEATH_S: else a
 * status taken while it starts to die once more would not say why. */
static void write_state(const struct options *o, int i, const char *text)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/r%d.state", o->dir, i);
	if (!text)
		unlink(path);
	else
		write_file(path, text);
}

/* Replica i died (status): it starts again at once, unless it keeps dying
 * at once (a store that cannot open, a port taken): then after 1, 2, 4 ...
 * up to BACKOFF_MAX_S seconds, said in the log and in its state file. */
static void replica_died(const struct options *o, struct child *r, int i, int status)
{
	char how[64], text[256];
	snprintf(how, sizeof how, "%s %d", WIFSIGNALED(status) ? "signal" : "status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	time_t now = time(NULL);
	r->restarts = now - r->started < QUICK_DEATH_S ? r->restarts + 1 : 0;
	int wait = 0;
	if (r->restarts > 1) {
		wait = 1 << (r->restarts - 2 < 6 ? r->restarts - 2 : 6);
		wait = wait > BACKOFF_MAX_S ? BACKOFF_MAX_S : wait;
	}
	r->pid = 0;
	r->restart_at = now + wait;
	if (wait) {
		log_warn("replica %d exited (%s), %d times in a row at once: starting it again in %d s; see %s/r%d.log",
			 i, how, r->restarts, wait, o->dir, i);
		snprintf(text, sizeof text, "restarting at %lld: exited (%s) %d times in a row right after starting; see r%d.log\n",
			 (long long)r->restart_at, how, r->restarts, i);
		write_state(o, i, text);
	} else {
		log_warn("replica %d exited (%s): starting it again", i, how);
	}
}

/* Restarts whatever died; returns when told to stop. */
static void supervise(const struct options *o, struct child *cs, struct child *rs)
{
	while (!stopping) {
		int status;
		time_t now = time(NULL);
		for (int i = 1; i <= o->n; i++) {
			if (rs[i].pid == 0 && now >= rs[i].restart_at) {
				rs[i].pid = start_replica(o, i);
				rs[i].started = now;
			} else if (rs[i].pid > 0 && rs[i].restarts && now - rs[i].started >= QUICK_DEATH_S) {
				rs[i].restarts = 0; /* it runs: its streak of quick deaths is over */
				write_state(o, i, NULL);
			}
		}
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0 || (pid < 0 && errno == ECHILD)) {
			struct timespec tick = {0, 100 * 1000 * 1000};
			nanosleep(&tick, NULL);
			continue;
		}
		if (pid < 0)
			continue; /* EINTR: a signal, perhaps the stop */
		if (stopping)
			break;
		if (pid == cs->pid) {
			log_warn("corosync exited (status %d): starting it again; see %s/corosync.log", status, o->dir);
			if (time(NULL) - cs->started < 2 && ++cs->restarts > 3)
				sleep(2);
			cs->pid = start_corosync(o);
			cs->started = time(NULL);
			continue;
		}
		for (int i = 1; i <= o->n; i++)
			if (rs[i].pid == pid)
				replica_died(o, &rs[i], i, status);
	}
}

static void write_state(const struct options *o, int i, const char *text);

static void stop_all(const struct options *o, struct child *cs, struct child *rs)
{
	for (int i = 1; i <= o->n; i++) {
		write_state(o, i, NULL);
		if (rs[i].pid > 0)
			kill(rs[i].pid, SIGTERM);
	}
	for (int i = 1; i <= o->n; i++)
		if (rs[i].pid > 0)
			waitpid(rs[i].pid, NULL, 0);
	if (cs->pid > 0) {
		kill(cs->pid, SIGTERM);
		waitpid(cs->pid, NULL, 0);
	}
}

/* The pid of a Corosync already running in our network namespace, or 0:
 * its IPC (abstract sockets) would clash with ours. */
static int corosync_running_here(void)
{
	char self[64] = "", path[300], ns[64], comm[64];
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = 0;
	if (!d || readlink("/proc/self/ns/net", self, sizeof self - 1) < 0) {
		if (d)
			closedir(d);
		return 0;
	}
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int is_corosync = fgets(comm, sizeof comm, f) && strcmp(comm, "corosync\n") == 0;
		fclose(f);
		snprintf(path, sizeof path, "/proc/%s/ns/net", e->d_name);
		memset(ns, 0, sizeof ns);
		if (is_corosync && readlink(path, ns, sizeof ns - 1) > 0 && strcmp(ns, self) == 0)
			found = atoi(e->d_name);
	}
	closedir(d);
	return found;
}

struct replica_entry;
static char *ask(const struct replica_entry *r, const char *line, const char *last);
static int view_size(const struct options *o, int id);

/* 1 once every replica listens and reports a view of all n. */
static int cluster_formed(const struct options *o)
{
	for (int i = 1; i <= o->n; i++)
		if (view_size(o, i) != o->n)
			return 0;
	return 1;
}

static int cmd_up(struct options *o)
{
	struct child cs = {0}, rs[MAX_REPLICAS + 1];
	memset(rs, 0, sizeof rs);
	if (o->n < 1 || o->n > MAX_REPLICAS) {
		fprintf(stderr, "chorusctl: -n must be 1..%d\n", MAX_REPLICAS);
		return 2;
	}
	char abs[PATH_MAX];
	if (make_dir(o->dir) < 0 || realpath(o->dir, abs) == NULL)
		return 1;
	snprintf(o->dir, sizeof o->dir, "%s", abs);
	char fp[100];
	if (write_corosync_conf(o) < 0 || write_cluster_conf(o) < 0 || make_link_key(o) < 0 ||
	    make_certificate(o, fp) < 0)
		return 1;
	heap_on_huge_pages();
	int other = corosync_running_here();
	if (other) {
		fprintf(stderr, "chorusctl: a Corosync already runs here (pid %d); one local cluster per machine:"
				" stop it first (chorusctl down --dir <its dir>)\n", other);
		return 1;
	}
	static const int offsets[] = {0, TLS_PORT_OFFSET, LINK_PORT_OFFSET}; /* client, TLS, link */
	for (int i = 1; i <= o->n; i++)
		for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
			int p = o->port + i - 1 + offsets[k];
			if (port_open(p)) {
				fprintf(stderr, "chorusctl: port %d is taken (a cluster already up? try chorusctl down)\n", p);
				return 1;
			}
		}
	if (o->detach) {
		pid_t pid = fork();
		if (pid > 0) {
			/* the parent waits until the cluster has formed: every replica
			 * listens and sees all n in its view */
			for (int tries = 0; tries < 600; tries++) {
				int st;
				if (waitpid(pid, &st, WNOHANG) == pid) {
					fprintf(stderr, "chorusctl: the supervisor exited before the cluster formed;"
							" see %s/chorusctl.log\n", o->dir);
					return 1;
				}
				if (cluster_formed(o)) {
					printf("chorus: %d replicas on 127.0.0.1:%d-%d, TLS on %d-%d (dir %s)\n"
					       "chorus: TLS certificate %s/tls/cert.pem, SHA-256 %s\n", o->n, o->port,
					       o->port + o->n - 1, o->port + TLS_PORT_OFFSET,
					       o->port + o->n - 1 + TLS_PORT_OFFSET, o->dir, o->dir, fp);
					return 0;
				}
				usleep(100 * 1000);
			}
			fprintf(stderr, "chorusctl: the cluster did not form within 60 s; see %s/r*.log\n", o->dir);
			return 1;
		}
		/* the supervisor lets go of the caller's terminal or pipes: its
		 * own messages go to DIR/chorusctl.log */
		setsid();
		char logpath[PATH_MAX + 32];
		snprintf(logpath, sizeof logpath, "%s/chorusctl.log", o->dir);
		int null = open("/dev/null", O_RDWR);
		int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		dup2(null, 0);
		dup2(logfd >= 0 ? logfd : null, 1);
		dup2(logfd >= 0 ? logfd : null, 2);
	}
	if (enter_namespace(o->dir) < 0)
		return 1;
	/* no SA_RESTART: the signal must interrupt waitpid() in supervise() */
	struct sigaction stop = {0};
	stop.sa_handler = on_stop_signal;
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed log pipe must not stop the supervisor */
	write_pid(o);
	cs.pid = start_corosync(o);
	for (int i = 1; i <= o->n; i++) {
		rs[i].pid = start_replica(o, i);
		rs[i].started = time(NULL);
	}
	log_info("%d replicas on 127.0.0.1:%d-%d (TLS %d-%d); connect with any IRC client or: chorus --config %s/cluster.conf",
		 o->n, o->port, o->port + o->n - 1, o->port + TLS_PORT_OFFSET, o->port + o->n - 1 + TLS_PORT_OFFSET,
		 o->dir);
	log_info("TLS certificate %s/tls/cert.pem (self-signed), SHA-256 fingerprint %s", o->dir, fp);
	supervise(o, &cs, rs);
	log_info("stopping the cluster");
	stop_all(o, &cs, rs);
	return 0;
}

/* ---- asking replicas ---- */

struct replica_entry {
	int id, port;
	char host[64];
	char control[PATH_MAX + 32]; /* its control socket: DIR/r<id>/control.sock */
};

/* Fills r's control socket path for replica id of the cluster in o->dir. */
static void control_path(const struct options *o, int id, struct replica_entry *r)
{
	snprintf(r->control, sizeof r->control, "%s/r%d/control.sock", o->dir, id);
}

static int read_cluster(const struct options *o, struct replica_entry *out, int max)
{
	char path[PATH_MAX + 32];
	config_t cf;
	int n = 0;
	snprintf(path, sizeof path, "%s/cluster.conf", o->dir);
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		fprintf(stderr, "chorusctl: cannot read %s: %s (is a cluster up?)\n", path, config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	config_setting_t *list = config_lookup(&cf, "cluster.replicas");
	for (int i = 0; list && i < config_setting_length(list) && n < max; i++) {
		config_setting_t *r = config_setting_get_elem(list, i);
		const char *host = "127.0.0.1";
		config_setting_lookup_int(r, "id", &out[n].id);
		config_setting_lookup_int(r, "port", &out[n].port);
		config_setting_lookup_string(r, "host", &host);
		snprintf(out[n].host, sizeof out[n].host, "%s", host);
		control_path(o, out[n].id, &out[n]);
		n++;
	}
	config_destroy(&cf);
	return n;
}

/* Sends line to the replica's control socket (where the operator verbs are
 * allowed without logging in) and collects its answer lines until one whose
 * command is `last` (or 2 s pass). Returns the lines joined by '\n', or NULL. */
static char *ask(const struct replica_entry *r, const char *line, const char *last)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct buf got = {0};
	char chunk[4096];
	size_t plen = strlen(r->control);
	if (plen >= sizeof a.sun_path) { /* chorusd could not listen there either */
		close(fd);
		return NULL;
	}
	memcpy(a.sun_path, r->control, plen + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || write(fd, line, strlen(line)) < 0) {
		close(fd);
		return NULL;
	}
	for (int waited = 0; waited < 2000;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0) {
			waited += 100;
			continue;
		}
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n <= 0)
			break;
		buf_append(&got, chunk, (size_t)n);
		char pattern[32];
		snprintf(pattern, sizeof pattern, " %s ", last);
		if (strstr(got.data, pattern))
			break;
	}
	close(fd);
	return got.data;
}

/* The number of replicas in the view of replica id of the cluster in
 * o->dir (LINKS), or -1 if it does not answer. */
static int view_size(const struct options *o, int id)
{
	struct replica_entry r = {id, 0, "", ""};
	control_path(o, id, &r);
	char *links = ask(&r, "LINKS\r\n", "365");
	int n = links ? 0 : -1;
	for (char *p = links; p && (p = strstr(p, " 364 ")); p++)
		n++;
	free(links);
	return n;
}

/* Parses "NOTE DIGEST OK <hex> <ops> <syncing>" out of a reply. */
static int parse_digest(char *reply, char *hex, unsigned long long *ops, int *syncing)
{
	char *p = reply ? strstr(reply, "NOTE DIGEST OK ") : NULL;
	return p && sscanf(p, "NOTE DIGEST OK %64s %llu %d", hex, ops, syncing) == 3 ? 0 : -1;
}

/* Parses "NOTE SYNCSTATE OK <ops> <syncing>" out of a reply. */
static int parse_syncstate(char *reply, unsigned long long *ops, int *syncing)
{
	char *p = reply ? strstr(reply, "NOTE SYNCSTATE OK ") : NULL;
	return p && sscanf(p, "NOTE SYNCSTATE OK %llu %d", ops, syncing) == 2 ? 0 : -1;
}

static int cmd_digest(const struct options *o)
{
	struct replica_entry rs[MAX_REPLICAS];
	char first[65] = "";
	int n = read_cluster(o, rs, MAX_REPLICAS), equal = 1;
	if (n < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		char hex[65];
		unsigned long long ops;
		int syncing;
		char *reply = ask(&rs[i], o->full ? "DIGEST FULL\r\n" : "DIGEST\r\n", "NOTE");
		if (parse_digest(reply, hex, &ops, &syncing) < 0) {
			printf("r%d unreachable\n", rs[i].id);
			equal = 0;
		} else {
			printf("r%d %s ops %llu%s\n", rs[i].id, hex, ops, syncing ? " (syncing)" : "");
			if (!first[0])
				snprintf(first, sizeof first, "%s", hex);
			equal &= strcmp(first, hex) == 0 && !syncing;
		}
		free(reply);
	}
	printf("%s\n", equal ? "converged" : "not converged");
	return equal ? 0 : 1;
}

/* The status line of a replica that does not answer: "down", and why and
 * until when if the supervisor holds back its restart (its state file). */
static void print_down(const struct options *o, int id, const char *addr)
{
	char path[PATH_MAX + 32], line[512];
	long long at;
	int n = 0;
	snprintf(path, sizeof path, "%s/r%d.state", o->dir, id);
	FILE *f = fopen(path, "r");
	if (f && fgets(line, sizeof line, f) && sscanf(line, "restarting at %lld: %n", &at, &n) == 1 && n > 0) {
		long long left = at - (long long)time(NULL);
		line[strcspn(line, "\n")] = '\0';
		printf("%-4d %-22s %-6s starting again in %lld s: %s\n", id, addr, "down", left > 0 ? left : 0,
		       line + n);
	} else {
		printf("%-4d %-22s %-6s\n", id, addr, "down");
	}
	if (f)
		fclose(f);
}

static int cmd_status(const struct options *o)
{
	struct replica_entry rs[MAX_REPLICAS];
	int n = read_cluster(o, rs, MAX_REPLICAS);
	if (n < 0)
		return 2;
	printf("%-4s %-22s %-6s %-6s %s\n", "id", "address", "state", "view", "ops");
	for (int i = 0; i < n; i++) {
		char *links = ask(&rs[i], "LINKS\r\nSYNCSTATE\r\n", "NOTE"), addr[96];
		unsigned long long ops = 0;
		int syncing = 0, view = 0;
		for (char *p = links; p && (p = strstr(p, " 364 ")); p++)
			view++;
		snprintf(addr, sizeof addr, "%s:%d", rs[i].host, rs[i].port);
		if (parse_syncstate(links, &ops, &syncing) < 0)
			print_down(o, rs[i].id, addr);
		else
			printf("%-4d %-22s %-6s %-6d %llu%s\n", rs[i].id, addr, "up", view, ops,
			       syncing ? " (syncing)" : "");
		free(links);
	}
	return 0;
}

/* 1 if pid exists and is not a zombie waiting to be reaped. */
static int running(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ...": comm may hold spaces and parentheses */
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] && p[2] != 'Z';
}

static int cmd_down(const struct options *o)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/chorusctl.pid", o->dir);
	FILE *f = fopen(path, "r");
	int pid = 0;
	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
		fprintf(stderr, "chorusctl: no cluster is up in %s\n", o->dir);
		if (f)
			fclose(f);
		return 1;
	}
	fclose(f);
	if (kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "chorusctl: supervisor %d is gone\n", pid);
		unlink(path);
		return 1;
	}
	for (int i = 0; i < 100 && running(pid); i++)
		usleep(100 * 1000);
	if (running(pid)) {
		fprintf(stderr, "chorusctl: supervisor %d did not stop in 10 s: killing it (its children follow)\n", pid);
		kill(pid, SIGKILL);
	}
	unlink(path);
	printf("chorus: cluster in %s stopped\n", o->dir);
	return 0;
}

/* `init --hosts h1,h2,...`: every host's configuration, in DIR. */
static int cmd_init(struct options *o)
{
	if (!o->hosts) {
		fprintf(stderr, "chorusctl: init needs --hosts h1,h2,...\n");
		return 2;
	}
	if (write_host_files(o, o->hosts) < 0)
		return 1;
	printf("chorus: configurations in %s/<host>/ for %s: on each host, corosync.conf to /etc/corosync/\n"
	       "and chorus.conf to /etc/chorus/; %s/authkey to /etc/corosync/authkey (root, 0400) and\n"
	       "%s/link.key to /etc/chorus/link.key (root:chorus, 0640) on every host\n",
	       o->dir, o->hosts, o->dir, o->dir);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: chorusctl up [-n N] [--dir DIR] [--port P] [--mode available|majority]\n"
		     "                    [--sync off|normal|full] [--chorusd PATH] [--detach]\n"
		     "                    [--user NAME] [--replica-arg FLAG]...   (passed to every chorusd)\n"
		     "       chorusctl status|down [--dir DIR]\n"
		     "       chorusctl digest [--dir DIR] [--full]\n"
		     "       chorusctl init --hosts H1,H2,... [--dir DIR] [--port P] [--mode M]\n"
		     "                    (every host's corosync.conf and chorus.conf, and the keys)\n"
		     "A local chorus cluster: a private Corosync on 127.0.0.1 and N replicas,\n"
		     "restarted whenever they die. Defaults: -n 5, --dir run, --port 6667; run\n"
		     "as root, the replicas run as --user (default nobody; root keeps root).\n");
}

/* chorusd next to this program, else from PATH. */
static const char *find_chorusd(const char *argv0)
{
	static char path[PATH_MAX + 16];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	(void)argv0;
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(path, sizeof path, "%s/chorusd", self);
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	return "chorusd";
}

int main(int argc, char **argv)
{
	struct options o = {.n = 5, .dir = "run", .port = 6667, .mode = "available", .sync = "full"};
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'}, {"port", required_argument, NULL, 'p'},
		{"mode", required_argument, NULL, 'm'}, {"sync", required_argument, NULL, 's'},
		{"detach", no_argument, NULL, 'D'},     {"chorusd", required_argument, NULL, 'c'},
		{"replica-arg", required_argument, NULL, 'a'}, {"user", required_argument, NULL, 'u'},
		{"full", no_argument, NULL, 'F'},       {"help", no_argument, NULL, 'h'},
		{"hosts", required_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	int c;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *verb = argv[1];
	o.chorusd = find_chorusd(argv[0]);
	optind = 2;
	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.n = atoi(optarg); break;
		case 'd': snprintf(o.dir, sizeof o.dir, "%s", optarg); break;
		case 'p': o.port = atoi(optarg); break;
		case 'm': o.mode = optarg; break;
		case 's': o.sync = optarg; break;
		case 'D': o.detach = 1; break;
		case 'F': o.full = 1; break;
		case 'H': o.hosts = optarg; break;
		case 'c': o.chorusd = optarg; break;
		case 'u': o.user = optarg; break;
		case 'a':
			if (o.nextra >= 64) {
				fprintf(stderr, "chorusctl: too many --replica-arg\n");
				return 2;
			}
			o.extra[o.nextra++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_set_tag("program=chorusctl");
	if (!o.user && geteuid() == 0)
		o.user = "nobody"; /* never root by default: see chorusd --user */
	if (strcmp(verb, "up") == 0)
		return cmd_up(&o);
	if (strcmp(verb, "init") == 0)
		return cmd_init(&o);
	if (strcmp(verb, "status") == 0)
		return cmd_status(&o);
	if (strcmp(verb, "digest") == 0)
		return cmd_digest(&o);
	if (strcmp(verb, "down") == 0)
		return cmd_down(&o);
	usage(stderr);
	return 2;
}
