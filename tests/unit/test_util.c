/*
 * test_util.c - util.h: lists of HOST:PORT (--redis-cluster and
 * --redis-sentinel read theirs with it) and the error line.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "tap.h"

static int
parse(const char *list, struct util_addr *a, size_t max, size_t *n,
    char *err)
{
	return util_parse_addrs(list, a, max, n, err, 200);
}

int
main(void)
{
	struct util_addr a[3];
	char err[200], host[UTIL_HOST_MAX + 8];
	size_t n = 99;
	static const char *bad[] = { "", ",", "host", "host:", ":6379",
	    "host:0", "host:65536", "host:63x79", "host:-1", "a:1,b", NULL };
	int i;

	is_int(parse("127.0.0.1:7000", a, 3, &n, err), 0, "one address");
	is_int((int)n, 1, "...one");
	is_str(a[0].host, "127.0.0.1", "...its host");
	is_int(a[0].port, 7000, "...its port");
	is_int(parse("a:1, b:2,[::1]:3", a, 3, &n, err), 0,
	    "three, a blank after a comma, an IPv6 host in brackets");
	ok(n == 3 && strcmp(a[1].host, "b") == 0 && a[1].port == 2 &&
	    strcmp(a[2].host, "::1") == 0 && a[2].port == 3,
	    "...read as b:2 and ::1 port 3");
	is_int(parse("a:1,b:2,c:3,d:4", a, 3, &n, err), -1, "four of at most 3");
	ok(strstr(err, "at most 3") != NULL && strstr(err, "a:1,b:2,c:3,d:4"),
	    "...the reason says so and shows the list: %s", err);
	is_int((int)n, 0, "...and nothing is kept");
	for (i = 0; bad[i] != NULL; i++) {
		is_int(parse(bad[i], a, 3, &n, err), -1, "'%s': refused", bad[i]);
		ok(strstr(err, "expected HOST:PORT") != NULL,
		    "'%s': the reason names the shape: %s", bad[i], err);
	}
	/* the reason names the entry at fault */
	is_int(parse("a:b,,:7000", a, 3, &n, err), -1, "'a:b,,:7000'");
	ok(strstr(err, "'a:b'") != NULL, "...names 'a:b': %s", err);
	is_int(parse("h:1,,h:2", a, 3, &n, err), -1, "an empty entry");
	ok(strstr(err, "entry 2 is empty") != NULL, "...says which: %s", err);
	is_int(parse("h:1,", a, 3, &n, err), -1, "a trailing comma");
	ok(strstr(err, "entry 2 is empty") != NULL, "...an empty entry: %s",
	    err);
	is_int(parse("h:1,:2", a, 3, &n, err), -1, "no host");
	ok(strstr(err, "entry 2, ':2',") != NULL, "...names ':2': %s", err);
	is_int(parse("[]:1", a, 3, &n, err), -1, "empty brackets");
	is_int(util_check_addrs("h:1,h:2", 2, err, sizeof(err)), 0,
	    "util_check_addrs: two of at most 2");
	is_int(util_check_addrs("h:1,h:2,h:3", 2, err, sizeof(err)), -1,
	    "...three of at most 2");
	ok(strstr(err, "more than 2") != NULL, "...said: %s", err);

	memset(host, 'h', UTIL_HOST_MAX - 1);
	snprintf(host + UTIL_HOST_MAX - 1, 8, ":1");
	is_int(parse(host, a, 3, &n, err), 0, "a host of %d bytes",
	    UTIL_HOST_MAX - 1);
	memset(host, 'h', UTIL_HOST_MAX);
	snprintf(host + UTIL_HOST_MAX, 8, ":1");
	is_int(parse(host, a, 3, &n, err), -1, "one byte more: refused");

	is_int(util_err(err, sizeof(err), "bad %s %d", "thing", 7), -1,
	    "util_err returns -1");
	is_str(err, "bad thing 7", "...with the line in err");
	is_int(util_err(NULL, 0, "nothing"), -1, "...and takes no buffer");
	return done_testing();
}
