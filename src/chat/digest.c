/*
 * digest.c: chat_digest, the SHA-256 of a canonical serialisation of the
 * chat's working state and the store's digest of the messages and like
 * states (store_ops.digest), so replicas can tell whether they converged.
 *
 * Serialisation: integers as 8 little-endian bytes, strings as their length
 * then their bytes, each section opened by a tag byte and a count. In order:
 * the number of applied ops and the highest lts; the known users (casefolded
 * key, spelling) by key; the rooms by key (key, name, created_ms, topic,
 * topic author, topic time, the length of its history, founder, mode
 * registers by key); the DM conversations by key (the two persons, their
 * spellings, the length of their history); the follow states by (follower,
 * followee) (person and casefolded name, following, the key of the op that
 * set it); the feeds that have posts, by person (person, the length of the
 * feed); the accounts by casefolded name (name, the msgids of its ops in
 * order, the registration in force or "", its verifier and email): the
 * state part (chat_state_digest). The full digest is the SHA-256 of the
 * state part's and the store's digests (64 hex digits each).
 *
 * The set digest (chat_set_digest) is kept as ops are applied: the set
 * hash (sethash.h) of the applied ops (stream, seq, lts, wall_ms, kind,
 * flags and every string field, serialised as above). As the state is a
 * function of the set of applied ops, equal sets give equal states, and a
 * sum does not depend on the order the ops came in; reading it costs
 * nothing at any history size. It does not see a state that differs under
 * equal op sets (a bug in applying): the full digest does.
 */
#include "chat_impl.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static void put_u64(EVP_MD_CTX *ctx, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	EVP_DigestUpdate(ctx, b, sizeof b);
}

static void put_str(EVP_MD_CTX *ctx, const char *s)
{
	size_t n = strlen(s);
	put_u64(ctx, n);
	EVP_DigestUpdate(ctx, s, n);
}

static void put_section(EVP_MD_CTX *ctx, uint8_t tag, size_t count)
{
	EVP_DigestUpdate(ctx, &tag, 1);
	put_u64(ctx, count);
}

static void put_key(EVP_MD_CTX *ctx, const struct op_key *k)
{
	put_u64(ctx, k->lts);
	put_u64(ctx, k->stream.origin);
	put_u64(ctx, k->stream.incarnation);
	put_u64(ctx, k->stream.boot);
	put_u64(ctx, k->seq);
}

/* A history by its length: its messages are the store's part. */
static void put_history(EVP_MD_CTX *ctx, const struct chat_history *h)
{
	put_section(ctx, 'H', chat_history_len(h));
}

static void put_users(EVP_MD_CTX *ctx, const struct chat *c)
{
	size_t n;
	struct user **all = chat_users_sorted(c, &n);
	put_section(ctx, 'U', n);
	for (size_t i = 0; i < n; i++) {
		put_str(ctx, all[i]->key);
		put_str(ctx, all[i]->nick);
	}
}

static int mode_reg_cmp(const void *a, const void *b)
{
	return strcmp((*(struct mode_reg *const *)a)->key, (*(struct mode_reg *const *)b)->key);
}

/* A room's founder and mode registers by key: key, on, value, the op key. */
static void put_modes(EVP_MD_CTX *ctx, const struct room_entry *r)
{
	struct mode_reg **all;
	size_t n;
	CHAT_HASH_SORTED(r->modes, struct mode_reg, mode_reg_cmp, all, n);
	put_str(ctx, r->founder ? r->founder : "");
	put_section(ctx, 'M', n);
	for (size_t i = 0; i < n; i++) {
		put_str(ctx, all[i]->key);
		put_u64(ctx, (uint64_t)all[i]->on);
		put_str(ctx, all[i]->value);
		put_u64(ctx, all[i]->by.lts);
		put_u64(ctx, all[i]->by.stream.origin);
		put_u64(ctx, all[i]->by.stream.incarnation);
		put_u64(ctx, all[i]->by.stream.boot);
		put_u64(ctx, all[i]->by.seq);
	}
	free(all);
}

static void put_rooms(EVP_MD_CTX *ctx, const struct chat *c)
{
	size_t n;
	struct room_entry **all = chat_rooms_sorted(c, &n);
	put_section(ctx, 'R', n);
	for (size_t i = 0; i < n; i++) {
		const struct chat_room *r = &all[i]->room;
		put_str(ctx, all[i]->key);
		put_str(ctx, r->name);
		put_u64(ctx, (uint64_t)r->created_ms);
		put_str(ctx, r->topic);
		put_str(ctx, r->topic_author);
		put_u64(ctx, (uint64_t)r->topic_ms);
		put_history(ctx, r->history);
		put_modes(ctx, all[i]);
	}
}

static int conv_cmp(const void *a, const void *b)
{
	const struct conv *x = *(struct conv *const *)a, *y = *(struct conv *const *)b;
	int d = strcmp(x->fold[0], y->fold[0]);
	return d ? d : strcmp(x->fold[1], y->fold[1]);
}

