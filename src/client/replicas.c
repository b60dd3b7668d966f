/*
 * replicas.c: the replicas the client may connect to, in order. They come
 * from the cluster config file chorusd uses (cluster.replicas, with ids),
 * from --replica host:port flags (id = position), from `c host:port`, and
 * from the replicas themselves (LINKS after each login: the members of the
 * connected replica's view, with their real ids). `c <i>` names a replica by
 * id, else by 1-based position.
 */
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client.h"

static unsigned next_free_id(const struct replica_list *l)
{
	unsigned id = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id > id)
			id = l->v[i].id;
	return id + 1 > l->n ? id + 1 : (unsigned)l->n + 1;
}

static long find(const struct replica_list *l, const char *host, int port)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].port == port && strcasecmp(l->v[i].host, host) == 0)
			return (long)i;
	return -1;
}

/* Adds host:port with id; returns its index (an address already listed
 * keeps its place). */
static long add(struct replica_list *l, unsigned id, const char *host, int port)
{
	long i = find(l, host, port);
	if (i >= 0)
		return i;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n].id = id;
	l->v[l->n].host = xstrdup(host);
	l->v[l->n].port = port;
	l->v[l->n].tls_port = 0;
	return (long)l->n++;
}

/* Splits "host:port" or "[v6]:port". Returns 0 and sets host (allocated)
 * and *port, or -1. */
static int split_hostport(const char *spec, char **host, int *port)
{
	const char *colon;
	size_t hlen;
	const char *h = spec;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -1;
		h = spec + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - spec);
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (hlen == 0 || *end || p <= 0 || p > 65535 || end == colon + 1)
		return -1;
	*host = xstrndup(h, hlen);
	*port = (int)p;
	return 0;
}

long replicas_add(struct replica_list *l, const char *spec)
{
	char *host;
	int port;
	if (split_hostport(spec, &host, &port) < 0)
		return -1;
	long i = add(l, next_free_id(l), host, port);
	free(host);
	return i;
}

int replicas_named(const char *text, const char *after, unsigned *id, char where[REPLICA_SPEC_MAX])
{
	char start[64], phrase[96];
	snprintf(start, sizeof start, "%sreplica ", after);
	snprintf(phrase, sizeof phrase, "%s%%u at %%%d[^,) ]", start, REPLICA_SPEC_MAX - 1);
	const char *p = strstr(text, start);
	return p && sscanf(p, phrase, id, where) == 2 ? 0 : -1;
}

int replicas_learn(struct replica_list *l, unsigned id, const char *spec)
{
	char *host;
	int port;
	if (id == 0 || split_hostport(spec, &host, &port) < 0)
		return -1;
	int added = find(l, host, port) < 0;
	for (size_t k = 0; added && k < l->n; k++)
		if (l->v[k].id == id) /* taken (ids by place): another */
			id = next_free_id(l);
	if (added)
		add(l, id, host, port);
	free(host);
	return added;
}

int replicas_load_config(struct replica_list *l, const char *path, char *err, size_t errlen)
{
	config_t cf;
	int rc = 0;
	config_init(&cf);
	if (!config_read_file(&cf, path)) {
		snprintf(err, errlen, "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
			 config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		return -1;
	}
	config_setting_t *list = config_lookup(&cf, "cluster.replicas");
	if (!list || !config_setting_is_list(list)) {
		snprintf(err, errlen, "%s: no cluster.replicas list", path);
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < config_setting_length(list); i++) {
		config_setting_t *r = config_setting_get_elem(list, (unsigned)i);
		int id = 0, port = 0, tls_port = 0;
		const char *host = NULL;
		config_setting_lookup_int(r, "id", &id);
		config_setting_lookup_int(r, "port", &port);
		config_setting_lookup_int(r, "tls_port", &tls_port);
		config_setting_lookup_string(r, "host", &host);
		if (id <= 0 || port <= 0 || port > 65535 || !host || !*host) {
			snprintf(err, errlen, "%s: cluster.replicas entry %d needs id, host and port", path, i + 1);
			rc = -1;
		} else {
			long k = add(l, (unsigned)id, host, port);
			l->v[k].tls_port = tls_port > 0 && tls_port <= 65535 ? tls_port : 0;
		}
	}
	config_destroy(&cf);
	return rc;
}

long replicas_pick(struct replica_list *l, const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);
	if (end != arg && !*end) {
		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].id == (unsigned long)n)
				return (long)i;
		return n >= 1 && (size_t)n <= l->n ? n - 1 : -1;
	}
	return replicas_add(l, arg);
}

void replicas_free(struct replica_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].host);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
