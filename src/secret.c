/*
 * secret.c - read a secret from a file, wipe it when done.
 *
 * read(2) straight into the caller's buffer: with stdio the bytes would
 * also sit in the FILE's own buffer, which fclose() frees unwiped.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"

/* "64 KiB", "1 MiB", "100 bytes" */
static void
secret_size_text(size_t n, char *buf, size_t len)
{
	if (n >= (1 << 20) && n % (1 << 20) == 0)
		snprintf(buf, len, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%zu KiB", n >> 10);
	else
		snprintf(buf, len, "%zu bytes", n);
}

char *
secret_read_file(const char *path, size_t maxlen, size_t *lenp, char *err,
    size_t errlen)
{
	char	*buf = NULL, size[32];
	size_t	 n = 0;
	ssize_t	 r;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	/* one byte more than allowed tells a file that is too large */
	if ((buf = malloc(maxlen + 2)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto bad;
	}
	while (n < maxlen + 1) {
		if ((r = read(fd, buf + n, maxlen + 1 - n)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto bad;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: empty file", path);
		goto bad;
	}
	if (n > maxlen) {
		secret_size_text(maxlen, size, sizeof(size));
		snprintf(err, errlen, "%s: larger than %s", path, size);
		goto bad;
	}
	close(fd);
	buf[n] = '\0';
	if (lenp != NULL)
		*lenp = n;
	return buf;
bad:
	close(fd);
	secret_free(buf, n);
	return NULL;
}

void
secret_free(char *s, size_t len)
{
	if (s == NULL)
		return;
	explicit_bzero(s, len + 1);
	free(s);
}
