/*
 * test_answers.c - answers.h: every Redis reply the broker's connections
 * read, fed as hand-made hiredis reply trees (no server): pub/sub pushes
 * and (un)subscribe answers, refusals and MOVED/ASK, ROLE, the function
 * library's version, CLUSTER SLOTS, the history reads, the sentinels'
 * get-master-addr-by-name and +switch-master.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cluster.h"
#include "durable.h"
#include "slot.h"
#include "tap.h"

/* ---- reply constructors: each frees with rfree --------------------- */

static redisReply *
rnew(int type)
{
	redisReply	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		abort();
	r->type = type;
	return r;
}

static redisReply *
rstrn(int type, const char *s, size_t len)
{
	redisReply	*r = rnew(type);

	if ((r->str = malloc(len + 1)) == NULL)
		abort();
	memcpy(r->str, s, len);
	r->str[len] = '\0';
	r->len = len;
	return r;
}

static redisReply *
rstr(const char *s)
{
	return rstrn(REDIS_REPLY_STRING, s, strlen(s));
}

static redisReply *
rerr(const char *s)
{
	return rstrn(REDIS_REPLY_ERROR, s, strlen(s));
}

static redisReply *
rstatus(const char *s)
{
	return rstrn(REDIS_REPLY_STATUS, s, strlen(s));
}

static redisReply *
rinteger(long long v)
{
	redisReply	*r = rnew(REDIS_REPLY_INTEGER);

	r->integer = v;
	return r;
}

static redisReply *
rnil(void)
{
	return rnew(REDIS_REPLY_NIL);
}

