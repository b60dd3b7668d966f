/*
 * files.c: the files chorusctl writes for a local cluster (see ctl.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"
#include "ctl.h"
#include "tls/tls.h"

int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "chorusctl: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "chorusctl: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* 20000 + the first client port, folded into 20000..29999. */
static int corosync_port(const struct options *o)
{
	return 20000 + o->port % 10000;
}

int write_corosync_conf(const struct options *o)
{
	char path[PATH_MAX + 32], *text, *allow = xstrdup("");
	struct passwd *pw = o->user ? getpwnam(o->user) : NULL;
	snprintf(path, sizeof path, "%s/corosync.conf", o->dir);
	if (o->user && !pw) {
		fprintf(stderr, "chorusctl: --user %s: no such user\n", o->user);
		free(allow);
		return -1;
	}
	if (pw && pw->pw_uid != 0) {
		free(allow);
		allow = xasprintf("uidgid {\n  uid: %ld\n  gid: %ld\n}\n", (long)pw->pw_uid, (long)pw->pw_gid);
	}
	/* Corosync's own port follows the client ports, so two local clusters
	 * on one machine do not meet. */
	text = xasprintf("totem {\n  version: 2\n  cluster_name: chorus\n  transport: udpu\n"
			 "  token: 1000\n  token_coefficient: 0\n  crypto_cipher: none\n  crypto_hash: none\n"
			 "  interface {\n    linknumber: 0\n    mcastport: %d\n  }\n}\n"
			 "nodelist {\n  node {\n    ring0_addr: 127.0.0.1\n    nodeid: 1\n  }\n}\n"
			 "quorum {\n  provider: corosync_votequorum\n  expected_votes: 1\n}\n"
			 "logging {\n  to_logfile: yes\n  logfile: %s/corosync.log\n  to_stderr: no\n  to_syslog: no\n}\n"
			 "%s",
			 corosync_port(o), o->dir, allow);
	int rc = write_file(path, text);
	free(text);
	free(allow);
	return rc;
}

int write_cluster_conf(const struct options *o)
{
	char path[PATH_MAX + 32];
	struct buf b = {0};
	buf_printf(&b, "# written by chorusctl up\ncluster = {\n  mode = \"%s\";\n  group = \"corosync\";\n"
		       "  link_key = \"%s/link.key\";\n  replicas = (\n", o->mode, o->dir);
	for (int i = 1; i <= o->n; i++)
		buf_printf(&b, "    { id = %d; host = \"127.0.0.1\"; port = %d; tls_port = %d; link_port = %d; }%s\n",
			   i, o->port + i - 1, o->port + i - 1 + TLS_PORT_OFFSET, o->port + i - 1 + LINK_PORT_OFFSET,
			   i < o->n ? "," : "");
	buf_printf(&b, "  );\n};\n");
	snprintf(path, sizeof path, "%s/cluster.conf", o->dir);
	int rc = write_file(path, b.data);
	buf_free(&b);
	return rc;
}

/* Opens path for writing, readable by its owner only. */
static FILE *open_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	return fd < 0 ? NULL : fdopen(fd, "w");
}

/* DIR/name: n random bytes (at most 256), as they are or in hex with a
 * newline, readable by its owner only; made once and kept. Returns 0, or -1
 * with the reason printed. */
static int make_key_file(const struct options *o, const char *name, size_t n, int hex)
{
	char path[PATH_MAX + 32];
	unsigned char key[256];
	snprintf(path, sizeof path, "%s/%s", o->dir, name);
	if (access(path, R_OK) == 0)
		return 0;
	FILE *f = open_private(path);
	int ok = f && n <= sizeof key && RAND_bytes(key, (int)n) == 1;
	for (size_t i = 0; ok && hex && i < n; i++)
		ok = fprintf(f, "%02x", key[i]) == 2;
	ok = ok && (hex ? fputc('\n', f) != EOF : fwrite(key, 1, n, f) == n);
	if (f && fclose(f) != 0)
		ok = 0;
	OPENSSL_cleanse(key, sizeof key);
	if (!ok)
		fprintf(stderr, "chorusctl: cannot write %s: %s\n", path, strerror(errno));
	return ok ? 0 : -1;
}

int make_link_key(const struct options *o)
{
	return make_key_file(o, "link.key", 32, 1);
}

/* DIR/authkey: Corosync's key, 256 random bytes. */
static int make_authkey(const struct options *o)
{
	return make_key_file(o, "authkey", 256, 0);
}

