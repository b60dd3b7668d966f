/*
 * caps.c: the name of every IRCv3 capability chorus speaks.
 */
#include "caps.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned bit;
} caps[] = {
	{"message-tags", CAP_MESSAGE_TAGS},
	{"server-time", CAP_SERVER_TIME},
	{"echo-message", CAP_ECHO_MESSAGE},
	{"batch", CAP_BATCH},
	{"labeled-response", CAP_LABELED_RESPONSE},
	{"draft/chathistory", CAP_CHATHISTORY},
	{"setname", CAP_SETNAME},
};
#define NCAPS (sizeof caps / sizeof caps[0])

unsigned irc_cap_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < NCAPS; i++)
		if (strlen(caps[i].name) == len && strncasecmp(caps[i].name, name, len) == 0)
			return caps[i].bit;
	return 0;
}

void irc_cap_list(struct buf *b, unsigned mask)
{
	for (size_t i = 0; i < NCAPS; i++) {
		if (!(mask & caps[i].bit))
			continue;
		if (b->len)
			buf_putc(b, ' ');
		buf_puts(b, caps[i].name);
	}
	if (!b->len)
		buf_puts(b, "");
}