/* an array of n elements, given as arguments */
static redisReply *
rarr(size_t n, ...)
{
	redisReply	*r = rnew(REDIS_REPLY_ARRAY);
	va_list		 ap;
	size_t		 i;

	if (n > 0 && (r->element = calloc(n, sizeof(*r->element))) == NULL)
		abort();
	r->elements = n;
	va_start(ap, n);
	for (i = 0; i < n; i++)
		r->element[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r;
}

static void
rfree(redisReply *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	for (i = 0; i < r->elements; i++)
		rfree(r->element[i]);
	free(r->element);
	free(r->str);
	free(r);
}

/* ---- pub/sub ---------------------------------------------------------- */

static void
test_pubsub(void)
{
	struct answers_pubsub	 a;
	redisReply		*r;

	r = rarr(3, rstr("message"), rstr("user:alice"),
	    rstrn(REDIS_REPLY_STRING, "{\"a\":\0}", 7));
	is_int(answers_pubsub(r, &a), 0, "message");
	is_int(a.kind, ANSWERS_MESSAGE, "...is a message");
	ok(a.channel_len == 10 && memcmp(a.channel, "user:alice", 10) == 0,
	    "...its channel");
	ok(a.payload_len == 7 && a.payload[6] == '}',
	    "...its payload, binary (a NUL inside)");
	rfree(r);

	r = rarr(3, rstr("smessage"), rstr("{u}x"), rstr("p"));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_MESSAGE &&
	    a.channel_len == 4 && a.payload_len == 1, "smessage");
	rfree(r);

	r = rarr(4, rstr("pmessage"), rstr("user:*"), rstr("user:bob"),
	    rstr("hi"));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_MESSAGE &&
	    a.channel_len == 8 && memcmp(a.channel, "user:bob", 8) == 0 &&
	    a.payload_len == 2, "pmessage: the channel, not the pattern");
	rfree(r);

	r = rarr(3, rstr("pmessage"), rstr("user:*"), rstr("user:bob"));
	ok(answers_pubsub(r, &a) == -1 && a.kind == ANSWERS_OTHER &&
	    a.word != NULL && strcmp(a.word, "pmessage") == 0,
	    "pmessage of three elements: not one, named for the log");
	rfree(r);

	r = rarr(3, rstr("message"), rinteger(7), rstr("p"));
	is_int(answers_pubsub(r, &a), -1, "message with an integer channel");
	rfree(r);

	r = rarr(3, rstr("message"), rstr("c"), rinteger(1));
	is_int(answers_pubsub(r, &a), -1, "message with an integer payload");
	rfree(r);

	r = rarr(3, rstr("subscribe"), rstr("user:alice"), rinteger(1));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_SUBSCRIBED &&
	    a.channel_len == 10, "subscribe answer");
	rfree(r);

	r = rarr(3, rstr("ssubscribe"), rstr("{u}a"), rinteger(1));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_SUBSCRIBED,
	    "ssubscribe answer");
	rfree(r);

	r = rarr(3, rstr("unsubscribe"), rstr("user:alice"), rinteger(0));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_UNSUBSCRIBED,
	    "unsubscribe answer");
	rfree(r);

	/* a slot that moved: Redis lets go by itself */
	r = rarr(3, rstr("sunsubscribe"), rstr("{u}a"), rinteger(0));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_UNSUBSCRIBED &&
	    a.channel_len == 4, "sunsubscribe pushed by Redis");
	rfree(r);

	/* unsubscribe from nothing: a nil channel */
	r = rarr(3, rstr("unsubscribe"), rnil(), rinteger(0));
	is_int(answers_pubsub(r, &a), -1, "unsubscribe with a nil channel");
	rfree(r);

	r = rarr(3, rstr("psubscribe"), rstr("user:*"), rinteger(1));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_PSUBSCRIBED,
	    "psubscribe answer");
	rfree(r);

	r = rarr(2, rstr("pong"), rstr(""));
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_PONG,
	    "[\"pong\", \"\"] in subscribed mode");
	rfree(r);

	r = rstatus("PONG");
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_PONG,
	    "+PONG outside it");
	rfree(r);

	r = rerr("NOPERM this user has no permissions to access one of the "
	    "channels used as arguments");
	ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_ERROR,
	    "an error is a refusal");
	rfree(r);

	r = rarr(3, rstr("invalidate"), rstr("x"), rstr("y"));
	ok(answers_pubsub(r, &a) == -1 && a.kind == ANSWERS_OTHER,
	    "an unknown kind");
	rfree(r);

	r = rarr(3, rinteger(1), rstr("x"), rstr("y"));
	ok(answers_pubsub(r, &a) == -1 && a.word == NULL,
	    "an array led by no word");
	rfree(r);

	r = rarr(0);
	is_int(answers_pubsub(r, &a), -1, "an empty array");
	rfree(r);

	r = rstr("message");
	is_int(answers_pubsub(r, &a), -1, "a bare string");
	rfree(r);
}

/* ---- refusals --------------------------------------------------------- */

