/*
 * test_quota.c - connection limits and the client's address (quota.h).
 *
 * quota_acquire() says which limit a stream hits (QUOTA_GLOBAL, QUOTA_IP,
 * QUOTA_USER; quota_limit_name gives "global", "ip", "user")
 * or returns NULL with the slot filled in; quota_release() gives the
 * places back.  quota_client_ip() believes X-Forwarded-For only from a
 * trusted peer, and then walks it right to left past trusted hops: what a
 * client writes into the header itself (the leftmost entries) is never
 * taken over what the proxies appended.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "quota.h"
#include "tap.h"

#define MAXHOLD	64

/* the limit hit, by the name logs and metrics use; NULL when it fits */
static const char *
acquire(struct quota *q, unsigned total, unsigned ip, unsigned user,
    const char *addr, const char *who, struct quota_slot *h)
{
	enum quota_limit l = quota_acquire(q, total, ip, user, addr, who, h);

	return l == QUOTA_OK ? NULL : quota_limit_name(l);
}

static void
test_global(void)
{
	struct quota		*q;
	struct quota_slot	 h[4];
	char			 err[128];
	const char		*hit;

	q = quota_new(NULL, err, sizeof(err));
	ok(q != NULL, "quota_new(NULL): no trusted proxies");
	if (q == NULL)
		return;
	ok(acquire(q, 2, 0, 0, "192.0.2.1", "alice", &h[0]) == NULL &&
	    h[0].taken, "global 2: first stream fits, slot taken");
	ok(acquire(q, 2, 0, 0, "192.0.2.2", "bob", &h[1]) == NULL,
	    "global 2: second stream (another ip, another user) fits");
	hit = acquire(q, 2, 0, 0, "192.0.2.3", "carol", &h[2]);
	is_str(hit, "global", "global 2: the third is refused, limit global");
	ok(!h[2].taken, "a refused stream takes no slot");
	quota_release(q, &h[2]);	/* nothing taken: a no-op */
	quota_release(q, &h[0]);
	ok(!h[0].taken, "quota_release clears the slot");
	quota_release(q, &h[0]);	/* twice: a no-op */
	ok(acquire(q, 2, 0, 0, "192.0.2.3", "carol", &h[2]) == NULL,
	    "after one release (and a second, harmless one) one more fits");
	is_str(acquire(q, 2, 0, 0, "192.0.2.4", NULL, &h[3]), "global",
	    "...and the next is refused again: releasing twice freed one place");
	/* a lower limit after a reload applies to the next stream */
	is_str(acquire(q, 1, 0, 0, "192.0.2.4", NULL, &h[3]), "global",
	    "global 1 with 2 open: refused");
	quota_release(q, &h[1]);
	quota_release(q, &h[2]);
	quota_free(q);
}

static void
test_unlimited(void)
{
	struct quota		*q;
	struct quota_slot	 h[MAXHOLD];
	char			 err[128];
	int			 i, fits = 1;

	if ((q = quota_new(NULL, err, sizeof(err))) == NULL) {
		ok(0, "quota_new");
		return;
	}
	for (i = 0; i < MAXHOLD; i++)
		fits &= acquire(q, 0, 0, 0, "192.0.2.1", "alice", &h[i]) ==
		    NULL && h[i].taken;
	ok(fits, "limits 0: %d streams of one ip and user all fit", MAXHOLD);
	for (i = 0; i < MAXHOLD; i++)
		quota_release(q, &h[i]);
	quota_free(q);
}

