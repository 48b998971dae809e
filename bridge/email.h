/*
 * email.h - the one form of an e-mail address that the bridge compares and
 * stores: trimmed, Unicode lower case (NFC), so that "Мария@Пример.рф" typed
 * on a phone and "мария@пример.рф" set by the site are the same person.
 */
#ifndef BR_EMAIL_H
#define BR_EMAIL_H

#include <stddef.h>

/*
 * The normal form of the len bytes at s (UTF-8), newly allocated; NULL
 * when it is not an address (empty after trimming, no '@', or not UTF-8).
 */
char *br_email_normalize(const char *s, size_t len);

#endif