static void
test_refusal(void)
{
	struct answers_refusal	 a;
	redisReply		*r;

	r = rerr("MOVED 3999 127.0.0.1:6381");
	is_int(answers_refusal(r, &a), 0, "MOVED");
	ok(a.kind == ANSWERS_MOVED && a.redirect_ok && a.slot == 3999 &&
	    strcmp(a.host, "127.0.0.1") == 0 && a.port == 6381,
	    "...slot, host and port");
	is_str(a.code, "MOVED", "...its code");
	rfree(r);

	r = rerr("ASK 12182 ::1:7002");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_ASK &&
	    a.redirect_ok && a.slot == 12182 && strcmp(a.host, "::1") == 0 &&
	    a.port == 7002, "ASK to an IPv6 host");
	rfree(r);

	r = rerr("MOVED 42 :7000");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_MOVED &&
	    a.redirect_ok && a.host[0] == '\0' && a.port == 7000,
	    "MOVED with an empty host: the node asked");
	rfree(r);

	r = rerr("MOVED 16384 h:1");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_MOVED &&
	    !a.redirect_ok, "MOVED to a slot out of range: still a MOVED");
	rfree(r);

	r = rerr("MOVED x h:1");
	ok(answers_refusal(r, &a) == 0 && !a.redirect_ok, "MOVED, no slot");
	rfree(r);

	r = rerr("MOVED 1 h:0");
	ok(answers_refusal(r, &a) == 0 && !a.redirect_ok, "MOVED, port 0");
	rfree(r);

	r = rerr("MOVED");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_MOVED &&
	    !a.redirect_ok, "a bare MOVED");
	rfree(r);

	r = rerr("MOVEDX 1 h:1");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_REFUSED,
	    "MOVEDX is no MOVED");
	rfree(r);

	r = rerr("NOPERM this user has no permissions to access one of the "
	    "channels used as arguments");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_REFUSED &&
	    strcmp(a.code, "NOPERM") == 0 && strncmp(a.text, "NOPERM ", 7) ==
	    0, "NOPERM: a refusal, its code and text");
	rfree(r);

	r = rerr("WRONGTYPE Operation against a key holding the wrong kind "
	    "of value");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_REFUSED &&
	    strcmp(a.code, "WRONGTYPE") == 0, "WRONGTYPE");
	rfree(r);

	r = rerr("ERR Can't execute 'get': only (P|S)SUBSCRIBE / "
	    "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
	    "context");
	ok(answers_refusal(r, &a) == 0 && strcmp(a.code, "ERR") == 0,
	    "ERR of subscribed mode");
	rfree(r);

	r = rerr("CROSSSLOT Keys in request don't hash to the same slot");
	ok(answers_refusal(r, &a) == 0 && a.kind == ANSWERS_REFUSED &&
	    strcmp(a.code, "CROSSSLOT") == 0, "CROSSSLOT");
	rfree(r);

	r = rerr("AVERYLONGERRORCODEWITHOUTANYSPACEINITATALL x");
	ok(answers_refusal(r, &a) == 0 && strlen(a.code) == 31,
	    "a long code is cut, not overrun");
	rfree(r);

	r = rarr(3, rstr("subscribe"), rstr("c"), rinteger(1));
	is_int(answers_refusal(r, &a), -1, "an answer is no refusal");
	rfree(r);
}

/* ---- plain commands ------------------------------------------------- */

static void
test_role_library(void)
{
	const char	*said;
	redisReply	*r;

	r = rarr(3, rstr("master"), rinteger(100), rarr(0));
	ok(answers_role_master(r, &said) == 0, "ROLE master");
	rfree(r);
	r = rarr(5, rstr("slave"), rstr("127.0.0.1"), rinteger(6379),
	    rstr("connected"), rinteger(100));
	ok(answers_role_master(r, &said) == -1 && strcmp(said, "slave") == 0,
	    "ROLE slave, said");
	rfree(r);
	r = rerr("NOPERM no ROLE for you");
	ok(answers_role_master(r, &said) == -1 && strncmp(said, "NOPERM",
	    6) == 0, "ROLE refused");
	rfree(r);
	r = rinteger(1);
	ok(answers_role_master(r, &said) == -1 && strcmp(said, "no ROLE") ==
	    0, "ROLE of another shape");
	rfree(r);

	r = rstr("v1-abc");
	ok(answers_library_version(r, "v1-abc", &said) == 0 && said == NULL,
	    "the library's version is ours");
	rfree(r);
	r = rstr("v0-old");
	ok(answers_library_version(r, "v1-abc", &said) == -1 && said != NULL &&
	    strcmp(said, "v0-old") == 0, "another version");
	rfree(r);
	r = rerr("ERR Function not found");
	ok(answers_library_version(r, "v1-abc", &said) == -1 && said == NULL,
	    "no library");
	rfree(r);
}

/* ---- CLUSTER SLOTS ---------------------------------------------------- */

static redisReply *
node(const char *host, long long port, const char *id)
{
	return rarr(3, rstr(host), rinteger(port), rstr(id));
}

