/*
 * test_utf8.c: UTF-8 checks (src/common/utf8.c): the valid forms at the edge
 * of each range, overlongs, surrogates, beyond U+10FFFF, truncated and stray
 * bytes; code points read back.
 */
#include "check.h"

#include "common/utf8.h"

TEST(utf8)
{
	/* Valid: ASCII, 2-, 3- and 4-byte forms, the edges of each range. */
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("plain", 5));
	CHECK(utf8_valid("\xc3\xa9", 2));                 /* U+00E9 */
	CHECK(utf8_valid("\xc2\x80", 2));                 /* U+0080 */
	CHECK(utf8_valid("\xdf\xbf", 2));                 /* U+07FF */
	CHECK(utf8_valid("\xe0\xa0\x80", 3));             /* U+0800 */
	CHECK(utf8_valid("\xe2\x82\xac", 3));             /* U+20AC */
	CHECK(utf8_valid("\xed\x9f\xbf", 3));             /* U+D7FF */
	CHECK(utf8_valid("\xee\x80\x80", 3));             /* U+E000 */
	CHECK(utf8_valid("\xef\xbf\xbf", 3));             /* U+FFFF */
	CHECK(utf8_valid("\xf0\x90\x80\x80", 4));         /* U+10000 */
	CHECK(utf8_valid("\xf0\x9f\x98\x80", 4));         /* U+1F600 */
	CHECK(utf8_valid("\xf4\x8f\xbf\xbf", 4));         /* U+10FFFF */
	CHECK(utf8_valid("a\0b", 3));                     /* NUL is UTF-8 */

	/* Overlong forms. */
	CHECK(!utf8_valid("\xc0\xaf", 2));
	CHECK(!utf8_valid("\xc1\xbf", 2));
	CHECK(!utf8_valid("\xe0\x80\xaf", 3));
	CHECK(!utf8_valid("\xe0\x9f\xbf", 3));
	CHECK(!utf8_valid("\xf0\x80\x80\xaf", 4));
	CHECK(!utf8_valid("\xf0\x8f\xbf\xbf", 4));
	/* Surrogates. */
	CHECK(!utf8_valid("\xed\xa0\x80", 3));            /* U+D800 */
	CHECK(!utf8_valid("\xed\xbf\xbf", 3));            /* U+DFFF */
	/* Beyond U+10FFFF. */
	CHECK(!utf8_valid("\xf4\x90\x80\x80", 4));        /* U+110000 */
	CHECK(!utf8_valid("\xf5\x80\x80\x80", 4));
	CHECK(!utf8_valid("\xff", 1));
	CHECK(!utf8_valid("\xfe", 1));
	/* Truncated and stray bytes. */
	CHECK(!utf8_valid("\xc3", 1));
	CHECK(!utf8_valid("\xe2\x82", 2));
	CHECK(!utf8_valid("\xf0\x9f\x98", 3));
	CHECK(!utf8_valid("\xe2\x82\xac", 2));            /* cut by len */
	CHECK(!utf8_valid("\x80", 1));
	CHECK(!utf8_valid("a\xbfz", 3));
	CHECK(!utf8_valid("\xc3\x28", 2));                /* bad continuation */
	CHECK(!utf8_valid("\xe2\x28\xa1", 3));
	CHECK(!utf8_valid("\xf0\x9f\x98\x28", 4));
}

TEST(next_code_point)
{
	const unsigned char *p = (const unsigned char *)"a\xc3\xa9\xe2\x80\xae\xf0\x9f\x98\x80";
	CHECK_EQ_INT(utf8_next(&p), 'a');
	CHECK_EQ_INT(utf8_next(&p), 0xe9);
	CHECK_EQ_INT(utf8_next(&p), 0x202e);
	CHECK_EQ_INT(utf8_next(&p), 0x1f600);
	CHECK_EQ_INT(*p, 0);
}

int main(void)
{
	RUN(utf8);
	RUN(next_code_point);
	return CHECK_DONE();
}
