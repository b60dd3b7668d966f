/*
 * config.c: chorusd's settings: built-in defaults, then the configuration
 * file (libconfig syntax, see docs/CONFIG.md), then command-line flags, each
 * overriding the one before.
 */
#include <errno.h>
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"
#include "server.h"

static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->id = 1;
	cfg->listen = xstrdup("127.0.0.1");
	cfg->port = 6667;
	cfg->data_dir = xstrdup("chorus-data");
	cfg->sync = STORE_SYNC_FULL;
	cfg->max_clients = 10000;
	cfg->sendq_max = 1024 * 1024;
	cfg->history_cache = CHAT_CACHE_DEFAULT;
	cfg->recvq_max = 16 * 1024;
	cfg->flood_rate = 20;
	cfg->flood_burst = 100;
	cfg->ping_interval = 90;
	cfg->ping_timeout = 90;
	cfg->per_address = 32;
	cfg->exempt = xstrdup("127.0.0.1,::1");
	cfg->register_timeout = 60;
	cfg->new_names = 20;
	cfg->rooms_per_user = 100;
	cfg->members_per_room = 10000;
	cfg->log_level = LOG_INFO;
	cfg->group_name = xstrdup("chorus");
	cfg->tls_port = -1; /* 6697 once a certificate is set */
	cfg->sts_duration = 30 * 24 * 3600;
}

static void set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = value ? xstrdup(value) : NULL;
}

static int parse_sync(const char *s, enum store_sync *out)
{
	if (strcmp(s, "off") == 0)
		*out = STORE_SYNC_OFF;
	else if (strcmp(s, "normal") == 0)
		*out = STORE_SYNC_NORMAL;
	else if (strcmp(s, "full") == 0)
		*out = STORE_SYNC_FULL;
	else
		return -1;
	return 0;
}

static int parse_mode(const char *s, enum repl_mode *out)
{
	if (strcmp(s, "available") == 0)
		*out = REPL_AVAILABLE;
	else if (strcmp(s, "majority") == 0)
		*out = REPL_MAJORITY;
	else
		return -1;
	return 0;
}

static int parse_identity(const char *s, struct config *cfg)
{
	if (strcmp(s, "accounts") == 0)
		cfg->identity = IDENTITY_ACCOUNTS;
	else if (strcmp(s, "open") == 0)
		cfg->identity = IDENTITY_OPEN;
	else
		return -1;
	return 0;
}

static int parse_group(const char *s, struct config *cfg)
{
	if (strcmp(s, "solo") == 0)
		cfg->group = GROUP_SOLO;
	else if (strcmp(s, "corosync") == 0)
		cfg->group = GROUP_COROSYNC;
	else
		return -1;
	return 0;
}

/* 1 if name may be a server name: 3 to SERVER_NAME_MAX - 1 letters, digits,
 * '-', '_' and '.', with a dot, not at either end (it is a prefix in every
 * line, and a dot tells it from a nick). */
static int valid_server_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 3 || n >= SERVER_NAME_MAX || !strchr(name, '.') || name[0] == '.' || name[n - 1] == '.')
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* Parses "id=host:port" (a --peer flag) into the cluster list. */
static int add_peer(struct config *cfg, uint32_t id, const char *host, int port)
{
	if (cfg->nreplicas >= CLUSTER_MAX || id == 0 || id > 255 || port <= 0 || port > 65535 ||
	    strlen(host) >= sizeof cfg->replicas[0].host)
		return -1;
	struct replica_addr *r = &cfg->replicas[cfg->nreplicas++];
	r->id = id;
	snprintf(r->host, sizeof r->host, "%s", host);
	r->port = port;
	return 0;
}

static int parse_peer(struct config *cfg, const char *spec)
{
	unsigned id;
	char host[64];
	int port, n = 0;
	if (sscanf(spec, "%u=%63[^:]:%d%n", &id, host, &port, &n) != 3 || spec[n] != '\0')
		return -1;
	return add_peer(cfg, id, host, port);
}

static void lookup_int(config_t *cf, const char *path, int *out)
{
	int v;
	if (config_lookup_int(cf, path, &v))
		*out = v;
}

