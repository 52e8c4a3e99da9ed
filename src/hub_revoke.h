/*
 * hub_revoke.h - ending the open streams a revocation covers (revoke.h,
 * control.c).
 */
#ifndef SSERELAY_HUB_REVOKE_H
#define SSERELAY_HUB_REVOKE_H

#include <stddef.h>
#include <time.h>

struct hub;

/*
 * End every open stream that includes the channel and whose token was
 * issued before since_s (every one without a token: iat 0): what is
 * queued is written, then "event: revoked" with the channel as its data,
 * then the body ends.  Returns the number of streams ended (those already
 * closing are not counted).  Takes the hub lock.
 */
size_t		 hub_revoke(struct hub *, const char *channel, size_t len,
		    time_t since_s);
/* the frame that ends them: "event: revoked\ndata: <channel>\n\n" */
struct frame	*hub_revoke_frame(const char *channel, size_t len);

#endif
