/*
 * secret.h - read a secret (password, key, PEM) from a file, and wipe it.
 *
 * One reader for every secret file, so each gets the same care: no stdio
 * buffer left holding a copy, a size limit instead of a silent cut, errors
 * that name the file, and explicit_bzero() before free().
 */
#ifndef SSERELAY_SECRET_H
#define SSERELAY_SECRET_H

#include <stddef.h>

/*
 * The whole file at path, in a malloc'd buffer with a NUL after the last
 * byte (the secret itself may hold NULs: *lenp, if not NULL, gets its
 * length).  A file larger than maxlen bytes or empty is refused, never
 * cut.  NULL with err set to "PATH: reason"; the caller puts the option's
 * name in front.  Free the buffer with secret_free().
 */
char	*secret_read_file(const char *path, size_t maxlen, size_t *lenp,
	    char *err, size_t errlen);
/* Wipe len bytes of s and the NUL after them, then free s.  NULL is ok. */
void	 secret_free(char *s, size_t len);

#endif