static void lookup_size(config_t *cf, const char *path, size_t *out)
{
	long long v;
	int i;
	if (config_lookup_int64(cf, path, &v) && v > 0)
		*out = (size_t)v;
	else if (config_lookup_int(cf, path, &i) && i > 0)
		*out = (size_t)i;
}

static void lookup_double(config_t *cf, const char *path, double *out)
{
	double d;
	int i;
	if (config_lookup_float(cf, path, &d))
		*out = d;
	else if (config_lookup_int(cf, path, &i))
		*out = i;
}

static void lookup_str(config_t *cf, const char *path, char **out)
{
	const char *s;
	if (config_lookup_string(cf, path, &s))
		set_str(out, s);
}

/* Reads the cluster list: cluster.replicas = ( { id = 1; host = "..."; port = N; }, ... ) */
static int read_cluster(config_t *cf, struct config *cfg)
{
	config_setting_t *list = config_lookup(cf, "cluster.replicas");
	if (!list)
		return 0;
	for (int i = 0; i < config_setting_length(list); i++) {
		config_setting_t *r = config_setting_get_elem(list, i);
		int id = 0, port = 0, link_port = 0;
		const char *host = "127.0.0.1", *name = "";
		config_setting_lookup_int(r, "id", &id);
		config_setting_lookup_int(r, "port", &port);
		config_setting_lookup_int(r, "link_port", &link_port);
		config_setting_lookup_string(r, "host", &host);
		config_setting_lookup_string(r, "name", &name);
		if ((*name && !valid_server_name(name)) || link_port < 0 || link_port > 65535 ||
		    add_peer(cfg, (uint32_t)id, host, port) < 0) {
			fprintf(stderr, "chorusd: cluster.replicas entry %d is invalid\n", i + 1);
			return -1;
		}
		snprintf(cfg->replicas[cfg->nreplicas - 1].name, SERVER_NAME_MAX, "%s", name);
		cfg->replicas[cfg->nreplicas - 1].link_port = link_port;
	}
	return 0;
}

