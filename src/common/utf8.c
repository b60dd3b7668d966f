/*
 * utf8.c: UTF-8 (RFC 3629) checks for text from clients and peers.
 */
#include "utf8.h"

/*
 * Length of the UTF-8 sequence starting at s[0..avail), 0 if it is not a
 * valid one. The ranges allowed for the second byte after each lead byte are
 * those of RFC 3629 section 4, which leave out overlong forms, the UTF-16
 * surrogates (U+D800..U+DFFF) and everything above U+10FFFF.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0; /* continuation byte, C0/C1 (always overlong), F5..FF */
	if (c == 0xE0)
		lo = 0xA0; /* below: overlong */
	else if (c == 0xED)
		hi = 0x9F; /* above: surrogates */
	else if (c == 0xF0)
		lo = 0x90; /* below: overlong */
	else if (c == 0xF4)
		hi = 0x8F; /* above: past U+10FFFF */
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

uint32_t utf8_next(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;
	size_t n = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	cp = n == 1 ? s[0] : n == 2 ? s[0] & 0x1f : n == 3 ? s[0] & 0x0f : s[0] & 0x07;
	for (size_t i = 1; i < n && s[i]; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	*p = s + n;
	return cp;
}
