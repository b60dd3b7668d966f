/*
 * fuzz_op.c: the operation codec (op_decode), which reads what other
 * replicas multicast. Any input must decode or be refused without a crash or
 * a leak; what decodes must encode back to the very same bytes, and a
 * message's client id (op_client_id, read from its tags) is one of the form
 * it promises or none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat/op.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct op *ops;
	size_t n;
	if (op_decode(data, size, &ops, &n) < 0)
		return 0;
	struct op_buf again = {0};
	op_encode(&again, ops, n);
	if (again.len != size || memcmp(again.data, data, size) != 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		char msgid[OP_MSGID_MAX];
		struct op_stream s;
		uint64_t seq;
		op_msgid(&ops[i], msgid, sizeof msgid);
		if (op_msgid_parse(msgid, &s, &seq) < 0 || seq != ops[i].seq || op_stream_cmp(&s, &ops[i].stream) != 0)
			abort();
		char cid[OP_CID_MAX];
		int has = op_client_id(&ops[i], cid);
		size_t len = strlen(cid);
		if (has ? len == 0 || len >= OP_CID_MAX ||
				  strspn(cid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != len
			: len != 0)
			abort();
	}
	op_buf_free(&again);
	op_free_array(ops, n);
	return 0;
}