static void put_convs(EVP_MD_CTX *ctx, const struct chat *c)
{
	struct conv **all;
	size_t n;
	CHAT_HASH_SORTED(c->convs, struct conv, conv_cmp, all, n);
	put_section(ctx, 'D', n);
	for (size_t i = 0; i < n; i++) {
		for (int side = 0; side < 2; side++) {
			put_str(ctx, all[i]->fold[side]);
			put_str(ctx, all[i]->name[side]);
		}
		put_history(ctx, all[i]->history);
	}
	free(all);
}

static int follow_cmp(const void *a, const void *b)
{
	const struct follow_state *x = *(struct follow_state *const *)a, *y = *(struct follow_state *const *)b;
	int d = strcmp(x->follower, y->follower);
	return d ? d : strcmp(x->followee, y->followee);
}

static void put_follows(EVP_MD_CTX *ctx, const struct chat *c)
{
	struct follow_state **all;
	size_t n;
	CHAT_HASH_SORTED(c->follows, struct follow_state, follow_cmp, all, n);
	put_section(ctx, 'F', n);
	for (size_t i = 0; i < n; i++) {
		put_str(ctx, all[i]->follower);
		put_str(ctx, all[i]->followee);
		put_u64(ctx, (uint64_t)all[i]->following);
		put_key(ctx, &all[i]->set_by);
	}
	free(all);
}

static int feed_cmp(const void *a, const void *b)
{
	return strcmp((*(struct feed *const *)a)->key, (*(struct feed *const *)b)->key);
}

static void put_feeds(EVP_MD_CTX *ctx, const struct chat *c)
{
	struct feed **all;
	size_t n, posting = 0;
	CHAT_HASH_SORTED(c->feeds, struct feed, feed_cmp, all, n);
	for (size_t i = 0; i < n; i++)
		if (all[i]->posts)
			all[posting++] = all[i];
	put_section(ctx, 'T', posting);
	for (size_t i = 0; i < posting; i++) {
		put_str(ctx, all[i]->key);
		put_history(ctx, all[i]->posts);
	}
	free(all);
}

static void put_accounts(EVP_MD_CTX *ctx, const struct chat *c)
{
	size_t n;
	struct account_entry **all = accounts_sorted(c, &n);
	put_section(ctx, 'A', n);
	for (size_t i = 0; i < n; i++) {
		const struct account_entry *a = all[i];
		put_str(ctx, a->key);
		put_section(ctx, 'O', a->n);
		for (size_t j = 0; j < a->n; j++) {
			char id[OP_MSGID_MAX];
			op_msgid(&a->ops[j], id, sizeof id);
			put_str(ctx, id);
		}
		put_str(ctx, a->live.regid);
		put_str(ctx, a->live_op ? a->live.verifier : "");
		put_str(ctx, a->live_op ? a->live.email : "");
	}
	free(all);
}

/* A new ctx started on SHA-256; aborts if OpenSSL cannot. */
static EVP_MD_CTX *sha256_start(void)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "chorus: cannot start SHA-256\n");
		abort();
	}
	return ctx;
}

static void hex_of(const unsigned char *b, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * len] = '\0';
}

void chat_state_digest(const struct chat *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = sha256_start();
	put_section(ctx, 'C', c->op_count);
	put_u64(ctx, c->max_lts);
	put_users(ctx, c);
	put_rooms(ctx, c);
	put_convs(ctx, c);
	put_follows(ctx, c);
	put_feeds(ctx, c);
	put_accounts(ctx, c);
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	hex_of(md, len, out);
}

void chat_digest_of_parts(const char *state_part, const char *store_part, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = sha256_start();
	put_str(ctx, state_part);
	put_str(ctx, store_part);
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	hex_of(md, len, out);
}

void chat_digest(const struct chat *c, const char *store_part, char out[65])
{
	char state[65];
	chat_state_digest(c, state);
	chat_digest_of_parts(state, store_part, out);
}

/* ---- the set digest ---- */

void chat_hash_op(struct sethash *h, const struct op *op)
{
	sethash_u64(h, op->stream.origin);
	sethash_u64(h, op->stream.incarnation);
	sethash_u64(h, op->stream.boot);
	sethash_u64(h, op->seq);
	sethash_u64(h, op->lts);
	sethash_u64(h, (uint64_t)op->wall_ms);
	sethash_u64(h, op->kind);
	sethash_u64(h, op->flags);
	sethash_str(h, op->target);
	sethash_str(h, op->author);
	sethash_str(h, op->body);
	sethash_str(h, op->ref);
	sethash_str(h, op->account);
	sethash_str(h, op->tags);
}

void digest_add_op(struct chat *c, const struct op *op)
{
	chat_hash_op(&c->set_digest, op);
	sethash_add(&c->set_digest);
}

void chat_set_digest(const struct chat *c, char out[65])
{
	sethash_hex(&c->set_digest, out);
}
