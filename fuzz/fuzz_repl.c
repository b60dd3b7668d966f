/*
 * fuzz_repl.c: the replica core's group messages (repl_deliver: ops, rows,
 * soft state), which come from other replicas. The input is split into
 * messages (u16 length prefixes) delivered from sender ids taken from the
 * input, to a replica in a three-member view over an in-memory store; it must
 * refuse what is malformed without a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "repl/repl.h"

static int fake_join(struct group *g)
{
	(void)g;
	return 0;
}

static int fake_multicast(struct group *g, const void *data, size_t len)
{
	(void)g;
	(void)data;
	return len <= GROUP_MSG_MAX ? 0 : -1;
}

static void fake_close(struct group *g)
{
	(void)g;
}

static const struct group_ops fake_ops = {fake_join, fake_multicast, fake_close};

static void no_write(void *ctx, struct op *op)
{
	(void)ctx;
	op_clear(op); /* taken, and dropped */
}

static void no_read(void *ctx, const struct op_stream *s, uint64_t from, uint64_t to)
{
	(void)ctx;
	(void)s;
	(void)from;
	(void)to;
}

static void no_effect(void *arg, const struct op *op, const struct chat_effect *eff, int own)
{
	(void)arg;
	(void)op;
	(void)eff;
	(void)own;
}

static void no_failed(void *arg, const struct op *op)
{
	(void)arg;
	(void)op;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repl_callbacks cb = {.effect = no_effect, .failed = no_failed};
	struct repl_io io = {.write = no_write, .read = no_read};
	struct group g = {&fake_ops, 1};
	struct store *st = store_memory_new();
	struct repl *r = repl_new(1, REPL_AVAILABLE, 3, &cb);
	char *err = NULL;
	static int quiet;
	if (!quiet) {
		log_set_level(LOG_ERROR + 1);
		quiet = 1;
	}
	if (repl_open(r, st, &err) < 0)
		abort();
	repl_attach(r, &g, &io);
	struct group_view v = {.id = 1, .n = 3, .members = {1, 2, 3}};
	repl_view(r, &v);
	while (size >= 3) {
		uint32_t sender = 1 + data[0] % 3;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		repl_deliver(r, sender, data, len);
		data += len;
		size -= len;
	}
	repl_free(r);
	store_close(st);
	return 0;
}
