/*
 * main.c: chorus-bench's command line. It parses the options, resolves the
 * targets, raises its own file limit, runs one scenario (fanout or idle) and
 * prints its report as one line of JSON on stdout (and any error on stderr).
 * The exit status says whether the line holds a figure: 0 yes; 2 a message
 * was lost, duplicated or misrouted; 1 anything else went wrong.
 */
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "loadgen.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: chorus-bench [options]\n"
		"Load generator for IRC servers (chorus replicas and others): one process, plain IRC.\n\n"
		"  -t, --target HOST:PORT[,...]  server(s) to connect to, repeatable; clients spread over them\n"
		"  -m, --mode MODE        fanout (default) or idle\n"
		"      --pid PID          a server process to measure (CPU, memory), repeatable\n"
		"  fanout:\n"
		"  -c, --clients N        connections (default 100)\n"
		"  -r, --rooms N          rooms; clients/rooms members each, at least 2 (default 10)\n"
		"  -R, --rate M           PRIVMSGs sent per second in all; 0 = saturate (default 0)\n"
		"  -w, --window N         saturation: messages in flight per sender (default 4)\n"
		"  -s, --size B           bytes of message text (default 64)\n"
		"      --warmup S         seconds before measuring (default 1)\n"
		"  -d, --duration S       seconds measured (default 5)\n"
		"      --drain S          seconds without progress before missing messages count as lost (default 10)\n"
		"  idle:\n"
		"  -n, --connections N    registered idle connections to open (default 1000)\n"
		"  common:\n"
		"      --concurrency N    connections being set up at once (default 200)\n"
		"      --quickack         ACK every read at once (no delayed ACK; see conn.c)\n"
		"      --prefix P         prefix of nicks and room names (default: random)\n"
		"      --label TEXT       copied into the report\n"
		"  -h, --help\n\n"
		"Prints one JSON line. Exit 0: a figure; 2: a message was lost, duplicated or\n"
		"misrouted (no figure); 1: any other failure.\n");
}

/* Parses "host:port" (IPv6 as [addr]:port) into t. Returns 0 or -1. */
static int parse_target(const char *spec, struct target *t)
{
	char host[64];
	const char *colon;
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
			return -1;
		snprintf(host, sizeof host, "%.*s", (int)(end - spec - 1), spec + 1);
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || (size_t)(colon - spec) >= sizeof host)
			return -1;
		snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	struct addrinfo hints = {0}, *res;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -1;
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (t->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)port);
	snprintf(t->host, sizeof t->host, "%s", host);
	t->port = (int)port;
	return 0;
}

/* Adds every target of a comma-separated list. */
static int add_targets(struct options *o, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	int rc = 0;
	for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (o->ntargets >= BENCH_MAX_TARGETS || parse_target(s, &o->targets[o->ntargets]) < 0) {
			fprintf(stderr, "chorus-bench: bad target: %s\n", s);
			rc = -1;
			break;
		}
		o->ntargets++;
	}
	free(copy);
	return rc;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_double(const char *s, double min, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (*s == '\0' || *end || v < min)
		return -1;
	*out = v;
	return 0;
}

static void defaults(struct options *o)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	memset(o, 0, sizeof *o);
	o->mode = MODE_FANOUT;
	o->clients = 100;
	o->rooms = 10;
	o->window = 4;
	o->size = 64;
	o->warmup = 1;
	o->duration = 5;
	o->drain = 10;
	o->connections = 1000;
	o->concurrency = 200;
	unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
	o->prefix[0] = 'b';
	for (int i = 1; i < 4; i++, seed /= 36)
		o->prefix[i] = digits[seed % 36];
}

enum { OPT_PID = 256, OPT_WARMUP, OPT_DRAIN, OPT_CONCURRENCY, OPT_PREFIX, OPT_LABEL, OPT_QUICKACK };

