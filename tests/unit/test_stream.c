/*
 * test_stream.c - a stream's wire form (stream.h), as its writer takes it
 * out with stream_out and stream_sent: the head as it is, each frame a
 * chunk of its own (HTTP/1.1) or as it is (HTTP/1.0), the final frame and
 * the last chunk; every split of the bytes between writes, the frames
 * held by reference (no copy), the ids of --history redis stamped as the
 * frames go and taken back for frames not written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "position.h"
#include "sse.h"
#include "stats.h"
#include "stream.h"
#include "tap.h"

#define L(s)	(s), (sizeof(s) - 1)

static struct frame *
mk(const char *s)
{
	struct frame *f = frame_new(s, strlen(s));

	if (f == NULL) {
		printf("Bail out! frame_new\n");
		exit(1);
	}
	return f;
}

static unsigned
refs(struct frame *f)
{
	return atomic_load(&f->refs);
}

/* a chunk of the body as the writer must write it */
static void
chunk(struct sbuf *b, const char *id, size_t idlen, const struct frame *f)
{
	sbuf_printf(b, "%zx\r\n", idlen + f->len);
	sbuf_add(b, id, idlen);
	sbuf_add(b, f->data, f->len);
	sbuf_add(b, "\r\n", 2);
}

/*
 * Take everything out of s, each write taking at most `step` bytes of
 * what stream_out offers (step 0: all of it); append to got.  Returns
 * the last stream_out result (0: nothing more now, -1: the body ended).
 */
static int
drain(struct stream *s, struct stream_out *o, size_t step, struct sbuf *got,
    int *above)
{
	size_t	 n, take, i, left;
	int	 niov, calls;

	for (calls = 0; calls < 1000000; calls++) {
		if ((niov = stream_out(s, o, 1 << 20)) <= 0)
			return niov;
		n = step == 0 || step > o->bytes ? o->bytes : step;
		for (i = 0, left = n; i < (size_t)niov && left > 0; i++) {
			take = o->iov[i].iov_len < left ? o->iov[i].iov_len :
			    left;
			sbuf_add(got, o->iov[i].iov_base, take);
			left -= take;
		}
		*above += n > o->bytes;
		stream_sent(s, o, n);
	}
	return -2;
}

