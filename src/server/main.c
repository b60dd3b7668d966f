/*
 * main.c: chorusd, one chorus replica. Reads its settings, opens the store
 * and rebuilds the chat state, joins the group, listens for IRC clients, and
 * runs the event loop until SIGINT or SIGTERM.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static uv_signal_t sigint, sigterm, sighup;

/* Stops taking clients and writes, then closes every handle, so uv_run
 * returns once the batch being written is done. */
static void on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;
	log_info("signal %d: shutting down", signum);
	session_close_all(srv);
	metrics_stop(srv);
	replica_stop(srv);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sighup, NULL);
}

/* SIGHUP: the configuration file and flags are read again (config_reload:
 * limits, MOTD, password, operator, replica list), the TLS certificate and
 * key too; clients stay connected. */
static void on_hup(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;
	(void)signum;
	if (config_reload(&srv->cfg, srv->argc, srv->argv) == 0) {
		replica_reconfigured(srv);
		log_info("configuration reloaded: %zu replica(s) in the cluster list", srv->cfg.nreplicas);
	}
	if (srv->tls)
		tls_reload(srv->tls, srv->cfg.tls_cert, srv->cfg.tls_key);
}

int main(int argc, char **argv)
{
	static struct server srv;
	srv.argc = argc;
	srv.argv = argv;
	int rc = config_load(&srv.cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	log_set_level(srv.cfg.log_level);
	server_name_of(&srv, srv.cfg.id, srv.name);
	static char fields[64 + SERVER_NAME_MAX];
	snprintf(fields, sizeof fields, "replica=%u server=%s", (unsigned)srv.cfg.id, srv.name);
	log_set_tag(fields);
	signal(SIGPIPE, SIG_IGN);

	srv.loop = uv_default_loop();
	srv.started_ms = wall_ms();
	if (srv.cfg.tls_cert && !(srv.tls = tls_server_new(srv.cfg.tls_cert, srv.cfg.tls_key)))
		return 1;

	metrics_init(&srv.metrics);
	if (replica_start(&srv) < 0)
		return 1;
	if ((rc = session_listen(&srv)) < 0) {
		log_error("cannot listen on %s:%d%s: %s", srv.cfg.listen, srv.cfg.port,
			  srv.tls ? " and the TLS port" : "", uv_strerror(rc));
		return 1;
	}
	if (metrics_start(&srv) < 0)
		return 1;
	if (srv.cfg.user && become_user(srv.cfg.user, srv.cfg.data_dir) < 0)
		return 1;
	log_info("listening on %s:%d", srv.cfg.listen, srv.cfg.port);
	if (srv.tls) {
		char fp[100];
		tls_fingerprint(srv.tls, fp);
		log_info("listening for TLS on %s:%d, certificate SHA-256 %s", srv.cfg.listen, srv.cfg.tls_port, fp);
	}

	uv_signal_init(srv.loop, &sigint);
	uv_signal_init(srv.loop, &sigterm);
	sigint.data = sigterm.data = &srv;
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(srv.loop, &sighup);
	sighup.data = &srv;
	uv_signal_start(&sighup, on_hup, SIGHUP);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	if (srv.store)
		store_close(srv.store);
	if (srv.chat)
		chat_free(srv.chat);
	tls_server_free(srv.tls);
	auth_buckets_prune(&srv, 1);
	whowas_free(&srv);
	metrics_free(&srv.metrics);
	config_free(&srv.cfg);
	if (uv_loop_close(srv.loop) != 0)
		log_warn("event loop closed with handles still open");
	log_info("stopped");
	return 0;
}
