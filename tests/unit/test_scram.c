/*
 * test_scram.c: SCRAM-SHA-256 verifiers and the server side of the exchange,
 * against the example of RFC 7677 section 3 and against broken exchanges.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/scram.h"
#include "check.h"

/* RFC 7677, section 3: user "user", password "pencil". */
static const char RFC_CLIENT_FIRST[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char RFC_SERVER_NONCE[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char RFC_SALT_B64[] = "W22ZaJ0SNY7soEsUEjb6gQ==";
static const char RFC_SERVER_FIRST[] =
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char RFC_CLIENT_FINAL[] =
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char RFC_SERVER_FINAL[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static char *rfc_verifier(const char *password)
{
	unsigned char salt[32];
	long n = scram_unb64(RFC_SALT_B64, salt, sizeof salt);
	CHECK_EQ_INT(n, 16);
	return scram_verifier_make(password, salt, (size_t)n, 4096);
}

/* Starts an exchange up to the server-first message. */
static void start(struct scram_server *s, const char *verifier)
{
	const char *first = NULL;
	memset(s, 0, sizeof *s);
	CHECK_EQ_INT(scram_server_read_first(s, RFC_CLIENT_FIRST), 0);
	CHECK_EQ_STR(s->user, "user");
	CHECK_EQ_INT(scram_server_first(s, verifier, RFC_SERVER_NONCE, &first), 0);
	CHECK_EQ_STR(first, RFC_SERVER_FIRST);
}

TEST(rfc7677_exchange)
{
	char *v = rfc_verifier("pencil");
	struct scram_server s;
	char *final = NULL;
	start(&s, v);
	CHECK_EQ_INT(scram_server_final(&s, RFC_CLIENT_FINAL, &final), 0);
	CHECK_EQ_STR(final, RFC_SERVER_FINAL);
	free(final);
	/* The same final again (a replay on this exchange) is refused. */
	CHECK_EQ_INT(scram_server_final(&s, RFC_CLIENT_FINAL, &final), SCRAM_EMALFORMED);
	CHECK(final == NULL);
	scram_server_clear(&s);
	free(v);
}

/* The RFC's proof against another password's verifier, and a final replayed
 * into a new exchange (whose server nonce differs), both fail. */
TEST(wrong_password_and_replay)
{
	char *other = rfc_verifier("pencils");
	struct scram_server s;
	char *final = NULL;
	start(&s, other);
	CHECK_EQ_INT(scram_server_final(&s, RFC_CLIENT_FINAL, &final), SCRAM_EPROOF);
	CHECK(final == NULL);
	scram_server_clear(&s);
	free(other);

	char *v = rfc_verifier("pencil");
	const char *first = NULL;
	char nonce[SCRAM_NONCE_LEN + 1];
	memset(&s, 0, sizeof s);
	scram_nonce(nonce);
	CHECK_EQ_INT(strlen(nonce), SCRAM_NONCE_LEN);
	CHECK(strchr(nonce, ',') == NULL);
	CHECK_EQ_INT(scram_server_read_first(&s, RFC_CLIENT_FIRST), 0);
	CHECK_EQ_INT(scram_server_first(&s, v, nonce, &first), 0);
	CHECK_EQ_INT(scram_server_final(&s, RFC_CLIENT_FINAL, &final), SCRAM_EPROOF);
	CHECK(final == NULL);
	scram_server_clear(&s);
	free(v);
}

/* A tampered channel-binding field or proof fails. */
TEST(tampered_final)
{
	char *v = rfc_verifier("pencil");
	struct scram_server s;
	char *final = NULL;
	char bad[sizeof RFC_CLIENT_FINAL];
	memcpy(bad, RFC_CLIENT_FINAL, sizeof bad);
	bad[strlen(bad) - 3] ^= 1; /* one bit of the proof */
	start(&s, v);
	CHECK_EQ_INT(scram_server_final(&s, bad, &final), SCRAM_EPROOF);
	scram_server_clear(&s);
	start(&s, v);
	CHECK_EQ_INT(scram_server_final(&s,
					"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
					&final),
		     SCRAM_EPROOF);
	scram_server_clear(&s);
	start(&s, v);
	CHECK_EQ_INT(scram_server_final(&s, "c=biws,r=x", &final), SCRAM_EMALFORMED);
	scram_server_clear(&s);
	free(v);
}

TEST(client_first_forms)
{
	struct scram_server s;
	memset(&s, 0, sizeof s);
	CHECK_EQ_INT(scram_server_read_first(&s, "p=tls-unique,,n=user,r=abc"), SCRAM_EUNSUPPORTED);
	CHECK_EQ_INT(scram_server_read_first(&s, "n,a=other,n=user,r=abc"), SCRAM_EUNSUPPORTED);
	CHECK_EQ_INT(scram_server_read_first(&s, "n,,r=abc"), SCRAM_EMALFORMED);
	CHECK_EQ_INT(scram_server_read_first(&s, "n,,n=user"), SCRAM_EMALFORMED);
	CHECK_EQ_INT(scram_server_read_first(&s, "n,,n=us=2Xer,r=abc"), SCRAM_EMALFORMED);
	CHECK_EQ_INT(scram_server_read_first(&s, ""), SCRAM_EMALFORMED);
	CHECK_EQ_INT(scram_server_read_first(&s, "n,a=user,n=user,r=abc"), 0);
	CHECK_EQ_STR(s.user, "user");
	CHECK_EQ_INT(scram_server_read_first(&s, "y,,n=a=3Db=2Cc,r=abc"), 0);
	CHECK_EQ_STR(s.user, "a=b,c");
	scram_server_clear(&s);
}

TEST(verifiers)
{
	char *v = scram_verifier_new("correct horse");
	char *w = scram_verifier_new("correct horse");
	CHECK(strncmp(v, "SCRAM-SHA-256$4096:", 19) == 0);
	CHECK(strcmp(v, w) != 0); /* a new salt each time */
	CHECK(strstr(v, "correct") == NULL);
	CHECK_EQ_INT(scram_check_password(v, "correct horse"), 1);
	CHECK_EQ_INT(scram_check_password(w, "correct horse"), 1);
	CHECK_EQ_INT(scram_check_password(v, "correct horsE"), 0);
	CHECK_EQ_INT(scram_check_password(v, ""), 0);
	CHECK_EQ_INT(scram_check_password("SCRAM-SHA-256$0:AAAA$AAAA:AAAA", "x"), SCRAM_EMALFORMED);
	CHECK_EQ_INT(scram_check_password("plain", "x"), SCRAM_EMALFORMED);
	free(v);
	free(w);
	unsigned char out[8];
	CHECK_EQ_INT(scram_unb64("AAE=", out, sizeof out), 2);
	CHECK_EQ_INT(scram_unb64("AA=E", out, sizeof out), -1);
	CHECK_EQ_INT(scram_unb64("AAE", out, sizeof out), -1);
	CHECK_EQ_INT(scram_unb64("AAAAAAAAAAAA", out, sizeof out), -1);
}

/* The client side makes the RFC's client-final and verifies its server-final. */
TEST(client_rfc7677)
{
	struct scram_client c = {0};
	char *first = scram_client_first(&c, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
	CHECK_EQ_STR(first, RFC_CLIENT_FIRST);
	char *final = scram_client_final(&c, RFC_SERVER_FIRST);
	CHECK_EQ_STR(final, RFC_CLIENT_FINAL);
	CHECK_EQ_INT(scram_client_verify(&c, RFC_SERVER_FINAL), 1);
	CHECK_EQ_INT(scram_client_verify(&c, "v=AAAA"), 0);
	free(first);
	free(final);
	/* A server nonce that does not extend ours is refused. */
	first = scram_client_first(&c, "user", "pencil", "abc");
	CHECK(scram_client_final(&c, "r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") == NULL);
	CHECK(scram_client_final(&c, "r=abc123,s=!!,i=4096") == NULL);
	free(first);
	scram_client_clear(&c);
}

/* Client and server together, with random nonces and a new verifier. */
TEST(client_and_server)
{
	char *v = scram_verifier_new("hunter22");
	for (int right = 0; right < 2; right++) {
		struct scram_client c = {0};
		struct scram_server s = {0};
		char cn[SCRAM_NONCE_LEN + 1], sn[SCRAM_NONCE_LEN + 1];
		const char *sfirst;
		char *sfinal = NULL;
		scram_nonce(cn);
		scram_nonce(sn);
		char *first = scram_client_first(&c, "alice", right ? "hunter22" : "hunter2", cn);
		CHECK_EQ_INT(scram_server_read_first(&s, first), 0);
		CHECK_EQ_INT(scram_server_first(&s, v, sn, &sfirst), 0);
		char *final = scram_client_final(&c, sfirst);
		CHECK(final != NULL);
		CHECK_EQ_INT(scram_server_final(&s, final, &sfinal), right ? 0 : SCRAM_EPROOF);
		CHECK_EQ_INT(sfinal ? scram_client_verify(&c, sfinal) : 0, right);
		free(first);
		free(final);
		free(sfinal);
		scram_client_clear(&c);
		scram_server_clear(&s);
	}
	free(v);
}

int main(void)
{
	RUN(rfc7677_exchange);
	RUN(wrong_password_and_replay);
	RUN(tampered_final);
	RUN(client_first_forms);
	RUN(verifiers);
	RUN(client_rfc7677);
	RUN(client_and_server);
	return CHECK_DONE();
}
