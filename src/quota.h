/*
 * quota.h - connection limits: global, per client address, per user,
 * and which address a client has behind trusted proxies.
 *
 * One mutex guards the counts; workers take it once when a stream opens
 * and once when it ends.
 */
#ifndef SSERELAY_QUOTA_H
#define SSERELAY_QUOTA_H

#include <stddef.h>
#include <sys/socket.h>

struct quota;

/* a stream's place in the limits while it is open; give it back with
   quota_release */
struct quota_slot {
	void	*ip;
	void	*user;
	int	 taken;
};

/*
 * trusted: comma-separated addresses or CIDRs (NULL: none).  NULL with
 * err set if one cannot be read.
 */
struct quota	*quota_new(const char *trusted, char *err, size_t errlen);
void		 quota_free(struct quota *);
/* which limit refused a stream; QUOTA_OK: none */
enum quota_limit {
	QUOTA_OK = 0,
	QUOTA_GLOBAL,
	QUOTA_IP,
	QUOTA_USER,
	QUOTA_NLIMITS
};

/*
 * Count a new stream of ip and user (NULL: none) against the limits (0:
 * none).  QUOTA_OK when it fits (the slot filled in), else the limit it hit.
 */
enum quota_limit quota_acquire(struct quota *, unsigned max_total,
		    unsigned max_ip, unsigned max_user, const char *ip,
		    const char *user, struct quota_slot *);
void		 quota_release(struct quota *, struct quota_slot *);
/* "global", "ip", "user": for logs, metrics and the overload event */
const char	*quota_limit_name(enum quota_limit);
/*
 * The client's address as text: the peer's, or, when the peer is a
 * trusted proxy, the rightmost X-Forwarded-For entry that is not one.
 */
void		 quota_client_ip(struct quota *, const struct sockaddr *peer,
		    const char *xff, char *out, size_t outlen);

#endif