static void
test_cluster_slots(void)
{
	struct cluster_map	 m;
	char			 err[200];
	redisReply		*r;

	cluster_map_init(&m);
	/* three primaries, each with a replica; Redis 7 adds a map of
	 * hostname and the like after the id */
	r = rarr(3,
	    rarr(4, rinteger(0), rinteger(5460), node("10.0.0.1", 7000, "a"),
	    node("10.0.0.4", 7003, "d")),
	    rarr(4, rinteger(5461), rinteger(10922),
	    rarr(4, rstr("10.0.0.2"), rinteger(7001), rstr("b"), rarr(2,
	    rstr("hostname"), rstr("n2"))), node("10.0.0.5", 7004, "e")),
	    rarr(3, rinteger(10923), rinteger(16383), node("10.0.0.3", 7002, "c")));
	is_int(answers_cluster_slots(&m, r, "seed", err, sizeof(err)), 0,
	    "CLUSTER SLOTS of three primaries with replicas");
	is_int((int)m.nprimaries, 3, "...three primaries, no replica");
	is_int((int)m.covered, SLOT_COUNT, "...every slot served");
	ok(m.slot[0] == 0 && m.slot[5460] == 0 && m.slot[5461] == 1 &&
	    m.slot[16383] == 2, "...the ranges' ends");
	is_int(cluster_map_find(&m, "10.0.0.2", 7001), 1,
	    "...extra fields after the id are fine");
	is_int(cluster_map_find(&m, "10.0.0.4", 7003), -1,
	    "...a replica is no primary");
	is_int(cluster_map_primary(&m, "{u}x", 4),
	    m.slot[slot_of("{u}x", 4)], "...a channel's primary");
	rfree(r);

	/* one primary owning two ranges; an empty host; a "?" endpoint */
	r = rarr(3,
	    rarr(3, rinteger(0), rinteger(99), node("", 7000, "a")),
	    rarr(3, rinteger(200), rinteger(299), node("", 7000, "a")),
	    rarr(3, rinteger(300), rinteger(399), node("?", 7001, "b")));
	is_int(answers_cluster_slots(&m, r, "seed", err, sizeof(err)), 0,
	    "two ranges of one primary, an empty host, an unknown endpoint");
	is_int((int)m.nprimaries, 1, "...one primary");
	ok(strcmp(m.primaries[0].host, "seed") == 0,
	    "...the empty host is the node asked");
	is_int((int)m.covered, 200, "...200 slots served");
	ok(m.slot[150] == CLUSTER_NONE && m.slot[350] == CLUSTER_NONE,
	    "...the gap and the '?' range unserved");
	rfree(r);

	r = rarr(0);
	ok(answers_cluster_slots(&m, r, "seed", err, sizeof(err)) == 0 &&
	    m.nprimaries == 0 && m.covered == 0,
	    "an empty map (a cluster with no slots yet)");
	rfree(r);

	/* bad shapes: each leaves the map as it was */
	r = rarr(1, rarr(3, rinteger(0), rinteger(9), node("h", 1, "a")));
	answers_cluster_slots(&m, r, "seed", err, sizeof(err));
	rfree(r);
#define BAD_SLOTS(tree, what) do {					\
	r = (tree);							\
	err[0] = '\0';							\
	ok(answers_cluster_slots(&m, r, "seed", err, sizeof(err)) == -1 && \
	    err[0] != '\0' && m.nprimaries == 1 && m.covered == 10, what); \
	rfree(r);							\
} while (0)
	BAD_SLOTS(rerr("ERR This instance has cluster support disabled"),
	    "an error: not a cluster node");
	BAD_SLOTS(rinteger(1), "not an array");
	BAD_SLOTS(rarr(1, rinteger(1)), "an entry that is no array");
	BAD_SLOTS(rarr(1, rarr(2, rinteger(0), rinteger(9))), "an entry without node");
	BAD_SLOTS(rarr(1, rarr(3, rstr("0"), rinteger(9), node("h", 1, "a"))),
	    "a start that is a string");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(9), rinteger(0), node("h", 1, "a"))),
	    "start after end");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(0), rinteger(16384), node("h", 1, "a"))),
	    "a slot out of range");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(-1), rinteger(5), node("h", 1, "a"))),
	    "a negative slot");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(0), rinteger(9), rarr(1, rstr("h")))),
	    "a node without port");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(0), rinteger(9), rarr(2, rinteger(1),
	    rinteger(1)))), "a host that is no string");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(0), rinteger(9), rarr(2, rstr("h"),
	    rstr("1")))), "a port that is a string");
	BAD_SLOTS(rarr(1, rarr(3, rinteger(0), rinteger(9), node("h", 0, "a"))),
	    "port 0");
	BAD_SLOTS(rarr(2, rarr(3, rinteger(0), rinteger(9), node("h", 1, "a")),
	    rstr("x")), "a good entry, then a bad one");