static void
test_per_ip_user(void)
{
	struct quota		*q;
	struct quota_slot	 a, b, c, d, e;
	char			 err[128];

	if ((q = quota_new(NULL, err, sizeof(err))) == NULL) {
		ok(0, "quota_new");
		return;
	}
	/* per ip */
	ok(acquire(q, 0, 2, 0, "192.0.2.1", NULL, &a) == NULL &&
	    acquire(q, 0, 2, 0, "192.0.2.1", NULL, &b) == NULL,
	    "ip 2: two streams from 192.0.2.1 fit");
	is_str(acquire(q, 0, 2, 0, "192.0.2.1", NULL, &c), "ip",
	    "ip 2: a third from 192.0.2.1 is refused, limit ip");
	ok(acquire(q, 0, 2, 0, "192.0.2.2", NULL, &c) == NULL,
	    "ip 2: 192.0.2.2 has its own count");
	quota_release(q, &a);
	ok(acquire(q, 0, 2, 0, "192.0.2.1", NULL, &a) == NULL,
	    "ip 2: after a release 192.0.2.1 fits again");
	quota_release(q, &a);
	quota_release(q, &b);
	quota_release(q, &c);

	/* per user; streams without a user are not counted per user */
	ok(acquire(q, 0, 0, 1, "192.0.2.1", "alice", &a) == NULL,
	    "user 1: alice's first stream fits");
	is_str(acquire(q, 0, 0, 1, "192.0.2.9", "alice", &b), "user",
	    "user 1: alice's second, from another ip, is refused, limit user");
	ok(acquire(q, 0, 0, 1, "192.0.2.1", "bob", &b) == NULL,
	    "user 1: bob has his own count");
	ok(acquire(q, 0, 0, 1, "192.0.2.1", NULL, &c) == NULL &&
	    acquire(q, 0, 0, 1, "192.0.2.1", NULL, &d) == NULL,
	    "user 1: streams without a user are not counted per user");
	quota_release(q, &a);
	ok(acquire(q, 0, 0, 1, "192.0.2.1", "alice", &a) == NULL,
	    "user 1: after a release alice fits again");
	quota_release(q, &a);
	quota_release(q, &b);
	quota_release(q, &c);
	quota_release(q, &d);

	/*
	 * A stream refused for its user must not keep the place it took
	 * for its ip: 192.0.2.7 (ip limit 1) is still free afterwards.
	 */
	ok(acquire(q, 0, 1, 1, "192.0.2.1", "alice", &a) == NULL,
	    "ip 1, user 1: alice from 192.0.2.1 fits");
	is_str(acquire(q, 0, 1, 1, "192.0.2.7", "alice", &b), "user",
	    "ip 1, user 1: alice again from 192.0.2.7: refused, limit user");
	ok(acquire(q, 0, 1, 1, "192.0.2.7", "bob", &b) == NULL,
	    "ip 1, user 1: bob from 192.0.2.7 fits: the refusal gave the ip "
	    "place back");

	/* every limit hit at once: the order is global, ip, user */
	is_str(acquire(q, 2, 1, 1, "192.0.2.1", "alice", &c), "global",
	    "all three limits hit: global is named first");
	is_str(acquire(q, 3, 1, 1, "192.0.2.1", "alice", &c), "ip",
	    "ip and user hit: ip is named first");
	is_str(acquire(q, 3, 2, 1, "192.0.2.1", "alice", &c), "user",
	    "only user hit: user");
	ok(acquire(q, 3, 2, 2, "192.0.2.1", "alice", &c) == NULL,
	    "none hit: fits");
	is_str(acquire(q, 3, 0, 0, "192.0.2.9", "zed", &e), "global",
	    "...and then global 3 is full");
	quota_release(q, &a);
	quota_release(q, &b);
	quota_release(q, &c);
	quota_free(q);
}

static void
test_trusted_parse(void)
{
	static const struct {
		const char	*list;
		int		 good;
	} cases[] = {
		{ "127.0.0.1", 1 },
		{ "10.0.0.0/8, 192.168.1.1", 1 },
		{ "10.0.0.0/8,::1,2001:db8::/32", 1 },
		{ "0.0.0.0/0", 1 },
		{ "::/0", 1 },
		{ "", 1 },			/* an empty list: none */
		{ "10.0.0.0/33", 0 },
		{ "::1/129", 0 },
		{ "10.0.0.0/", 0 },
		{ "10.0.0.0/x", 0 },
		{ "10.0.0.0/-1", 0 },
		{ "nonsense", 0 },
		{ "10.0.0.256", 0 },
		{ "127.0.0.1, example.com", 0 },
	};
	struct quota	*q;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		q = quota_new(cases[i].list, err, sizeof(err));
		if (cases[i].good)
			ok(q != NULL, "trusted \"%s\": accepted", cases[i].list);
		else
			ok(q == NULL && strstr(err, "--trusted-proxy") != NULL,
			    "trusted \"%s\": refused (%s)", cases[i].list, err);
		quota_free(q);
	}
}

/* the client's address for a peer (text) and an X-Forwarded-For */
static const char *
client(struct quota *q, const char *peer, const char *xff)
{
	static char		 out[64];
	struct sockaddr_in	 in4;
	struct sockaddr_in6	 in6;
	const struct sockaddr	*sa = NULL;

	memset(&in4, 0, sizeof(in4));
	memset(&in6, 0, sizeof(in6));
	if (peer != NULL && inet_pton(AF_INET, peer, &in4.sin_addr) == 1) {
		in4.sin_family = AF_INET;
		sa = (const struct sockaddr *)&in4;
	} else if (peer != NULL &&
	    inet_pton(AF_INET6, peer, &in6.sin6_addr) == 1) {
		in6.sin6_family = AF_INET6;
		sa = (const struct sockaddr *)&in6;
	}
	quota_client_ip(q, sa, xff, out, sizeof(out));
	return out;
}