/* Reads the file at path over cfg. Returns 0 or -1 (error printed). */
static int read_file(struct config *cfg, const char *path)
{
	config_t cf;
	int id = (int)cfg->id, rc = 0;
	const char *s;

	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		fprintf(stderr, "chorusd: %s:%d: %s\n", config_error_file(&cf) ? config_error_file(&cf) : path,
			config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	lookup_int(&cf, "replica.id", &id);
	cfg->id = (uint32_t)id;
	lookup_str(&cf, "replica.listen", &cfg->listen);
	lookup_int(&cf, "replica.port", &cfg->port);
	lookup_str(&cf, "replica.data_dir", &cfg->data_dir);
	lookup_str(&cf, "replica.user", &cfg->user);
	lookup_str(&cf, "server.password", &cfg->password);
	lookup_str(&cf, "server.motd", &cfg->motd);
	lookup_str(&cf, "server.name", &cfg->server_name);
	lookup_str(&cf, "tls.cert", &cfg->tls_cert);
	lookup_str(&cf, "tls.key", &cfg->tls_key);
	lookup_int(&cf, "tls.port", &cfg->tls_port);
	lookup_int(&cf, "tls.sts_duration", &cfg->sts_duration);
	if (config_lookup_string(&cf, "server.identity", &s) && parse_identity(s, cfg) < 0) {
		fprintf(stderr, "chorusd: %s: server.identity must be accounts or open\n", path);
		rc = -1;
	}
	if (config_lookup_string(&cf, "server.log_level", &s) && (cfg->log_level = log_level_parse(s)) < 0) {
		fprintf(stderr, "chorusd: %s: server.log_level: unknown level %s\n", path, s);
		rc = -1;
	}
	if (config_lookup_string(&cf, "store.sync", &s) && parse_sync(s, &cfg->sync) < 0) {
		fprintf(stderr, "chorusd: %s: store.sync must be off, normal or full\n", path);
		rc = -1;
	}
	long long max_bytes;
	if (config_lookup_int64(&cf, "store.max_bytes", &max_bytes))
		cfg->store_max_bytes = max_bytes;
	lookup_int(&cf, "store.index_lag", &cfg->index_lag);
	long long cache;
	if (config_lookup_int64(&cf, "store.history_cache", &cache) && cache >= 0)
		cfg->history_cache = (size_t)cache;
	lookup_int(&cf, "store.snapshot_every", &cfg->snapshot_every);
	lookup_int(&cf, "limits.max_clients", &cfg->max_clients);
	lookup_size(&cf, "limits.sendq", &cfg->sendq_max);
	lookup_size(&cf, "limits.recvq", &cfg->recvq_max);
	lookup_double(&cf, "limits.flood_rate", &cfg->flood_rate);
	lookup_double(&cf, "limits.flood_burst", &cfg->flood_burst);
	lookup_int(&cf, "limits.ping_interval", &cfg->ping_interval);
	lookup_int(&cf, "limits.ping_timeout", &cfg->ping_timeout);
	lookup_int(&cf, "limits.per_address", &cfg->per_address);
	lookup_str(&cf, "limits.exempt", &cfg->exempt);
	lookup_int(&cf, "limits.register_timeout", &cfg->register_timeout);
	lookup_int(&cf, "limits.new_names", &cfg->new_names);
	lookup_int(&cf, "limits.rooms_per_user", &cfg->rooms_per_user);
	lookup_int(&cf, "limits.members_per_room", &cfg->members_per_room);
	lookup_str(&cf, "server.oper.name", &cfg->oper_name);
	lookup_str(&cf, "server.oper.verifier", &cfg->oper_verifier);
	if (config_lookup_string(&cf, "cluster.mode", &s) && parse_mode(s, &cfg->mode) < 0) {
		fprintf(stderr, "chorusd: %s: cluster.mode must be available or majority\n", path);
		rc = -1;
	}
	if (config_lookup_string(&cf, "cluster.group", &s) && parse_group(s, cfg) < 0) {
		fprintf(stderr, "chorusd: %s: cluster.group must be solo or corosync\n", path);
		rc = -1;
	}
	lookup_str(&cf, "cluster.group_name", &cfg->group_name);
	lookup_str(&cf, "cluster.link_key", &cfg->link_key);
	lookup_str(&cf, "metrics.listen", &cfg->metrics);
	if (rc == 0)
		rc = read_cluster(&cf, cfg);
	config_destroy(&cf);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: chorusd [options]\n"
		"A chorus replica: an IRC server whose rooms, messages and likes are stored\n"
		"durably and (in a cluster) replicated. See docs/CONFIG.md.\n\n"
		"  -c, --config FILE        read settings from FILE (libconfig syntax)\n"
		"  -i, --id N               replica id, 1..255 (default 1)\n"
		"  -l, --listen ADDR        client listener address (default 127.0.0.1)\n"
		"  -p, --port N             client listener port (default 6667)\n"
		"  -d, --data-dir DIR       where the store lives (default ./chorus-data)\n"
		"      --sync MODE          off|normal|full: SQLite synchronous (default full)\n"
		"      --store-max-bytes N  refuse writes once the store would pass N bytes\n"
		"      --index-lag N        ops the message index may lag behind the store, read\n"
		"                           from RAM meanwhile (default 4096)\n"
		"      --history-cache N    bytes of recent lines kept in RAM besides the store\n"
		"                           (default 64 MiB; every room keeps its last 25 lines)\n"
		"      --snapshot-every N   operations between two snapshots of the state, which\n"
		"                           a restart starts from (default 65536)\n"
		"      --max-clients N      connections accepted (default 10000)\n"
		"      --sendq N            bytes queued to a slow client before it is dropped (default 1 MiB)\n"
		"      --recvq N            unprocessed bytes held from one client (default 16 KiB)\n"
		"      --flood-rate R       lines per second per client, sustained (default 20)\n"
		"      --flood-burst B      lines per client at once (default 100)\n"
		"      --ping-interval S    idle seconds before PING (default 90)\n"
		"      --ping-timeout S     seconds to answer PING (default 90)\n"
		"      --per-address N      connections from one address (IPv6: one /64);\n"
		"                           0 = no limit (default 32)\n"
		"      --exempt LIST        addresses without that limit, comma-separated\n"
		"                           (default 127.0.0.1,::1; \"\" for none)\n"
		"      --register-timeout S seconds a connection may take to register (default 60)\n"
		"      --new-names N        new rooms and nicks one connection may make known per\n"
		"                           minute, 3 N per address (default 20; 0 = no limit)\n"
		"      --rooms-per-user N   rooms one user may be in (default 100)\n"
		"      --members-per-room N users one room may hold (default 10000)\n"
		"      --oper NAME=VERIFIER the operator: OPER NAME <password> allows DIGEST and\n"
		"                           SYNCSTATE (VERIFIER from --make-verifier)\n"
		"      --make-verifier      read a password on stdin, print its SCRAM verifier, exit\n"
		"      --password PASS      server password clients must send with PASS\n"
		"      --motd TEXT          message of the day\n"
		"      --tls-cert FILE      PEM certificate (chain): listen for TLS clients too\n"
		"      --tls-key FILE       its private key\n"
		"      --tls-port N         the TLS listener's port (default 6697)\n"
		"      --sts-duration S     seconds clients should keep to TLS (IRCv3 sts;\n"
		"                           default 30 days; 0: not advertised)\n"
		"      --identity KIND      accounts (default: registered names need a password)\n"
		"                           or open (a name is a person; for trusted networks)\n"
		"      --peer ID=HOST:PORT  a replica of the cluster (repeatable)\n"
		"      --group KIND         solo (one standalone replica, default) or corosync\n"
		"      --group-name NAME    the Corosync process group (default chorus)\n"
		"      --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
		"                           (default: none)\n"
		"      --link-key FILE      the catch-up links' key (the same file on every\n"
		"                           replica); with link_port in cluster.replicas\n"
		"      --mode MODE          available (default) or majority\n"
		"      --server-name NAME   this replica's server name (default r<id>.chorus)\n"
		"      --user NAME          started as root: run as user NAME (and its group) once\n"
		"                           the store and ports are open; the data directory\n"
		"                           becomes NAME's\n"
		"      --log-level LEVEL    debug|info|warn|error (default info)\n"
		"  -h, --help               this text\n"
		"  -V, --version            the version\n");
}