#undef BAD_SLOTS
	cluster_map_free(&m);
}

/* ---- history reads ------------------------------------------------- */

static void
test_history(void)
{
	const char		*names[2] = { "user:alice", "{u}b" };
	size_t			 lens[2] = { 10, 4 };
	struct durable_read	*rd;
	struct durable_chan	*c;
	redisReply		*r;

	if ((rd = durable_read_new(1, DURABLE_AFTER, 0, names, lens, 2)) ==
	    NULL)
		abort();
	c = &rd->chans[0];
	r = rarr(9, rstr("ok"), rstr("1a2b"), rstr("12"),
	    rstr("11"), rstr("1700000000000001"), rstr("a"),
	    rstr("12"), rstr("1700000000000002"),
	    rstrn(REDIS_REPLY_STRING, "b\0c", 3));
	is_int(answers_history(rd, 0, r), 0, "a read with two entries");
	ok(c->status == DURABLE_OK && c->now.known && c->now.epoch == 0x1a2b &&
	    c->now.offset == 12, "...status ok, the position now");
	ok(c->nentries == 2 && c->entries[0].offset == 11 &&
	    c->entries[1].time_us == 1700000000000002ULL &&
	    c->entries[1].len == 3 && memcmp(c->entries[1].data, "b\0c", 3) ==
	    0, "...the entries, binary data kept");
	rfree(r);

	r = rarr(3, rstr("ok"), rstr(""), rstr("0"));
	ok(answers_history(rd, 0, r) == 0 && c->status == DURABLE_OK &&
	    !c->now.known && c->nentries == 0,
	    "a channel never published: no position, old entries gone");
	rfree(r);

#define STATUS(word, st) do {						\
	r = rarr(3, rstr(word), rstr("ff"), rstr("3"));			\
	ok(answers_history(rd, 1, r) == 0 && rd->chans[1].status == (st), \
	    "status " word);						\
	rfree(r);							\
} while (0)
	STATUS("epoch", DURABLE_EPOCH);
	STATUS("trimmed", DURABLE_TRIMMED);
	STATUS("ahead", DURABLE_AHEAD);
	STATUS("what", DURABLE_FAILED);
#undef STATUS

	r = rerr("ERR Function not found");
	ok(answers_history(rd, 0, r) == 0 && c->status == DURABLE_FAILED,
	    "an error: a failed read, not a bad answer");
	rfree(r);

#define BAD_READ(tree, what) do {					\
	r = (tree);							\
	ok(answers_history(rd, 0, r) == -1 && c->status ==		\
	    DURABLE_FAILED && c->nentries == 0, what);			\
	rfree(r);							\
} while (0)
	BAD_READ(rstr("ok"), "not an array");
	BAD_READ(rarr(2, rstr("ok"), rstr("")), "two elements");
	BAD_READ(rarr(4, rstr("ok"), rstr(""), rstr("0"), rstr("1")),
	    "an entry cut short");
	BAD_READ(rarr(3, rinteger(1), rstr(""), rstr("0")), "an integer status");
	BAD_READ(rarr(3, rstr("ok"), rstr("zz"), rstr("1")), "a bad epoch");
	BAD_READ(rarr(3, rstr("ok"), rstr("1a"), rstr("-1")),
	    "a negative offset");
	BAD_READ(rarr(3, rstr("ok"), rstr("1a"), rstr("1x")),
	    "an offset with a tail");
	BAD_READ(rarr(6, rstr("ok"), rstr("1a"), rstr("2"), rstr("2"),
	    rstr("7"), rinteger(5)), "entry data that is an integer");
	BAD_READ(rarr(6, rstr("ok"), rstr("1a"), rstr("2"), rstr(""),
	    rstr("7"), rstr("d")), "an empty entry offset");
