/*
 * digest.c: chat_digest, the SHA-256 of a canonical serialisation of the whole
 * chat state, so replicas can tell whether they converged.
 *
 * Serialisation: integers as 8 little-endian bytes, strings as their length
 * then their bytes, each section opened by a tag byte and a count. In order:
 * the number of applied ops and the highest lts; the known users (casefolded
 * key, spelling) by key; the rooms by key (key, name, created_ms, topic,
 * topic author, topic time, messages, founder, mode registers by key); the DM conversations by key (the two
 * persons, their spellings, messages); then the like placeholders of
 * messages that have not arrived, by msgid, each with every person's state
 * (person, liked, the key of the op that set it) by person; then the follow
 * states by (follower, followee) (person and casefolded name, following, the
 * key of the op that set it); then the feeds that have posts, by person
 * (person, messages); then the accounts by casefolded name (name, the msgids
 * of its ops in order, the registration in force or "", its verifier and
 * email). A message is written as msgid, lts, wall_ms, kind, flags, target,
 * author, body, account, client tags, like count and the persons whose state is liked,
 * in order.
  *
 * The set digest (chat_set_digest) is kept as ops are applied: the sum,
 * modulo 2^256, of the SHA-256 of each applied op (stream, seq, lts,
 * wall_ms, kind, flags and every string field, serialised as above). As
 * the state is a function of the set of applied ops, equal sets give equal
 * states, and a sum does not depend on the order the ops came in; reading
 * it costs nothing at any history size. It does not see a state that
 * differs under equal op sets (a bug in applying): the full digest does.
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

static void put_msg(EVP_MD_CTX *ctx, const struct chat *c, const struct chat_msg *m)
{
	const struct op *op = &m->op;
	put_str(ctx, m->msgid);
	put_u64(ctx, op->lts);
	put_u64(ctx, (uint64_t)op->wall_ms);
	put_u64(ctx, op->kind);
	put_u64(ctx, op->flags);
	put_str(ctx, op->target);
	put_str(ctx, op->author);
	put_str(ctx, op->body);
	put_str(ctx, op->account);
	put_str(ctx, op->tags ? op->tags : "");
	put_u64(ctx, m->likes);
	const struct like_set *s = likes_find(c, m->msgid);
	size_t n = 0;
	struct like_state **likers = s ? likes_sorted(s, 1, &n) : NULL;
	put_section(ctx, 'L', n);
	for (size_t i = 0; i < n; i++)
		put_str(ctx, likers[i]->user);
	free(likers);
}

static void put_history(EVP_MD_CTX *ctx, const struct chat *c, const struct chat_history *h)
{
	put_section(ctx, 'H', chat_history_len(h));
	for (size_t i = 0; i < chat_history_len(h); i++)
		put_msg(ctx, c, chat_history_at(h, i));
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
		put_history(ctx, c, r->history);
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
		put_history(ctx, c, all[i]->history);
	}
	free(all);
}

static int like_set_cmp(const void *a, const void *b)
{
	return strcmp((*(struct like_set *const *)a)->msgid, (*(struct like_set *const *)b)->msgid);
}

static void put_placeholders(EVP_MD_CTX *ctx, const struct chat *c)
{
	struct like_set **all;
	size_t n, pending = 0;
	CHAT_HASH_SORTED(c->likes, struct like_set, like_set_cmp, all, n);
	for (size_t i = 0; i < n; i++)
		if (!chat_msg_entry(c, all[i]->msgid))
			all[pending++] = all[i];
	put_section(ctx, 'P', pending);
	for (size_t i = 0; i < pending; i++) {
		size_t k;
		struct like_state **states = likes_sorted(all[i], 0, &k);
		put_str(ctx, all[i]->msgid);
		put_section(ctx, 'S', k);
		for (size_t j = 0; j < k; j++) {
			put_str(ctx, states[j]->user);
			put_u64(ctx, (uint64_t)states[j]->liked);
			put_key(ctx, &states[j]->set_by);
		}
		free(states);
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
		put_history(ctx, c, all[i]->posts);
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

void chat_digest(const struct chat *c, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = sha256_start();
	put_section(ctx, 'C', c->op_count);
	put_u64(ctx, c->max_lts);
	put_users(ctx, c);
	put_rooms(ctx, c);
	put_convs(ctx, c);
	put_placeholders(ctx, c);
	put_follows(ctx, c);
	put_feeds(ctx, c);
	put_accounts(ctx, c);
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	hex_of(md, len, out);
}

/* ---- the set digest ---- */

static void buf_u64(struct buf *b, uint64_t v)
{
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	buf_append(b, le, sizeof le);
}

static void buf_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	buf_u64(b, n);
	buf_append(b, s, n);
}

/* Adds the 32 bytes md, as four little-endian words, to sum (mod 2^256). */
static void sum_add(uint64_t sum[4], const unsigned char *md)
{
	unsigned carry = 0;
	for (int w = 0; w < 4; w++) {
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v |= (uint64_t)md[8 * w + i] << (8 * i);
		uint64_t s = sum[w] + v;
		unsigned next = s < v;
		s += carry;
		next |= carry && s == 0;
		sum[w] = s;
		carry = next;
	}
}

/* The op is serialised into one buffer and hashed in one call, with
 * SHA-256 fetched once: a third of the cost of an update per field. */
void digest_add_op(struct chat *c, const struct op *op)
{
	struct digest_state *d = &c->set_digest;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!d->md && (!(d->md = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(d->ctx = EVP_MD_CTX_new()))) {
		fprintf(stderr, "chorus: cannot start SHA-256\n");
		abort();
	}
	buf_reset(&d->scratch);
	buf_u64(&d->scratch, op->stream.origin);
	buf_u64(&d->scratch, op->stream.incarnation);
	buf_u64(&d->scratch, op->stream.boot);
	buf_u64(&d->scratch, op->seq);
	buf_u64(&d->scratch, op->lts);
	buf_u64(&d->scratch, (uint64_t)op->wall_ms);
	buf_u64(&d->scratch, op->kind);
	buf_u64(&d->scratch, op->flags);
	buf_str(&d->scratch, op->target);
	buf_str(&d->scratch, op->author);
	buf_str(&d->scratch, op->body);
	buf_str(&d->scratch, op->ref);
	buf_str(&d->scratch, op->account);
	buf_str(&d->scratch, op->tags);
	if (EVP_DigestInit_ex2(d->ctx, d->md, NULL) != 1 ||
	    EVP_DigestUpdate(d->ctx, d->scratch.data, d->scratch.len) != 1 ||
	    EVP_DigestFinal_ex(d->ctx, md, &len) != 1 || len != 32) {
		fprintf(stderr, "chorus: SHA-256 failed\n");
		abort();
	}
	sum_add(d->sum, md);
}

void digest_free(struct chat *c)
{
	struct digest_state *d = &c->set_digest;
	EVP_MD_CTX_free(d->ctx);
	EVP_MD_free(d->md);
	buf_free(&d->scratch);
	memset(d, 0, sizeof *d);
}

void chat_set_digest(const struct chat *c, char out[65])
{
	unsigned char b[32];
	for (int w = 0; w < 4; w++)
		for (int i = 0; i < 8; i++)
			b[8 * (3 - w) + 7 - i] = (unsigned char)(c->set_digest.sum[w] >> (8 * i));
	hex_of(b, sizeof b, out);
}
