/*
 * stream_out.c - the writer's side of a stream: what is written next, as
 * iovecs, and what was written.  Thread and lock rules are in stream.h.
 *
 * DESIGN
 * The wire form of a frame is its bytes, after its id line when the
 * stream has positions (--history redis), and, in a chunked body, framed
 * as one chunk: "<hex size>\r\n", the bytes, "\r\n".  The head (the
 * response's status line and headers) goes out first and as it is; the
 * last-chunk "0\r\n\r\n" last.  stream_out() points iovecs at the frames
 * themselves, which the ring keeps referenced until stream_sent() lets go
 * of the ones written whole; only the small pieces (chunk headers, id
 * lines) are written into the caller's scratch.  A frame half written
 * becomes cur, with its id line copied into the stream, and goes on from
 * its offset next time: the chunk header is the same text again.
 *
 * Stamping an id line moves the stream's position on that channel (the id
 * must say what the client has).  stream_out stamps every message frame
 * it gives out, noting each channel's position before, and stream_sent
 * puts back, newest first, those of the frames not written at all.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "stats.h"
#include "stream.h"
#include "util.h"

#define STREAM_CRLF		"\r\n"
#define STREAM_LAST_CHUNK	"0\r\n\r\n"
#define STREAM_LAST_CHUNK_LEN	5
#define STREAM_CHUNK_HDR_MAX	20	/* "%zx\r\n" */

int
stream_out_init(struct stream_out *o)
{
	memset(o, 0, sizeof(*o));
	/* room for every frame's chunk header and the longest id line */
	o->scratch_size = STREAM_OUT_FRAMES * (STREAM_CHUNK_HDR_MAX +
	    POSITION_ID_MAX(QUERY_CHANNELS_MAX) + 5);
	if ((o->scratch = malloc(o->scratch_size)) == NULL)
		return -1;
	return 0;
}

void
stream_out_free(struct stream_out *o)
{
	free(o->scratch);
	o->scratch = NULL;
}

/* add len bytes at p to the iovecs, less the first *skip of them */
static void
stream_out_add(struct stream_out *o, const void *p, size_t len, size_t *skip)
{
	if (*skip >= len) {
		*skip -= len;
		return;
	}
	o->iov[o->niov].iov_base = (char *)p + *skip;
	o->iov[o->niov].iov_len = len - *skip;
	o->bytes += len - *skip;
	o->niov++;
	*skip = 0;
}

/* a chunk header for size bytes into buf; its length */
static size_t
stream_chunk_header(char *buf, size_t size)
{
	return (size_t)snprintf(buf, STREAM_CHUNK_HDR_MAX, "%zx\r\n", size);
}

/*
 * The id line written before f (it updates the stream's positions first
 * when f is a message): its length in buf, 0 when f is written without
 * one.  *chan and *was say which position it moved, from what.
 */
static size_t
stream_stamp(struct stream *s, const struct frame *f, char *buf, int *chan,
    struct position *was)
{
	size_t	 n;
	int	 i;

	*chan = -1;
	if (f->stamp == FRAME_STAMP_NONE || s->pos == NULL)
		return 0;
	if ((f->stamp == FRAME_STAMP_MESSAGE || f->stamp == FRAME_STAMP_SET) &&
	    (i = stream_channel(s, f)) != -1) {
		*chan = i;
		*was = s->pos[i];
		s->pos[i].epoch = f->epoch;
		s->pos[i].offset = f->offset;
		s->pos[i].known = 1;
	}
	if (f->stamp == FRAME_STAMP_SET)
		return 0;		/* no bytes of its own */
	memcpy(buf, "id: ", 4);
	n = 4 + position_encode(buf + 4, POSITION_ID_MAX(s->maxsubs), s->fp,
	    s->pos, s->nsubs);
	buf[n++] = '\n';
	return n;
}

/*
 * Add f's wire form (its chunk header, its id line, its bytes, its
 * chunk's end) to o, less its first skip bytes; hdr and id are its chunk
 * header and id line.  Returns its whole wire size.
 */
