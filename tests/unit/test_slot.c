/*
 * test_slot.c - slot_of() (slot.h) against Redis itself: the vectors of
 * the Redis Cluster specification, then CLUSTER KEYSLOT of a real
 * cluster-enabled redis-server (started here on a unix socket in a
 * temporary directory) for thousands of names: random binary ones, and
 * ones made of braces to try every hash tag rule.
 *
 * Needs REDIS_SERVER (set by make check); without it the comparison is
 * skipped, unless SSERELAY_REQUIRE_ALL is set.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slot.h"
#include "tap.h"

#define NRANDOM	3000
#define NBRACES	2000

static unsigned
s(const char *k)
{
	return slot_of(k, strlen(k));
}

static void
test_vectors(void)
{
	is_int(slot_crc16("123456789", 9), 0x31c3,
	    "CRC16/XMODEM of \"123456789\" is 0x31C3 (the spec's check)");
	is_int(s("foo"), 12182, "foo");
	is_int(s("{user1000}.following"), s("{user1000}.followers"),
	    "a hash tag: both keys in one slot");
	is_int(s("{user1000}.following"), s("user1000"),
	    "the tag's slot is its content's");
	is_int(s("foo{}{bar}"), slot_crc16("foo{}{bar}", 10) & 16383,
	    "an empty tag: the whole key");
	is_int(s("foo{{bar}}zap"), s("{bar"), "\"{{bar}}\": the tag is \"{bar\"");
	is_int(s("foo{bar}{zap}"), s("bar"), "the first tag only");
	is_int(slot_of("a{b\0c}d", 7), slot_of("b\0c", 3),
	    "binary: a NUL inside a tag");
	is_int(s("no{close"), slot_crc16("no{close", 8) & 16383,
	    "an unclosed brace: the whole key");
}

static pid_t
start_redis(const char *dir, const char *sock)
{
	const char *bin = getenv("REDIS_SERVER");
	char conf[512];
	pid_t pid;

	if (bin == NULL || *bin == '\0')
		bin = "redis-server";
	snprintf(conf, sizeof(conf), "%s/nodes.conf", dir);
	if ((pid = fork()) == 0) {
		/* its log is not TAP */
		if (freopen("/dev/null", "w", stdout) == NULL ||
		    freopen("/dev/null", "w", stderr) == NULL)
			_exit(127);
		execlp(bin, bin, "--port", "0", "--unixsocket", sock,
		    "--cluster-enabled", "yes", "--cluster-config-file", conf,
		    "--dir", dir, "--save", "", "--appendonly", "no",
		    "--logfile", "", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static redisContext *
connect_redis(const char *sock, pid_t pid)
{
	redisContext *c;
	int i, status;

	for (i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return NULL;
		c = redisConnectUnix(sock);
		if (c != NULL && !c->err)
			return c;
		if (c != NULL)
			redisFree(c);
		usleep(20000);	/* waiting for the server to listen */
	}
	return NULL;
}

static void
test_against_redis(void)
{
	char dir[] = "/tmp/sserelay-slot-XXXXXX", sock[600], name[64];
	redisContext *c;
	redisReply *r;
	pid_t pid;
	int i, k, len, bad = 0, compared = 0;
	const char alphabet[] = "{}ab";

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	pid = start_redis(dir, sock);
	if ((c = connect_redis(sock, pid)) == NULL) {
		if (getenv("SSERELAY_REQUIRE_ALL") != NULL)
			ok(0, "a cluster-enabled redis-server answers");
		else
			ok(1, "# SKIP no redis-server to compare with");
		goto done;
	}
	srandom(12345);
	for (i = 0; i < NRANDOM + NBRACES; i++) {
		if (i < NRANDOM) {
			len = 1 + (int)(random() % 40);
			for (k = 0; k < len; k++)
				name[k] = (char)(random() % 256);
		} else {
			/* short words of braces and letters: every tag rule */
			len = 1 + (int)(random() % 10);
			for (k = 0; k < len; k++)
				name[k] = alphabet[random() % 4];
		}
		r = redisCommand(c, "CLUSTER KEYSLOT %b", name, (size_t)len);
		if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
			bad++;
			if (r == NULL)
				break;
		} else {
			compared++;
			if ((long long)slot_of(name, (size_t)len) !=
			    r->integer) {
				if (bad < 5)
					diag("name %d: ours %u, Redis %lld", i,
					    slot_of(name, (size_t)len),
					    r->integer);
				bad++;
			}
		}
		freeReplyObject(r);
	}
	is_int(compared, NRANDOM + NBRACES, "Redis answered CLUSTER KEYSLOT "
	    "for every name");
	is_int(bad, 0, "slot_of equals CLUSTER KEYSLOT for %d random binary "
	    "names and %d made of braces", NRANDOM, NBRACES);
	redisFree(c);
done:
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(sock);
	snprintf(sock, sizeof(sock), "%s/nodes.conf", dir);
	unlink(sock);
	rmdir(dir);
}

int
main(void)
{
	test_vectors();
	test_against_redis();
	return done_testing();
}
