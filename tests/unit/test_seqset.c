/*
 * test_seqset.c: the set of a stream's seqs (src/common/seqset.c): in order,
 * early seqs held above the run and folded in when the gap fills, duplicates
 * and seq 0 refused.
 */
#include "check.h"

#include "common/seqset.h"

TEST(in_order)
{
	struct seqset s = {0};
	CHECK(!seqset_has(&s, 1));
	for (uint64_t q = 1; q <= 1000; q++)
		CHECK_EQ_INT(seqset_add(&s, q), 1);
	CHECK_EQ_INT(s.hi, 1000);
	CHECK_EQ_INT(s.nabove, 0);
	CHECK(seqset_has(&s, 1) && seqset_has(&s, 1000) && !seqset_has(&s, 1001));
	CHECK_EQ_INT(seqset_add(&s, 500), 0);
	seqset_free(&s);
}

TEST(early_seqs_fold_in)
{
	struct seqset s = {0};
	CHECK_EQ_INT(seqset_add(&s, 5), 1);
	CHECK_EQ_INT(seqset_add(&s, 3), 1);
	CHECK_EQ_INT(seqset_add(&s, 4), 1);
	CHECK_EQ_INT(seqset_add(&s, 9), 1);
	CHECK_EQ_INT(seqset_add(&s, 4), 0);
	CHECK_EQ_INT(s.hi, 0);
	CHECK_EQ_INT(s.nabove, 4);
	CHECK(seqset_has(&s, 3) && seqset_has(&s, 9) && !seqset_has(&s, 2) && !seqset_has(&s, 6));
	CHECK_EQ_INT(seqset_add(&s, 1), 1);
	CHECK_EQ_INT(s.hi, 1);
	CHECK_EQ_INT(seqset_add(&s, 2), 1);
	CHECK_EQ_INT(s.hi, 5); /* 1..5 now a run; 9 still above */
	CHECK_EQ_INT(s.nabove, 1);
	CHECK(seqset_has(&s, 9) && !seqset_has(&s, 8));
	for (uint64_t q = 6; q <= 8; q++)
		CHECK_EQ_INT(seqset_add(&s, q), 1);
	CHECK_EQ_INT(s.hi, 9);
	CHECK_EQ_INT(s.nabove, 0);
	seqset_free(&s);
	CHECK_EQ_INT(s.hi, 0);
}

TEST(many_early_in_reverse)
{
	struct seqset s = {0};
	for (uint64_t q = 200; q >= 2; q--)
		CHECK_EQ_INT(seqset_add(&s, q), 1);
	CHECK_EQ_INT(s.nabove, 199);
	for (size_t i = 1; i < s.nabove; i++)
		CHECK(s.above[i - 1] < s.above[i]);
	CHECK_EQ_INT(seqset_add(&s, 1), 1);
	CHECK_EQ_INT(s.hi, 200);
	CHECK_EQ_INT(s.nabove, 0);
	seqset_free(&s);
}

TEST(zero_is_never_in)
{
	struct seqset s = {0};
	CHECK_EQ_INT(seqset_add(&s, 0), 0);
	CHECK(!seqset_has(&s, 0));
	seqset_add(&s, 1);
	CHECK(!seqset_has(&s, 0));
	seqset_free(&s);
}

int main(void)
{
	RUN(in_order);
	RUN(early_seqs_fold_in);
	RUN(many_early_in_reverse);
	RUN(zero_is_never_in);
	return CHECK_DONE();
}