static const struct option long_opts[] = {
	{"target", required_argument, NULL, 't'},
	{"mode", required_argument, NULL, 'm'},
	{"pid", required_argument, NULL, OPT_PID},
	{"clients", required_argument, NULL, 'c'},
	{"rooms", required_argument, NULL, 'r'},
	{"rate", required_argument, NULL, 'R'},
	{"window", required_argument, NULL, 'w'},
	{"size", required_argument, NULL, 's'},
	{"warmup", required_argument, NULL, OPT_WARMUP},
	{"duration", required_argument, NULL, 'd'},
	{"drain", required_argument, NULL, OPT_DRAIN},
	{"connections", required_argument, NULL, 'n'},
	{"concurrency", required_argument, NULL, OPT_CONCURRENCY},
	{"prefix", required_argument, NULL, OPT_PREFIX},
	{"label", required_argument, NULL, OPT_LABEL},
	{"quickack", no_argument, NULL, OPT_QUICKACK},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* Applies one option; returns 0 or -1 on a bad value. */
static int apply(struct options *o, int c, const char *arg)
{
	unsigned pid;
	switch (c) {
	case 't': return add_targets(o, arg);
	case 'm':
		if (strcmp(arg, "fanout") == 0)
			o->mode = MODE_FANOUT;
		else if (strcmp(arg, "idle") == 0)
			o->mode = MODE_IDLE;
		else
			return -1;
		return 0;
	case OPT_PID:
		if (o->npids >= BENCH_MAX_PIDS || parse_uint(arg, 1, 1u << 30, &pid) < 0)
			return -1;
		o->pids[o->npids++] = (pid_t)pid;
		return 0;
	case 'c': return parse_uint(arg, 2, 1000000, &o->clients);
	case 'r': return parse_uint(arg, 1, 1000000, &o->rooms);
	case 'R': return parse_double(arg, 0, &o->rate);
	case 'w': return parse_uint(arg, 1, 100000, &o->window);
	case 's': return parse_uint(arg, 0, 400, &o->size);
	case OPT_WARMUP: return parse_double(arg, 0, &o->warmup);
	case 'd': return parse_double(arg, 0.1, &o->duration);
	case OPT_DRAIN: return parse_double(arg, 0.1, &o->drain);
	case 'n': return parse_uint(arg, 1, 10000000, &o->connections);
	case OPT_CONCURRENCY: return parse_uint(arg, 1, 100000, &o->concurrency);
	case OPT_PREFIX:
		if (strlen(arg) == 0 || strlen(arg) >= sizeof o->prefix)
			return -1;
		snprintf(o->prefix, sizeof o->prefix, "%s", arg);
		return 0;
	case OPT_LABEL: o->label = arg; return 0;
	case OPT_QUICKACK: o->quickack = 1; return 0;
	}
	return -1;
}

/* Parses argv into o. Returns 0, 1 to exit 0 now (--help), -1 on an error. */
static int parse_options(struct options *o, int argc, char **argv)
{
	int c;
	defaults(o);
	while ((c = getopt_long(argc, argv, "t:m:c:r:R:w:s:d:n:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == '?' || apply(o, c, optarg) < 0) {
			if (c != '?')
				fprintf(stderr, "chorus-bench: bad value: %s\n", optarg);
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc || o->ntargets == 0) {
		fprintf(stderr, "chorus-bench: %s\n", optind < argc ? "unexpected argument" : "no --target");
		return -1;
	}
	if (o->mode == MODE_FANOUT && o->clients < 2 * o->rooms) {
		fprintf(stderr, "chorus-bench: every room needs at least 2 members (clients >= 2 * rooms)\n");
		return -1;
	}
	return 0;
}

void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* As many open files as the hard limit allows. */
static void raise_file_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	int rc = parse_options(&o, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 1;
	signal(SIGPIPE, SIG_IGN);
	raise_file_limit();
	uv_loop_t *loop = uv_default_loop();
	rc = o.mode == MODE_IDLE ? idle_run(&o, loop, stdout) : fanout_run(&o, loop, stdout);
	uv_loop_close(loop);
	return rc;
}
