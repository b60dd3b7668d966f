/*
 * caps.h: the IRCv3 capabilities chorus speaks, one table for the server
 * (what it offers and accepts) and the client (what it asks for).
 */
#ifndef CHORUS_CAPS_H
#define CHORUS_CAPS_H

#include <stddef.h>

#include "common/buf.h"

enum irc_cap {
	CAP_MESSAGE_TAGS = 1 << 0,
	CAP_SERVER_TIME = 1 << 1,
	CAP_ECHO_MESSAGE = 1 << 2,
	CAP_BATCH = 1 << 3,
	CAP_LABELED_RESPONSE = 1 << 4,
	CAP_CHATHISTORY = 1 << 5,
	CAP_SETNAME = 1 << 6,
	CAP_SASL = 1 << 7,
	CAP_ACCOUNT_REGISTRATION = 1 << 8,
	CAP_ACCOUNT_TAG = 1 << 9,
	CAP_ACCOUNT_NOTIFY = 1 << 10,
	CAP_EXTENDED_JOIN = 1 << 11,
	CAP_INVITE_NOTIFY = 1 << 12,
	CAP_MULTI_PREFIX = 1 << 13,
	CAP_USERHOST_IN_NAMES = 1 << 14,
	CAP_AWAY_NOTIFY = 1 << 15,
	CAP_EXTENDED_MONITOR = 1 << 16,
	CAP_CAP_NOTIFY = 1 << 17,
	CAP_CHGHOST = 1 << 18,
};

#define IRC_CAPS_ALL 0x7ffffu
/* The capabilities that only make sense with accounts. */
#define IRC_CAPS_ACCOUNTS (CAP_SASL | CAP_ACCOUNT_REGISTRATION)

/* The bit of the capability named name[0..len) (any case), or 0. */
unsigned irc_cap_bit(const char *name, size_t len);

/* Appends the names of the capabilities in mask to b, space-separated, in
 * table order (b's data is "" when mask is empty); with values, as CAP LS
 * 302 shows them ("sasl=PLAIN,SCRAM-SHA-256"). */
void irc_cap_list(struct buf *b, unsigned mask, int values);

#endif
