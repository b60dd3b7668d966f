/*
 * caps.c: the name of every IRCv3 capability chorus speaks.
 */
#include "caps.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	unsigned bit;
	const char *value; /* shown by CAP LS 302, or NULL */
} caps[] = {
	{"message-tags", CAP_MESSAGE_TAGS, NULL},
	{"server-time", CAP_SERVER_TIME, NULL},
	{"echo-message", CAP_ECHO_MESSAGE, NULL},
	{"batch", CAP_BATCH, NULL},
	{"labeled-response", CAP_LABELED_RESPONSE, NULL},
	{"draft/chathistory", CAP_CHATHISTORY, NULL},
	{"setname", CAP_SETNAME, NULL},
	{"sasl", CAP_SASL, "PLAIN,SCRAM-SHA-256"},
	{"draft/account-registration", CAP_ACCOUNT_REGISTRATION, "before-connect"},
	{"account-tag", CAP_ACCOUNT_TAG, NULL},
	{"account-notify", CAP_ACCOUNT_NOTIFY, NULL},
	{"extended-join", CAP_EXTENDED_JOIN, NULL},
	{"invite-notify", CAP_INVITE_NOTIFY, NULL},
	{"multi-prefix", CAP_MULTI_PREFIX, NULL},
	{"userhost-in-names", CAP_USERHOST_IN_NAMES, NULL},
	{"away-notify", CAP_AWAY_NOTIFY, NULL},
	{"extended-monitor", CAP_EXTENDED_MONITOR, NULL},
	{"cap-notify", CAP_CAP_NOTIFY, NULL},
	{"chghost", CAP_CHGHOST, NULL}, /* a user's user@host never changes here */
};
#define NCAPS (sizeof caps / sizeof caps[0])

unsigned irc_cap_bit(const char *name, size_t len)
{
	for (size_t i = 0; i < NCAPS; i++)
		if (strlen(caps[i].name) == len && strncasecmp(caps[i].name, name, len) == 0)
			return caps[i].bit;
	return 0;
}

void irc_cap_list(struct buf *b, unsigned mask, int values)
{
	for (size_t i = 0; i < NCAPS; i++) {
		if (!(mask & caps[i].bit))
			continue;
		if (b->len)
			buf_putc(b, ' ');
		buf_puts(b, caps[i].name);
		if (values && caps[i].value) {
			buf_putc(b, '=');
			buf_puts(b, caps[i].value);
		}
	}
	if (!b->len)
		buf_puts(b, "");
}
