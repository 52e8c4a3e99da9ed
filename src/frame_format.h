/*
 * frame_format.h - how a message's payload becomes an event's data
 * (--format): what the configuration chooses and frame.c encodes, apart
 * so that the configuration needs nothing else of frame.h.
 */
#ifndef SSERELAY_FRAME_FORMAT_H
#define SSERELAY_FRAME_FORMAT_H

enum frame_format {
	FRAME_FORMAT_JSON = 0,	/* {"channel":...,"data":...} on one line */
	FRAME_FORMAT_RAW,	/* payload bytes, one data: line per line */
};

#endif
