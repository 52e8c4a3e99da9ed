/*
 * hub_revoke.c - ending the open streams a revocation covers.  See
 * hub_revoke.h.
 *
 * THREADS: the control thread calls it; everything is done under the
 * hub lock (hub.h), so a stream cannot leave while it is being closed.
 * A stream is only marked closing here with its final frame; its writer
 * writes what it has queued, the frame, and ends the body (stream.h).
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hub_int.h"
#include "hub_revoke.h"
#include "stream.h"

struct frame *
hub_revoke_frame(const char *channel, size_t len)
{
	static const char	 head[] = "event: revoked\ndata: ";
	struct frame		*f;
	char			*buf;
	size_t			 n = sizeof(head) - 1, i, w;

	if ((buf = malloc(n + len + 2)) == NULL)
		return NULL;
	memcpy(buf, head, n);
	/* channel names have no line breaks (channel.h); be sure anyway */
	for (i = 0, w = n; i < len; i++)
		if (channel[i] != '\r' && channel[i] != '\n')
			buf[w++] = channel[i];
	buf[w++] = '\n';
	buf[w++] = '\n';
	f = frame_new(buf, w);
	free(buf);
	return f;
}

size_t
hub_revoke(struct hub *h, const char *channel, size_t len, time_t since_s)
{
	struct hub_channel	*c;
	struct hub_sub		*sub;
	struct stream		*s;
	struct frame		*f;
	size_t			 n = 0;

	if ((f = hub_revoke_frame(channel, len)) == NULL)
		return 0;
	pthread_mutex_lock(&h->lock);
	if ((c = hub_find(h, channel, len)) != NULL) {
		LIST_FOREACH(sub, &c->subs, entry) {
			s = sub->stream;
			if (s->iat >= since_s || stream_closing(s))
				continue;
			if (stream_close(s, f))
				hub_queue_wake(h, s);
			n++;
		}
		hub_wake(h);
	}
	pthread_mutex_unlock(&h->lock);
	frame_unref(f);
	return n;
}