static size_t
stream_out_frame(struct stream *s, struct stream_out *o,
    const struct frame *f, const char *hdr, size_t hdrlen, const char *id,
    size_t idlen, size_t skip)
{
	stream_out_add(o, hdr, hdrlen, &skip);
	stream_out_add(o, id, idlen, &skip);
	stream_out_add(o, f->data, f->len, &skip);
	if (s->chunked)
		stream_out_add(o, STREAM_CRLF, 2, &skip);
	return hdrlen + idlen + f->len + (s->chunked ? 2 : 0);
}

/* with s->lock held: the next frame to give out after i of the ring's */
static struct frame *
stream_out_next(struct stream *s, size_t i, int *final)
{
	*final = 0;
	if (i < ring_count(&s->ring))
		return s->ring.slot[(s->ring.head + i) % s->ring.size];
	if (s->closing && s->final != NULL && i == ring_count(&s->ring)) {
		*final = 1;
		return s->final;
	}
	return NULL;
}

static void	stream_sent_locked(struct stream *, struct stream_out *, size_t);

/* stream_out with s->lock held */
static int
stream_out_locked(struct stream *s, struct stream_out *o, size_t max)
{
	struct stream_out_frame	*fr;
	struct frame		*f;
	char			 hdr[STREAM_CHUNK_HDR_MAX];
	size_t			 hl, idroom, i;
	int			 final, exhausted = 0;

	o->niov = 0;
	o->nfr = 0;
	o->closing = 0;
	o->bytes = o->curwire = o->term = 0;
	o->scratch_used = 0;
	o->pos_gen = s->pos_gen;
	o->closing = s->closing;
	if (s->ended)
		return -1;
	if (s->awaiting) {
		s->woken = 0;
		return 0;
	}
	if (s->cur != NULL) {
		if (s->cur_raw)
			o->curwire = s->cur->len;
		else {
			/* the same header as before: the same size */
			hl = s->chunked ? stream_chunk_header(hdr,
			    s->idlen + s->cur->len) : 0;
			if (hl > 0) {
				memcpy(o->scratch, hdr, hl);
				o->scratch_used = hl;
			}
			o->curwire = hl + s->idlen + s->cur->len +
			    (s->chunked ? 2 : 0);
		}
		if (s->cur_raw) {
			i = s->curoff;
			stream_out_add(o, s->cur->data, s->cur->len, &i);
		} else
			stream_out_frame(s, o, s->cur, o->scratch,
			    o->scratch_used, s->idline, s->idlen, s->curoff);
		o->curwire -= s->curoff;
	}
	idroom = s->pos != NULL ? POSITION_ID_MAX(s->maxsubs) + 5 : 0;
	for (i = 0; o->nfr < STREAM_OUT_FRAMES && o->bytes < max &&
	    o->niov + 4 <= STREAM_OUT_IOV && o->scratch_used +
	    STREAM_CHUNK_HDR_MAX + idroom <= o->scratch_size; i++) {
		if ((f = stream_out_next(s, i, &final)) == NULL) {
			exhausted = 1;
			break;
		}
		fr = &o->fr[o->nfr++];
		fr->final = final;
		fr->idat = o->scratch_used;
		fr->idlen = stream_stamp(s, f, o->scratch + fr->idat,
		    &fr->chan, &fr->was);
		if (f->stamp == FRAME_STAMP_SET) {
			/* a position, no bytes: never a (last-)chunk */
			fr->hdrlen = fr->wire = 0;
			continue;
		}
		o->scratch_used += fr->idlen;
		fr->hdrlen = s->chunked ? stream_chunk_header(o->scratch +
		    o->scratch_used, fr->idlen + f->len) : 0;
		fr->wire = stream_out_frame(s, o, f, o->scratch +
		    o->scratch_used, fr->hdrlen, o->scratch + fr->idat,
		    fr->idlen, 0);
		o->scratch_used += fr->hdrlen;
	}
	/* the body's end, once everything before it (final too) is in */
	if (s->closing && s->chunked && exhausted &&
	    o->niov < STREAM_OUT_IOV) {
		i = s->termoff;
		stream_out_add(o, STREAM_LAST_CHUNK, STREAM_LAST_CHUNK_LEN, &i);
		o->term = STREAM_LAST_CHUNK_LEN - s->termoff;
	}
	if (o->niov == 0) {
		if (s->closing && s->cur == NULL && ring_count(&s->ring) == 0 &&
		    s->final == NULL) {
			s->ended = 1;
			return -1;
		}
		s->woken = 0;		/* nothing to write: the next push wakes */
	}
	return o->niov;
}