enum {
	OPT_SYNC = 256, OPT_MAXBYTES, OPT_MAXCLIENTS, OPT_SENDQ, OPT_RECVQ, OPT_FLOODRATE,
	OPT_FLOODBURST, OPT_PINGINT, OPT_PINGTO, OPT_PASSWORD, OPT_MOTD, OPT_PEER, OPT_LOGLEVEL,
	OPT_GROUP, OPT_GROUPNAME, OPT_MODE, OPT_IDENTITY, OPT_TLSCERT, OPT_TLSKEY, OPT_TLSPORT,
	OPT_STS, OPT_PERADDR, OPT_EXEMPT, OPT_REGTIMEOUT, OPT_OPER, OPT_MAKEVERIFIER, OPT_NEWNAMES,
	OPT_ROOMSPERUSER, OPT_MEMBERSPERROOM, OPT_USER, OPT_SERVERNAME, OPT_INDEXLAG,
	OPT_HISTCACHE, OPT_SNAPEVERY, OPT_LINKKEY, OPT_METRICS,
};

static const struct option long_opts[] = {
	{"config", required_argument, NULL, 'c'},
	{"id", required_argument, NULL, 'i'},
	{"listen", required_argument, NULL, 'l'},
	{"port", required_argument, NULL, 'p'},
	{"data-dir", required_argument, NULL, 'd'},
	{"sync", required_argument, NULL, OPT_SYNC},
	{"store-max-bytes", required_argument, NULL, OPT_MAXBYTES},
	{"index-lag", required_argument, NULL, OPT_INDEXLAG},
	{"history-cache", required_argument, NULL, OPT_HISTCACHE},
	{"snapshot-every", required_argument, NULL, OPT_SNAPEVERY},
	{"max-clients", required_argument, NULL, OPT_MAXCLIENTS},
	{"sendq", required_argument, NULL, OPT_SENDQ},
	{"recvq", required_argument, NULL, OPT_RECVQ},
	{"flood-rate", required_argument, NULL, OPT_FLOODRATE},
	{"flood-burst", required_argument, NULL, OPT_FLOODBURST},
	{"ping-interval", required_argument, NULL, OPT_PINGINT},
	{"ping-timeout", required_argument, NULL, OPT_PINGTO},
	{"password", required_argument, NULL, OPT_PASSWORD},
	{"motd", required_argument, NULL, OPT_MOTD},
	{"peer", required_argument, NULL, OPT_PEER},
	{"log-level", required_argument, NULL, OPT_LOGLEVEL},
	{"group", required_argument, NULL, OPT_GROUP},
	{"group-name", required_argument, NULL, OPT_GROUPNAME},
	{"mode", required_argument, NULL, OPT_MODE},
	{"identity", required_argument, NULL, OPT_IDENTITY},
	{"tls-cert", required_argument, NULL, OPT_TLSCERT},
	{"link-key", required_argument, NULL, OPT_LINKKEY},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"tls-key", required_argument, NULL, OPT_TLSKEY},
	{"tls-port", required_argument, NULL, OPT_TLSPORT},
	{"sts-duration", required_argument, NULL, OPT_STS},
	{"per-address", required_argument, NULL, OPT_PERADDR},
	{"exempt", required_argument, NULL, OPT_EXEMPT},
	{"register-timeout", required_argument, NULL, OPT_REGTIMEOUT},
	{"oper", required_argument, NULL, OPT_OPER},
	{"new-names", required_argument, NULL, OPT_NEWNAMES},
	{"rooms-per-user", required_argument, NULL, OPT_ROOMSPERUSER},
	{"members-per-room", required_argument, NULL, OPT_MEMBERSPERROOM},
	{"make-verifier", no_argument, NULL, OPT_MAKEVERIFIER},
	{"user", required_argument, NULL, OPT_USER},
	{"server-name", required_argument, NULL, OPT_SERVERNAME},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* Parses a whole decimal number in [min, max]; returns 0 or -1. */
