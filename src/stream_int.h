/*
 * stream_int.h - what the stream's files share (stream.h is the stream
 * to the rest): stream.c (the ring, queuing, wakes), stream_recover.c
 * (--history redis: what comes while its history is read), stream_out.c
 * (the writer's side).
 *
 * THREADS: both with s->lock held (see stream.h).
 */
#ifndef SSERELAY_STREAM_INT_H
#define SSERELAY_STREAM_INT_H

#include "stream.h"

/* 1 if the writer must be told (and now it is due) */
int		 stream_want_wake(struct stream *);
/*
 * f to the ring, unless it is a durable message at or before the
 * channel's queued position (a duplicate), or a position set, which
 * moves it.
 */
enum stream_push_result stream_queue(struct stream *, struct frame *);

#endif