static void
test_client_ip(void)
{
	struct quota	*none, *q, *q6;
	char		 err[128];

	none = quota_new(NULL, err, sizeof(err));
	q = quota_new("127.0.0.1, 10.0.0.0/8, 192.168.0.0/23", err,
	    sizeof(err));
	q6 = quota_new("::1, 2001:db8::/32", err, sizeof(err));
	if (none == NULL || q == NULL || q6 == NULL) {
		ok(0, "quota_new for the address tests: %s", err);
		return;
	}

	is_str(client(none, "192.0.2.1", NULL), "192.0.2.1",
	    "no proxies: the peer");
	is_str(client(none, "192.0.2.1", "203.0.113.7"), "192.0.2.1",
	    "no proxies trusted: X-Forwarded-For is ignored");
	is_str(client(q, "192.0.2.1", "203.0.113.7"), "192.0.2.1",
	    "forged: an untrusted peer's X-Forwarded-For is ignored");
	is_str(client(q, "192.0.2.1", "127.0.0.1"), "192.0.2.1",
	    "forged: an untrusted peer cannot claim a trusted address");
	is_str(client(none, NULL, NULL), "unknown",
	    "no peer address: unknown");
	is_str(client(none, "2001:db8::7", NULL), "2001:db8::7",
	    "an IPv6 peer, as text");

	is_str(client(q, "127.0.0.1", NULL), "127.0.0.1",
	    "trusted peer without X-Forwarded-For: the peer");
	is_str(client(q, "127.0.0.1", "203.0.113.7"), "203.0.113.7",
	    "trusted peer: the X-Forwarded-For entry");
	is_str(client(q, "127.0.0.1", "198.51.100.1, 203.0.113.7"),
	    "203.0.113.7",
	    "trusted peer: the rightmost entry, not the leftmost");
	is_str(client(q, "127.0.0.1", "1.1.1.1, 203.0.113.7, 10.1.2.3"),
	    "203.0.113.7",
	    "right to left past a trusted hop (10.0.0.0/8) to the first "
	    "untrusted one; the client's own 1.1.1.1 is not taken");
	is_str(client(q, "10.9.9.9", "203.0.113.7,10.1.2.3,192.168.1.255"),
	    "203.0.113.7",
	    "a peer trusted by CIDR, two trusted hops, no spaces");
	is_str(client(q, "127.0.0.1", "203.0.113.7, 192.168.2.0"),
	    "192.168.2.0",
	    "192.168.2.0 is outside 192.168.0.0/23: it is the client");
	is_str(client(q, "127.0.0.1", "10.0.0.5, 10.0.0.6"), "10.0.0.5",
	    "every hop trusted: the leftmost");
	is_str(client(q, "127.0.0.1", " \t203.0.113.7 ,\t10.0.0.6 "),
	    "203.0.113.7", "spaces and tabs around entries are not part of "
	    "them");
	is_str(client(q, "127.0.0.1", "203.0.113.7, garbage"), "127.0.0.1",
	    "a rightmost entry that is no address: the peer");
	is_str(client(q, "127.0.0.1", "garbage, 10.0.0.6"), "10.0.0.6",
	    "garbage past a trusted hop: the last address read");
	is_str(client(q, "127.0.0.1", "203.0.113.7, , 10.0.0.6"), "10.0.0.6",
	    "an empty entry past a trusted hop: the last address read");
	is_str(client(q, "127.0.0.1", ""), "127.0.0.1",
	    "an empty header: the peer");
	is_str(client(q, "127.0.0.1", ","), "127.0.0.1",
	    "a lone comma: the peer");
	is_str(client(q, "127.0.0.1", "203.0.113.7, "
	    "2001:0db8:0000:0000:0000:0000:0000:0001:0000:0000"),
	    "127.0.0.1", "an entry longer than any address: the peer");
	is_str(client(q, "127.0.0.1", "2001:db8::1"), "2001:db8::1",
	    "an IPv6 client behind an IPv4 proxy");

	is_str(client(q6, "::1", "203.0.113.7, 2001:db8:ffff::1"),
	    "203.0.113.7", "IPv6 proxies: trusted ::1 and 2001:db8::/32 "
	    "walked past");
	is_str(client(q6, "2001:db9::1", "203.0.113.7"), "2001:db9::1",
	    "2001:db9::1 is outside 2001:db8::/32: not trusted");
	is_str(client(q6, "127.0.0.1", "203.0.113.7"), "127.0.0.1",
	    "an IPv4 peer is not in an IPv6 list");

	quota_free(none);
	quota_free(q);
	quota_free(q6);
}

int
main(void)
{
	test_global();
	test_unlimited();
	test_per_ip_user();
	test_trusted_parse();
	test_client_ip();
	return done_testing();
}