static int parse_num(const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Applies one flag; returns 0, or -1 on a bad value. */
static int apply_flag(struct config *cfg, int c, const char *arg)
{
	long long v;
	char *end;
	switch (c) {
	case 'i':
		if (parse_num(arg, 1, 255, &v) < 0)
			return -1;
		cfg->id = (uint32_t)v;
		return 0;
	case 'l': set_str(&cfg->listen, arg); return 0;
	case 'p':
		if (parse_num(arg, 0, 65535, &v) < 0)
			return -1;
		cfg->port = (int)v;
		return 0;
	case 'd': set_str(&cfg->data_dir, arg); return 0;
	case OPT_SYNC: return parse_sync(arg, &cfg->sync);
	case OPT_MAXBYTES:
		if (parse_num(arg, 0, INT64_MAX, &v) < 0)
			return -1;
		cfg->store_max_bytes = v;
		return 0;
	case OPT_INDEXLAG:
		if (parse_num(arg, 1, 1000000, &v) < 0)
			return -1;
		cfg->index_lag = (int)v;
		return 0;
	case OPT_HISTCACHE:
		if (parse_num(arg, 0, 1LL << 40, &v) < 0)
			return -1;
		cfg->history_cache = (size_t)v;
		return 0;
	case OPT_SNAPEVERY:
		if (parse_num(arg, 1, 1000000000, &v) < 0)
			return -1;
		cfg->snapshot_every = (int)v;
		return 0;
	case OPT_MAXCLIENTS:
		if (parse_num(arg, 1, 10000000, &v) < 0)
			return -1;
		cfg->max_clients = (int)v;
		return 0;
	case OPT_SENDQ:
	case OPT_RECVQ:
		if (parse_num(arg, 1024, 1LL << 32, &v) < 0)
			return -1;
		*(c == OPT_SENDQ ? &cfg->sendq_max : &cfg->recvq_max) = (size_t)v;
		return 0;
	case OPT_FLOODRATE:
	case OPT_FLOODBURST: {
		double d = strtod(arg, &end);
		if (end == arg || *end || d <= 0)
			return -1;
		*(c == OPT_FLOODRATE ? &cfg->flood_rate : &cfg->flood_burst) = d;
		return 0;
	}
	case OPT_PINGINT:
	case OPT_PINGTO:
		if (parse_num(arg, 1, 86400, &v) < 0)
			return -1;
		*(c == OPT_PINGINT ? &cfg->ping_interval : &cfg->ping_timeout) = (int)v;
		return 0;
	case OPT_PASSWORD: set_str(&cfg->password, arg); return 0;
	case OPT_MOTD: set_str(&cfg->motd, arg); return 0;
	case OPT_PEER: return parse_peer(cfg, arg);
	case OPT_LOGLEVEL: return (cfg->log_level = log_level_parse(arg)) < 0 ? -1 : 0;
	case OPT_GROUP: return parse_group(arg, cfg);
	case OPT_GROUPNAME: set_str(&cfg->group_name, arg); return 0;
	case OPT_LINKKEY: set_str(&cfg->link_key, arg); return 0;
	case OPT_METRICS: set_str(&cfg->metrics, arg); return 0;
	case OPT_MODE: return parse_mode(arg, &cfg->mode);
	case OPT_IDENTITY: return parse_identity(arg, cfg);
	case OPT_PERADDR:
	case OPT_REGTIMEOUT:
		if (parse_num(arg, c == OPT_PERADDR ? 0 : 1, c == OPT_PERADDR ? 10000000 : 86400, &v) < 0)
			return -1;
		*(c == OPT_PERADDR ? &cfg->per_address : &cfg->register_timeout) = (int)v;
		return 0;
	case OPT_EXEMPT: set_str(&cfg->exempt, arg); return 0;
	case OPT_USER: set_str(&cfg->user, arg); return 0;
	case OPT_SERVERNAME: set_str(&cfg->server_name, arg); return 0;
	case OPT_NEWNAMES:
		if (parse_num(arg, 0, 1000000, &v) < 0)
			return -1;
		cfg->new_names = (int)v;
		return 0;
	case OPT_ROOMSPERUSER:
	case OPT_MEMBERSPERROOM:
		if (parse_num(arg, 1, 10000000, &v) < 0)
			return -1;
		*(c == OPT_ROOMSPERUSER ? &cfg->rooms_per_user : &cfg->members_per_room) = (int)v;
		return 0;
	case OPT_OPER: {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg || !eq[1])
			return -1;
		free(cfg->oper_name);
		cfg->oper_name = xstrndup(arg, (size_t)(eq - arg));
		set_str(&cfg->oper_verifier, eq + 1);
		return 0;
	}
	case OPT_TLSCERT: set_str(&cfg->tls_cert, arg); return 0;
	case OPT_TLSKEY: set_str(&cfg->tls_key, arg); return 0;
	case OPT_TLSPORT:
	case OPT_STS:
		if (parse_num(arg, 0, c == OPT_STS ? 10 * 365 * 86400LL : 65535, &v) < 0)
			return -1;
		*(c == OPT_TLSPORT ? &cfg->tls_port : &cfg->sts_duration) = (int)v;
		return 0;
	}
	return -1;
}