int write_host_files(const struct options *o, const char *hosts)
{
	char *list = xstrdup(hosts), *save = NULL, *host[MAX_REPLICAS];
	int n = 0, rc = 0;
	for (char *h = strtok_r(list, ",", &save); h && n < MAX_REPLICAS; h = strtok_r(NULL, ",", &save))
		if (*h)
			host[n++] = h;
	if (n < 1 || (save && *save)) {
		fprintf(stderr, "chorusctl: --hosts takes 1 to %d comma-separated hosts\n", MAX_REPLICAS);
		free(list);
		return -1;
	}
	struct buf nodes = {0}, replicas = {0};
	for (int i = 0; i < n; i++) {
		buf_printf(&nodes, "  node {\n    ring0_addr: %s\n    nodeid: %d\n  }\n", host[i], i + 1);
		buf_printf(&replicas, "    { id = %d; host = \"%s\"; port = %d; tls_port = %d; link_port = %d; }%s\n", i + 1,
			   host[i], o->port, o->port + TLS_PORT_OFFSET, o->port + LINK_PORT_OFFSET, i + 1 < n ? "," : "");
	}
	rc = make_dir(o->dir) < 0 || make_authkey(o) < 0 || make_link_key(o) < 0 ? -1 : 0;
	for (int i = 0; i < n && rc == 0; i++) {
		char dir[PATH_MAX + 300], path[PATH_MAX + 340];
		snprintf(dir, sizeof dir, "%s/%s", o->dir, host[i]);
		if (make_dir(dir) < 0) {
			rc = -1;
			break;
		}
		char *text = xasprintf(
			"# written by chorusctl init for host %s (replica %d): /etc/corosync/corosync.conf\n"
			"totem {\n  version: 2\n  cluster_name: chorus\n  transport: knet\n"
			"  token: 1000\n  token_coefficient: 0\n"
			"  # the smallest MTU on the path between the hosts\n  knet_mtu: 1500\n"
			"  crypto_cipher: aes256\n  crypto_hash: sha256\n  keyfile: /etc/corosync/authkey\n}\n"
			"nodelist {\n%s}\n"
			"quorum {\n  provider: corosync_votequorum\n}\n"
			"logging {\n  to_syslog: yes\n}\n"
			"uidgid {\n  uid: chorus\n  gid: chorus\n}\n",
			host[i], i + 1, nodes.data);
		snprintf(path, sizeof path, "%s/corosync.conf", dir);
		rc = write_file(path, text);
		free(text);
		if (rc < 0)
			break;
		text = xasprintf(
			"# written by chorusctl init for host %s: /etc/chorus/chorus.conf (docs/CONFIG.md)\n"
			"replica = {\n  id = %d;\n  listen = \"0.0.0.0\";\n  port = %d;\n};\n"
			"# tls = { cert = \"/etc/chorus/cert.pem\"; key = \"/etc/chorus/key.pem\"; port = %d; };\n"
			"cluster = {\n  group = \"corosync\";\n  mode = \"%s\";\n"
			"  link_key = \"/etc/chorus/link.key\";\n  replicas = (\n%s  );\n};\n",
			host[i], i + 1, o->port, o->port + TLS_PORT_OFFSET, o->mode, replicas.data);
		snprintf(path, sizeof path, "%s/chorus.conf", dir);
		rc = write_file(path, text);
		free(text);
	}
	buf_free(&nodes);
	buf_free(&replicas);
	free(list);
	return rc;
}

/* Adds extension nid with value (OpenSSL's text form) to x. */
static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = e && X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* A new self-signed certificate for key; NULL on failure. */
static X509 *self_signed(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
	if (!x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 || !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The SHA-256 fingerprint of the PEM certificate at path into fp. */
static int fingerprint(const char *path, char fp[100])
{
	if (tls_file_fingerprint(path, fp) == 0)
		return 0;
	fprintf(stderr, "chorusctl: cannot read the certificate %s\n", path);
	return -1;
}

int make_certificate(const struct options *o, char fp[100])
{
	char dir[PATH_MAX + 8], cert[PATH_MAX + 32], keyp[PATH_MAX + 32];
	snprintf(dir, sizeof dir, "%s/tls", o->dir);
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(keyp, sizeof keyp, "%s/key.pem", dir);
	if (access(cert, R_OK) == 0 && access(keyp, R_OK) == 0)
		return fingerprint(cert, fp);
	if (make_dir(dir) < 0)
		return -1;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = key ? self_signed(key) : NULL;
	FILE *kf = x ? open_private(keyp) : NULL, *cf = kf ? fopen(cert, "w") : NULL;
	int ok = cf && PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) && PEM_write_X509(cf, x);
	if (kf && fclose(kf) != 0)
		ok = 0;
	if (cf && fclose(cf) != 0)
		ok = 0;
	X509_free(x);
	EVP_PKEY_free(key);
	if (!ok) {
		fprintf(stderr, "chorusctl: cannot make a TLS certificate in %s\n", dir);
		unlink(cert);
		unlink(keyp);
		return -1;
	}
	return fingerprint(cert, fp);
}
