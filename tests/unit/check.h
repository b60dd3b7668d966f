/*
 * check.h: the unit tests' tiny harness. A test file defines cases with
 * TEST(name) and lists them in main with RUN(name); CHECK failures print the
 * place and count; main returns non-zero if any failed.
 */
#ifndef CHORUS_CHECK_H
#define CHORUS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_cases;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                             \
		}                                                                     \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                            \
	do {                                                                          \
		long long check_a = (long long)(a), check_b = (long long)(b);         \
		if (check_a != check_b) {                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a, check_b);        \
			check_failures++;                                             \
		}                                                                     \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                            \
	do {                                                                          \
		const char *check_a = (a), *check_b = (b);                            \
		if (!check_a || !check_b || strcmp(check_a, check_b) != 0) {          \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
				__FILE__, __LINE__, #a, #b, check_a ? check_a : "(null)", \
				check_b ? check_b : "(null)");                        \
			check_failures++;                                             \
		}                                                                     \
	} while (0)

#define TEST(name) static void test_##name(void)
#define RUN(name)                                                                     \
	do {                                                                          \
		int check_before = check_failures;                                    \
		check_cases++;                                                        \
		test_##name();                                                        \
		fprintf(stderr, "%s %s\n", check_failures == check_before ? "ok  " : "FAIL", #name); \
	} while (0)
#define CHECK_DONE() (fprintf(stderr, "%d cases, %d failed checks\n", check_cases, check_failures), check_failures != 0)

#endif