/* --make-verifier: a password from stdin (its first line) as a SCRAM
 * verifier on stdout, for --oper / server.oper.verifier. Returns 1 (exit
 * 0), or -1 (printed). */
static int make_verifier(void)
{
	char line[512];
	if (!fgets(line, sizeof line, stdin)) {
		fprintf(stderr, "chorusd: --make-verifier reads a password on stdin\n");
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	char *v = scram_verifier_new(line);
	printf("%s\n", v);
	memset(line, 0, sizeof line);
	free(v);
	return 1;
}

int config_load(struct config *cfg, int argc, char **argv)
{
	int c;
	const char *file = NULL;

	config_defaults(cfg);
	/* First pass: only --config, --help and --version, so flags override the file. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:i:l:p:d:hV", long_opts, NULL)) != -1) {
		if (c == 'c')
			file = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 1;
		} else if (c == 'V') {
			printf("chorusd %s\n", CHORUS_VERSION);
			return 1;
		} else if (c == OPT_MAKEVERIFIER) {
			return make_verifier();
		}
	}
	if (file && read_file(cfg, file) < 0)
		return -1;
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:i:l:p:d:hV", long_opts, NULL)) != -1) {
		if (c == 'c' || c == 'h' || c == 'V' || c == OPT_MAKEVERIFIER)
			continue;
		if (c == '?' || apply_flag(cfg, c, optarg) < 0) {
			if (c != '?')
				fprintf(stderr, "chorusd: bad value for an option: %s\n", optarg);
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chorusd: unexpected argument: %s\n", argv[optind]);
		return -1;
	}
	if (cfg->id == 0 || cfg->id > 255) {
		fprintf(stderr, "chorusd: replica id must be 1..255\n");
		return -1;
	}
	if (cfg->server_name && !valid_server_name(cfg->server_name)) {
		fprintf(stderr, "chorusd: server name %s: 3 to %d letters, digits, '-', '_' and '.', "
			"with a dot inside\n", cfg->server_name, SERVER_NAME_MAX - 1);
		return -1;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "chorusd: --tls-cert and --tls-key (tls.cert, tls.key) go together\n");
		return -1;
	}
	if (cfg->tls_port < 0)
		cfg->tls_port = 6697;
	return 0;
}

/* Takes the string *from into *to (freeing what *to held); 1 if it differs. */
static int take_str(char **to, char **from)
{
	int changed = (*to == NULL) != (*from == NULL) || (*to && strcmp(*to, *from) != 0);
	free(*to);
	*to = *from;
	*from = NULL;
	return changed;
}

/* Logs it if a setting that only a restart changes differs in fresh. */
static void warn_fixed_changed(const struct config *cfg, const struct config *fresh)
{
	int changed = cfg->id != fresh->id || cfg->port != fresh->port || cfg->tls_port != fresh->tls_port ||
		      strcmp(cfg->listen, fresh->listen) != 0 || strcmp(cfg->data_dir, fresh->data_dir) != 0 ||
		      cfg->group != fresh->group || cfg->mode != fresh->mode || cfg->sync != fresh->sync ||
		      cfg->identity != fresh->identity || (!cfg->tls_cert != !fresh->tls_cert) ||
		      (!cfg->link_key != !fresh->link_key) || (!cfg->metrics != !fresh->metrics);
	if (changed)
		log_warn("configuration: the id, addresses, ports, data directory, group, mode, sync, "
			 "identity, TLS on or off, links on or off and metrics change only with a restart");
}

int config_reload(struct config *cfg, int argc, char **argv)
{
	struct config fresh;
	memset(&fresh, 0, sizeof fresh);
	if (config_load(&fresh, argc, argv) != 0) {
		log_error("configuration: not reloaded (the file or flags are wrong; see above)");
		config_free(&fresh);
		return -1;
	}
	warn_fixed_changed(cfg, &fresh);
	/* Limits, texts, the operator and the replica list take effect now. */
	cfg->max_clients = fresh.max_clients;
	cfg->sendq_max = fresh.sendq_max;
	cfg->recvq_max = fresh.recvq_max;
	cfg->flood_rate = fresh.flood_rate;
	cfg->flood_burst = fresh.flood_burst;
	cfg->ping_interval = fresh.ping_interval;
	cfg->ping_timeout = fresh.ping_timeout;
	cfg->per_address = fresh.per_address;
	cfg->register_timeout = fresh.register_timeout;
	cfg->rooms_per_user = fresh.rooms_per_user;
	cfg->members_per_room = fresh.members_per_room;
	cfg->new_names = fresh.new_names;
	take_str(&cfg->exempt, &fresh.exempt);
	take_str(&cfg->motd, &fresh.motd);
	take_str(&cfg->password, &fresh.password);
	take_str(&cfg->oper_name, &fresh.oper_name);
	take_str(&cfg->oper_verifier, &fresh.oper_verifier);
	if (cfg->tls_cert && fresh.tls_cert) { /* TLS stays on: its files may change */
		take_str(&cfg->tls_cert, &fresh.tls_cert);
		take_str(&cfg->tls_key, &fresh.tls_key);
	}
	cfg->nreplicas = fresh.nreplicas;
	memcpy(cfg->replicas, fresh.replicas, sizeof cfg->replicas);
	config_free(&fresh);
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->listen);
	free(cfg->data_dir);
	free(cfg->password);
	free(cfg->exempt);
	free(cfg->user);
	free(cfg->server_name);
	free(cfg->oper_name);
	free(cfg->oper_verifier);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->motd);
	free(cfg->group_name);
	free(cfg->link_key);
	free(cfg->metrics);
	memset(cfg, 0, sizeof *cfg);
}