#undef BAD_READ
	durable_read_free(rd);
}

/* ---- sentinels ---------------------------------------------------- */

static void
test_sentinel(void)
{
	struct answers_switch	 sw;
	char			 host[UTIL_HOST_MAX], small[4];
	const char		*msg;
	redisReply		*r;
	int			 port = 0;

	r = rarr(2, rstr("127.0.0.1"), rstr("6380"));
	ok(answers_sentinel_master(r, host, sizeof(host), &port) ==
	    ANSWERS_MASTER_AT && strcmp(host, "127.0.0.1") == 0 && port ==
	    6380, "get-master-addr-by-name: host and port");
	is_int(answers_sentinel_master(r, small, sizeof(small), &port),
	    ANSWERS_MASTER_BAD, "...a host too long for the buffer");
	rfree(r);

	r = rnil();
	is_int(answers_sentinel_master(r, host, sizeof(host), &port),
	    ANSWERS_MASTER_UNKNOWN, "nil: no master of that name");
	rfree(r);

#define BAD_MASTER(tree, what) do {					\
	r = (tree);							\
	is_int(answers_sentinel_master(r, host, sizeof(host), &port),	\
	    ANSWERS_MASTER_BAD, what);					\
	rfree(r);							\
} while (0)
	BAD_MASTER(rerr("NOAUTH Authentication required."), "NOAUTH");
	BAD_MASTER(rarr(1, rstr("h")), "one element");
	BAD_MASTER(rarr(2, rstr("h"), rinteger(6379)), "an integer port");
	BAD_MASTER(rarr(2, rstr("h"), rstr("63x")), "a port with a tail");
	BAD_MASTER(rarr(2, rstr("h"), rstr("0")), "port 0");
	BAD_MASTER(rarr(2, rstr("h"), rstr("65536")), "port 65536");
	BAD_MASTER(rarr(2, rstr(""), rstr("1")), "an empty host");
#undef BAD_MASTER

	msg = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
	ok(answers_switch_master(msg, strlen(msg), &sw) == 0 &&
	    strcmp(sw.name, "mymaster") == 0 && strcmp(sw.from, "127.0.0.1") ==
	    0 && sw.from_port == 6379 && strcmp(sw.to, "127.0.0.1") == 0 &&
	    sw.to_port == 6380, "+switch-master");
	msg = "m ::1 6379 ::1 6381";
	ok(answers_switch_master(msg, strlen(msg), &sw) == 0 &&
	    strcmp(sw.to, "::1") == 0 && sw.to_port == 6381, "...IPv6");
	msg = "m a 1 b";
	is_int(answers_switch_master(msg, strlen(msg), &sw), -1,
	    "...four words");
	msg = "m a 1 b 2 c";
	is_int(answers_switch_master(msg, strlen(msg), &sw), -1,
	    "...six words");
	msg = "m a 1 b 0";
	is_int(answers_switch_master(msg, strlen(msg), &sw), -1, "...port 0");
	is_int(answers_switch_master("m a 1\0b 2", 9, &sw), -1,
	    "...a NUL inside");

	/* the watch connection's pushes go through answers_pubsub */
	r = rarr(3, rstr("message"), rstr("+switch-master"),
	    rstr("mymaster 10.0.0.1 6379 10.0.0.2 6379"));
	{
		struct answers_pubsub	 a;

		ok(answers_pubsub(r, &a) == 0 && a.kind == ANSWERS_MESSAGE &&
		    answers_switch_master(a.payload, a.payload_len, &sw) ==
		    0 && strcmp(sw.to, "10.0.0.2") == 0,
		    "a +switch-master push, read whole");
	}
	rfree(r);
}

int
main(void)
{
	test_pubsub();
	test_refusal();
	test_role_library();
	test_cluster_slots();
	test_history();
	test_sentinel();
	return done_testing();
}