int
stream_out(struct stream *s, struct stream_out *o, size_t max)
{
	int	 r;

	pthread_mutex_lock(&s->lock);
	/* positions to set and no bytes: taken at once, then look again */
	while ((r = stream_out_locked(s, o, max)) == 0 && o->nfr > 0)
		stream_sent_locked(s, o, 0);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* with s->lock held: a frame written whole */
static void
stream_done_frame(struct stream *s, struct stream_out *o, struct frame *f,
    uint64_t now_us)
{
	if (f->message)
		stats_local_delivered(&o->stats, now_us - f->recv_us,
		    f->recv_us >= s->opened_us);
	frame_unref(f);
}

static void
stream_sent_locked(struct stream *s, struct stream_out *o, size_t n)
{
	struct stream_out_frame	*fr;
	struct frame		*f;
	uint64_t		 now_us = 0;
	size_t			 k, left = n;

	o->stats.written += n;
	if (n > 0)
		now_us = util_now_us();
	if (o->curwire > 0) {
		if (left >= o->curwire) {
			left -= o->curwire;
			stream_done_frame(s, o, s->cur, now_us);
			s->cur = NULL;
			s->curoff = 0;
			s->cur_raw = 0;
		} else {
			s->curoff += left;
			left = 0;
		}
	}
	for (k = 0; k < o->nfr; k++) {
		fr = &o->fr[k];
		/* not begun (a position set, no bytes, never waits) */
		if (left == 0 && fr->wire > 0)
			break;
		if (fr->final) {
			f = s->final;
			s->final = NULL;
		} else
			f = ring_pop(&s->ring);
		if (left >= fr->wire) {
			left -= fr->wire;
			stream_done_frame(s, o, f, now_us);
			continue;
		}
		/* half written: it goes on from here next time */
		s->cur = f;
		s->cur_raw = 0;
		s->curoff = left;
		if (fr->idlen > 0)
			memcpy(s->idline, o->scratch + fr->idat, fr->idlen);
		s->idlen = fr->idlen;
		left = 0;
		k++;
		break;
	}
	/* the frames not written at all: their stamps taken back */
	if (o->pos_gen == s->pos_gen)
		while (o->nfr > k) {
			fr = &o->fr[--o->nfr];
			if (fr->chan != -1)
				s->pos[fr->chan] = fr->was;
		}
	if (o->term > 0)
		s->termoff += left;
	else if (left > 0)
		fatalx("stream_sent: %zu bytes more than stream_out gave", left);
	if (s->closing && s->cur == NULL && ring_count(&s->ring) == 0 &&
	    s->final == NULL && (!s->chunked ||
	    s->termoff == STREAM_LAST_CHUNK_LEN))
		s->ended = 1;
}

void
stream_sent(struct stream *s, struct stream_out *o, size_t n)
{
	pthread_mutex_lock(&s->lock);
	stream_sent_locked(s, o, n);
	pthread_mutex_unlock(&s->lock);
}

ssize_t
stream_read(struct stream *s, struct stream_out *o, char *buf, size_t max)
{
	size_t	 n = 0, take;
	int	 i, niov;

	if ((niov = stream_out(s, o, max)) <= 0)
		return niov;
	for (i = 0; i < niov && n < max; i++) {
		take = o->iov[i].iov_len;
		if (take > max - n)
			take = max - n;
		memcpy(buf + n, o->iov[i].iov_base, take);
		n += take;
	}
	stream_sent(s, o, n);
	return (ssize_t)n;
}
