/*
 * accounts.c: accounts, as the fold of their operations.
 *
 * Every OP_REGISTER, OP_PASSWORD and OP_UNREGISTER of one account name (its
 * author, casefolded) is kept, sorted by key (op_cmp). The account's state is
 * a fold over that list from "not registered", so it is a function of the set
 * of ops and not of their arrival:
 *   OP_REGISTER    when not registered: registered, with this op's msgid as
 *                  its registration id, its verifier (body) and email
 *                  (target); when registered: void (a concurrent
 *                  registration that sorts later: the earlier one wins);
 *   OP_PASSWORD    whose ref is the registration in force: its verifier;
 *   OP_UNREGISTER  whose ref is the registration in force: not registered.
 * A change naming another registration (void, or removed) changes nothing.
 * Account ops are few, so the fold runs again at each one.
 */
#include "chat_impl.h"

#include <string.h>

static struct account_entry *account_entry_find(const struct chat *c, const char *name)
{
	char *key = chat_casefold(name);
	struct account_entry *a;
	HASH_FIND_STR(c->accounts, key, a);
	free(key);
	return a;
}

/* Inserts a copy of op into a's ops at its canonical place. */
static void account_insert(struct account_entry *a, const struct op *op)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4;
		a->ops = xrealloc(a->ops, a->cap * sizeof *a->ops);
	}
	size_t i = a->n;
	while (i > 0 && op_cmp(&a->ops[i - 1], op) > 0)
		i--;
	memmove(a->ops + i + 1, a->ops + i, (a->n - i) * sizeof *a->ops);
	op_copy(&a->ops[i], op);
	a->n++;
}

/* Recomputes a->live (live_op: the OP_REGISTER in force, or NULL) from its
 * ops, as the header says. */
static void account_fold(struct account_entry *a)
{
	const struct op *reg = NULL;
	const char *verifier = NULL;
	char regid[OP_MSGID_MAX] = "";
	for (size_t i = 0; i < a->n; i++) {
		const struct op *op = &a->ops[i];
		if (op->kind == OP_REGISTER && !reg) {
			reg = op;
			verifier = op->body;
			op_msgid(op, regid, sizeof regid);
		} else if (op->kind == OP_PASSWORD && reg && strcmp(op->ref, regid) == 0) {
			verifier = op->body;
		} else if (op->kind == OP_UNREGISTER && reg && strcmp(op->ref, regid) == 0) {
			reg = NULL;
			regid[0] = '\0';
		}
	}
	a->live_op = reg;
	memcpy(a->live.regid, regid, sizeof regid);
	a->live.name = reg ? reg->author : NULL;
	a->live.verifier = reg ? verifier : NULL;
	a->live.email = reg ? reg->target : NULL;
	a->live.registered_ms = reg ? reg->wall_ms : 0;
}

int accounts_apply(struct chat *c, const struct op *op)
{
	struct account_entry *a = account_entry_find(c, op->author);
	if (!a) {
		a = xcalloc(1, sizeof *a);
		a->key = chat_casefold(op->author);
		HASH_ADD_KEYPTR(hh, c->accounts, a->key, strlen(a->key), a);
	}
	char was[OP_MSGID_MAX];
	const char *verifier = a->live.verifier; /* op strings stay put as ops move */
	memcpy(was, a->live.regid, sizeof was);
	account_insert(a, op);
	account_fold(a);
	return strcmp(was, a->live.regid) != 0 || verifier != a->live.verifier;
}

const struct chat_account *chat_account_find(const struct chat *c, const char *name)
{
	struct account_entry *a = account_entry_find(c, name);
	return a && a->live_op ? &a->live : NULL;
}

char *chat_person(const char *nick, const char *account)
{
	if (!account || !*account)
		return chat_casefold(nick);
	char *p = xasprintf("%s/%s", nick, account);
	char *f = chat_casefold(p);
	free(p);
	return f;
}

char *chat_person_of_name(const struct chat *c, const char *name)
{
	const struct chat_account *a = chat_account_find(c, name);
	return chat_person(name, a ? a->regid : NULL);
}

static int entry_cmp(const void *x, const void *y)
{
	return strcmp((*(struct account_entry *const *)x)->key, (*(struct account_entry *const *)y)->key);
}

struct account_entry **accounts_sorted(const struct chat *c, size_t *n)
{
	struct account_entry **all;
	CHAT_HASH_SORTED(c->accounts, struct account_entry, entry_cmp, all, *n);
	return all;
}

void accounts_snapshot(const struct chat *c, struct op_buf *b)
{
	size_t n = 0, k = 0;
	for (const struct account_entry *a = c->accounts; a; a = a->hh.next)
		n += a->n;
	struct op *all = xcalloc(n + 1, sizeof *all);
	for (const struct account_entry *a = c->accounts; a; a = a->hh.next)
		for (size_t i = 0; i < a->n; i++)
			all[k++] = a->ops[i]; /* shallow: encoded, not kept */
	struct op_buf enc = {0};
	op_encode(&enc, all, n);
	snap_u64(b, enc.len);
	op_buf_put_bytes(b, enc.data, enc.len);
	op_buf_free(&enc);
	free(all);
}

void accounts_restore(struct chat *c, struct op_reader *r)
{
	size_t len = snap_read_count(r, 1), n = 0;
	struct op *ops = NULL;
	if (r->bad || op_decode(r->p, len, &ops, &n) < 0) {
		r->bad = 1;
		return;
	}
	r->p += len;
	r->left -= len;
	for (size_t i = 0; i < n; i++)
		accounts_apply(c, &ops[i]);
	op_free_array(ops, n);
}

void accounts_free_all(struct chat *c)
{
	struct account_entry *a, *tmp;
	HASH_ITER(hh, c->accounts, a, tmp) {
		HASH_DEL(c->accounts, a);
		for (size_t i = 0; i < a->n; i++)
			op_clear(&a->ops[i]);
		free(a->ops);
		free(a->key);
		free(a);
	}
}
