/*
 * test_log.c: a log line is key=value: ts, the tag's fields, level, and the
 * message quoted with ", \ and control characters escaped, so one line is
 * one record whatever the message holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"

TEST(a_line_is_key_value_and_escaped)
{
	char path[] = "/tmp/chorus-test-log-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *saved = fdopen(dup(fileno(stderr)), "w");
	CHECK(freopen(path, "w", stderr) != NULL);
	log_set_tag("replica=7 server=r7.chorus");
	log_set_level(LOG_DEBUG);
	log_warn("a \"quoted\" name, a back\\slash,\na new line and a \x01");
	log_debug("plain");
	fflush(stderr);
	FILE *f = fopen(path, "r");
	char line[512], second[512];
	CHECK(f && fgets(line, sizeof line, f) && fgets(second, sizeof second, f));
	const char *want = " replica=7 server=r7.chorus level=warn msg=\"a \\\"quoted\\\" name, a back\\\\slash,\\n"
			   "a new line and a \\x01\"\n";
	CHECK(strncmp(line, "ts=", 3) == 0 && strlen(line) > 27 && line[26] == 'Z');
	CHECK_EQ_STR(line + 27, want);
	CHECK_EQ_STR(second + 27, " replica=7 server=r7.chorus level=debug msg=\"plain\"\n");
	fclose(f);
	dup2(fileno(saved), fileno(stderr));
	fclose(saved);
	close(fd);
	unlink(path);
}

int main(void)
{
	RUN(a_line_is_key_value_and_escaped);
	return CHECK_DONE();
}