static void
test_chunked(struct stream_out *o)
{
	struct stream *s;
	struct frame *head, *hello, *a, *b, *fin;
	struct sbuf want, got;
	size_t step;
	int above = 0, bad = 0, ends = 0;

	head = mk("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	hello = mk("retry: 3000\n: sserelay\n\n");
	a = mk("id: 1\ndata: one\n\n");
	b = mk("id: 2\ndata: a longer second event, to split\n\n");
	fin = mk("retry: 5000\n\n");
	sbuf_init(&want);
	sbuf_init(&got);
	sbuf_add(&want, head->data, head->len);
	chunk(&want, "", 0, hello);
	chunk(&want, "", 0, a);
	chunk(&want, "", 0, b);
	chunk(&want, "", 0, a);
	chunk(&want, "", 0, fin);
	sbuf_addstr(&want, "0\r\n\r\n");

	/* every write size from 1 byte to all of it */
	for (step = 0; step <= want.len; step++) {
		s = stream_new(8, 1, 0);
		s->chunked = 1;
		stream_set_head(s, head);
		stream_push(s, hello);
		stream_push(s, a);
		stream_push(s, b);
		stream_push(s, a);
		stream_close(s, fin);
		sbuf_reset(&got);
		ends += drain(s, o, step, &got, &above) == -1;
		if (got.len != want.len || memcmp(got.data, want.data,
		    want.len) != 0) {
			if (bad++ == 0)
				is_mem(got.data, got.len, want.data, want.len,
				    "writes of %zu bytes: the wire form", step);
		}
		stream_free(s);
	}
	is_int(bad, 0, "chunked: head, one chunk per frame, final, last-chunk, "
	    "for every split of the bytes into writes");
	is_int(ends, (int)want.len + 1, "and every time the body ends (-1)");
	is_int(above, 0, "never more taken than offered");
	is_int(refs(a) + refs(b) + refs(head) + refs(fin), 4,
	    "every frame's reference let go of");

	/* live: nothing more now is 0, a push brings it back */
	s = stream_new(8, 1, 0);
	s->chunked = 1;
	stream_set_head(s, head);
	sbuf_reset(&got);
	is_int(drain(s, o, 0, &got, &above), 0, "open: 0 when all is written");
	is_mem(got.data, got.len, head->data, head->len, "the head first");
	stream_attach(s, 1);
	sbuf_reset(&got);
	is_int(drain(s, o, 0, &got, &above), 0, "attached: 0 again");
	is_int(stream_push(s, a), STREAM_PUSH_WAKE,
	    "a push after a 0: WAKE (the writer went idle)");
	sbuf_reset(&want);
	chunk(&want, "", 0, a);
	sbuf_reset(&got);
	drain(s, o, 0, &got, &above);
	is_mem(got.data, got.len, want.data, want.len, "then its chunk");

	/* a frame half written stays pinned, goes on from where it was */
	frame_ref(b);
	stream_push(s, b);
	is_int(stream_out(s, o, 1 << 20), 3, "one frame: 3 iovecs (header, "
	    "bytes, CRLF)");
	ok(o->iov[1].iov_base == b->data, "the frame's own bytes, not a copy");
	stream_sent(s, o, 7);
	is_int(refs(b), 3, "half written: still referenced (ring's, now the "
	    "stream's, and ours twice)");
	ok(ring_count(&s->ring) == 0 && s->cur == b, "out of the ring, kept "
	    "as the frame being written");
	sbuf_reset(&got);
	drain(s, o, 0, &got, &above);
	sbuf_reset(&want);
	chunk(&want, "", 0, b);
	is_mem(got.data, got.len, want.data + 7, want.len - 7,
	    "the rest of its chunk from byte 7");
	is_int(refs(b), 2, "written: the stream let go of it");
	frame_unref(b);

	/* stream_sent(0): nothing moves */
	stream_push(s, a);
	stream_out(s, o, 1 << 20);
	stream_sent(s, o, 0);
	is_int(ring_count(&s->ring), 1, "a write of 0 bytes: still queued");
	stream_close(s, NULL);
	sbuf_reset(&got);
	is_int(drain(s, o, 0, &got, &above), -1, "closed without a final: ends");
	sbuf_reset(&want);
	chunk(&want, "", 0, a);
	sbuf_addstr(&want, "0\r\n\r\n");
	is_mem(got.data, got.len, want.data, want.len,
	    "what was queued, then the last-chunk");
	stream_free(s);

	frame_unref(head);
	frame_unref(hello);
	frame_unref(a);
	frame_unref(b);
	frame_unref(fin);
	sbuf_free(&want);
	sbuf_free(&got);
}

static void
test_http10(struct stream_out *o)
{
	struct stream *s;
	struct frame *head, *a, *fin;
	struct sbuf got;
	int above = 0;

	head = mk("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	a = mk("data: one\n\n");
	fin = mk("retry: 5000\n\n");
	sbuf_init(&got);
	s = stream_new(8, 1, 0);
	stream_set_head(s, head);
	stream_push(s, a);
	stream_close(s, fin);
	is_int(drain(s, o, 3, &got, &above), -1, "HTTP/1.0: the body ends");
	is_mem(got.data, got.len,
	    L("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
	    "data: one\n\nretry: 5000\n\n"),
	    "HTTP/1.0: no chunks, no last-chunk: the body ends at the close");
	stream_free(s);
	frame_unref(head);
	frame_unref(a);
	frame_unref(fin);
	sbuf_free(&got);
}

/* --history redis: ids stamped as frames are written */
static void
test_stamps(struct stream_out *o)
{
	static char ch[2];		/* stand-ins for the hub's channels */
	struct stream *s;
	struct frame *m[6], *reset;
	struct position pos[2];
	struct sbuf want, got;
	char id[POSITION_ID_MAX(2) + 8];
	size_t step, n;
	int i, bad = 0, above = 0;

	memset(pos, 0, sizeof(pos));
	sbuf_init(&want);
	sbuf_init(&got);
	for (i = 0; i < 6; i++) {
		char text[32];

		snprintf(text, sizeof(text), "data: m%d\n\n", i);
		m[i] = mk(text);
		m[i]->message = 1;
		m[i]->stamp = FRAME_STAMP_MESSAGE;
		m[i]->chan = &ch[i % 2];
		m[i]->epoch = 77;
		m[i]->offset = 10 + i;
	}
	reset = mk("event: reset\ndata: {\"reason\":\"x\"}\n\n");
	reset->stamp = FRAME_STAMP_ID;
	/* what the client must see: each id says every channel so far */
	for (i = 0; i < 6; i++) {
		pos[i % 2].epoch = 77;
		pos[i % 2].offset = 10 + i;
		pos[i % 2].known = 1;
		memcpy(id, "id: ", 4);
		n = 4 + position_encode(id + 4, POSITION_ID_MAX(2), 99, pos, 2);
		id[n++] = '\n';
		chunk(&want, id, n, m[i]);
		if (i == 2)
			chunk(&want, id, n, reset);
	}

	for (step = 1; step <= want.len; step++) {
		s = stream_new(16, 2, 1);
		s->chunked = 1;
		s->nsubs = 2;
		s->fp = 99;
		s->subs[0].channel = (struct hub_channel *)&ch[0];
		s->subs[1].channel = (struct hub_channel *)&ch[1];
		for (i = 0; i < 6; i++) {
			stream_push(s, m[i]);
			if (i == 2)
				stream_push(s, reset);
		}
		sbuf_reset(&got);
		drain(s, o, step, &got, &above);
		if (got.len != want.len || memcmp(got.data, want.data,
		    want.len) != 0) {
			if (bad++ == 0)
				is_mem(got.data, got.len, want.data, want.len,
				    "stamps, writes of %zu bytes", step);
		}
		if (step == 1)
			ok(s->pos[0].offset == 14 && s->pos[1].offset == 15,
			    "after it all: the positions of the last frame "
			    "of each channel");
		stream_free(s);
	}
	is_int(bad, 0, "every frame's id line says the positions up to it, "
	    "for every split of the bytes (stamps of frames not written are "
	    "taken back)");
	is_int(above, 0, "never more taken than offered");
	for (i = 0; i < 6; i++)
		frame_unref(m[i]);
	frame_unref(reset);
	sbuf_free(&want);
	sbuf_free(&got);
}

/* many frames: a stream_out call gives out a bounded share */
static void
test_bounds(struct stream_out *o)
{
	struct stream *s;
	struct frame *a;
	struct sbuf got, want;
	int i, above = 0, niov;

	a = mk("data: x\n\n");
	sbuf_init(&got);
	sbuf_init(&want);
	s = stream_new(1000, 1, 0);
	s->chunked = 1;
	for (i = 0; i < 1000; i++) {
		stream_push(s, a);
		chunk(&want, "", 0, a);
	}
	niov = stream_out(s, o, 1 << 20);
	ok(niov <= STREAM_OUT_IOV && o->nfr <= STREAM_OUT_FRAMES,
	    "1000 frames: one call gives at most %d frames in %d iovecs",
	    STREAM_OUT_FRAMES, STREAM_OUT_IOV);
	stream_sent(s, o, 0);
	niov = stream_out(s, o, 100);
	ok(o->bytes >= 100 && o->nfr < 20, "a byte bound: stops once over it "
	    "(%zu bytes, %zu frames)", o->bytes, o->nfr);
	stream_sent(s, o, 0);
	drain(s, o, 0, &got, &above);
	is_mem(got.data, got.len, want.data, want.len, "all 1000, in order");
	stream_free(s);
	frame_unref(a);
	sbuf_free(&got);
	sbuf_free(&want);
}

int
main(void)
{
	struct stream_out o;

	if (stream_out_init(&o) == -1) {
		printf("Bail out! stream_out_init\n");
		return 1;
	}
	test_chunked(&o);
	test_http10(&o);
	test_stamps(&o);
	test_bounds(&o);
	stream_out_free(&o);
	return done_testing();
}
