/*
 * ctl.h: what chorusctl's files share: its options (chorusctl.c: the
 * commands and the supervisor) and the files it writes for a local cluster
 * (files.c: Corosync's and chorus's configuration, the TLS certificate).
 */
#ifndef CHORUS_CTL_H
#define CHORUS_CTL_H

#include <limits.h>

#define MAX_REPLICAS 32
#define TLS_PORT_OFFSET 30 /* replica i's TLS port: its client port + 30 (6697 for 6667) */
#define LINK_PORT_OFFSET 60 /* its catch-up link port: + 60 (6727 for 6667) */

struct options {
	int n;
	char dir[PATH_MAX];
	int port;
	const char *mode;
	const char *sync;
	int detach;
	int full;                 /* digest --full: hash the whole state */
	const char *chorusd;
	const char *user;         /* replicas run as this user (chorusd --user), or NULL */
	const char *hosts;        /* init --hosts: comma-separated hosts */
	char *extra[64];          /* --replica-arg: more flags for every chorusd */
	int nextra;
};

/* Writes text to path; 0, or -1 with the reason printed. */
int write_file(const char *path, const char *text);
/* Makes directory path (fine if it exists); 0, or -1 with the reason printed. */
int make_dir(const char *path);
/* DIR/corosync.conf: one local Corosync node, its port derived from o->port;
 * it lets o->user (when not root) use Corosync (uidgid). */
int write_corosync_conf(const struct options *o);
/* DIR/cluster.conf: the replicas' client addresses (cluster.replicas, with
 * their TLS and link ports) and the link key's file, read by chorusd, chorus
 * and chorusctl status/digest. */
int write_cluster_conf(const struct options *o);
/* DIR/link.key: the catch-up links' key (32 random bytes, hex), made once
 * and kept, readable by its owner only. Returns 0, or -1 with the reason
 * printed. */
int make_link_key(const struct options *o);
/*
 * `chorusctl init --hosts`: for the comma-separated hosts (addresses or
 * names: replica i is the i-th), DIR/<host>/corosync.conf (knet with crypto,
 * the timing and MTU the cluster tests use, the nodelist, chorus allowed to
 * use Corosync) and DIR/<host>/chorus.conf (its replica id, every replica's
 * ports: client o->port, TLS +30, link +60), and once DIR/authkey (Corosync's
 * key: 256 random bytes) and DIR/link.key, both readable by their owner only.
 * Returns 0, or -1 with the reason printed.
 */
int write_host_files(const struct options *o, const char *hosts);
/*
 * DIR/tls/cert.pem and key.pem: a self-signed certificate (P-256, for
 * localhost and 127.0.0.1, valid a year) made once and kept across runs, so
 * its fingerprint stays the same. Writes its SHA-256 fingerprint
 * ("AB:CD:...") to fp. Returns 0, or -1 with the reason printed.
 */
int make_certificate(const struct options *o, char fp[100]);

#endif
