/*
 * quota.c - connection limits and the client's address.  See quota.h.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "table.h"

struct quota_net {
	int		 family;
	unsigned char	 addr[16];
	unsigned	 prefix;		/* bits */
};

struct quota {
	pthread_mutex_t		 lock;
	struct table		 ips;		/* value: count, as uintptr_t */
	struct table		 users;
	unsigned		 total;
	struct quota_net	*trusted;
	size_t			 ntrusted;
};

static int
quota_parse_net(const char *s, struct quota_net *n)
{
	char		 buf[INET6_ADDRSTRLEN + 5], *slash, *end;
	unsigned long	 bits;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = AF_INET;
		n->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		n->family = AF_INET6;
		n->prefix = 128;
	} else
		return -1;
	if (slash != NULL) {
		bits = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits > n->prefix)
			return -1;
		n->prefix = (unsigned)bits;
	}
	return 0;
}

struct quota *
quota_new(const char *trusted, char *err, size_t errlen)
{
	struct quota	*l;
	char		*list = NULL, *tok, *save;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    table_init(&l->ips) == -1 || table_init(&l->users) == -1) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	pthread_mutex_init(&l->lock, NULL);
	if (trusted == NULL)
		return l;
	if ((list = strdup(trusted)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	for (tok = strtok_r(list, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		struct quota_net *n;

		n = realloc(l->trusted, (l->ntrusted + 1) * sizeof(*n));
		if (n == NULL) {
			snprintf(err, errlen, "out of memory");
			goto bad;
		}
		l->trusted = n;
		if (quota_parse_net(tok, &l->trusted[l->ntrusted]) == -1) {
			snprintf(err, errlen, "--trusted-proxy: '%s' is no "
			    "address or CIDR", tok);
			goto bad;
		}
		l->ntrusted++;
	}
	free(list);
	return l;
bad:
	free(list);
	quota_free(l);
	return NULL;
}

void
quota_free(struct quota *l)
{
	if (l == NULL)
		return;
	if (l->ips.bucket != NULL)
		table_free(&l->ips);
	if (l->users.bucket != NULL)
		table_free(&l->users);
	free(l->trusted);
	free(l);
}

static int
quota_in_net(const struct quota_net *n, int family, const unsigned char *a)
{
	unsigned	 full = n->prefix / 8, rest = n->prefix % 8;

	if (family != n->family || memcmp(a, n->addr, full) != 0)
		return 0;
	return rest == 0 ||
	    ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))) == 0;
}

static int
quota_trusted(const struct quota *l, const char *ip)
{
	unsigned char	 a[16];
	int		 family;
	size_t		 i;

	if (inet_pton(AF_INET, ip, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		family = AF_INET6;
	else
		return 0;
	for (i = 0; i < l->ntrusted; i++)
		if (quota_in_net(&l->trusted[i], family, a))
			return 1;
	return 0;
}

void
quota_client_ip(struct quota *l, const struct sockaddr *peer,
    const char *xff, char *out, size_t outlen)
{
	char		 hop[INET6_ADDRSTRLEN];
	const char	*end, *start, *comma;
	size_t		 len;
	unsigned char	 a[16];

	out[0] = '\0';
	if (peer == NULL)
		snprintf(out, outlen, "unknown");
	else if (peer->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr,
		    out, (socklen_t)outlen);
	else if (peer->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)peer)->sin6_addr, out,
		    (socklen_t)outlen);
	if (xff == NULL || l->ntrusted == 0 || !quota_trusted(l, out))
		return;
	/* right to left: the first hop no trusted proxy of ours added */
	end = xff + strlen(xff);
	for (;;) {
		comma = end;
		while (comma > xff && comma[-1] != ',')
			comma--;
		/* the hop is [comma, end), without the spaces around it */
		for (start = comma; start < end && (*start == ' ' ||
		    *start == '\t'); start++)
			;
		len = (size_t)(end - start);
		while (len > 0 && (start[len - 1] == ' ' ||
		    start[len - 1] == '\t'))
			len--;
		if (len == 0 || len >= sizeof(hop))
			return;		/* garbage: keep what we know */
		memcpy(hop, start, len);
		hop[len] = '\0';
		if (inet_pton(AF_INET, hop, a) != 1 &&
		    inet_pton(AF_INET6, hop, a) != 1)
			return;
		snprintf(out, outlen, "%s", hop);
		if (!quota_trusted(l, hop) || comma == xff)
			return;
		end = comma - 1;	/* before the comma */
	}
}

/* add delta to the count of key; the entry goes when it reaches 0 */
static struct table_entry *
quota_count(struct table *t, const char *key, int delta, unsigned max,
    int *over)
{
	struct table_entry	*e;
	uintptr_t		 n;

	*over = 0;
	e = table_find(t, key, strlen(key));
	n = e != NULL ? (uintptr_t)e->value : 0;
	if (delta > 0 && max != 0 && n >= max) {
		*over = 1;
		return NULL;
	}
	if (e == NULL && (e = table_insert(t, key, strlen(key))) == NULL)
		return NULL;
	e->value = (void *)(n + 1);
	return e;
}

static void
quota_uncount(struct table *t, struct table_entry *e)
{
	uintptr_t	 n = (uintptr_t)e->value;

	if (n <= 1)
		table_remove(t, e);
	else
		e->value = (void *)(n - 1);
}

const char *
quota_limit_name(enum quota_limit l)
{
	static const char *const names[QUOTA_NLIMITS] = {
		"none", "global", "ip", "user",
	};

	return l < QUOTA_NLIMITS ? names[l] : "unknown";
}

enum quota_limit
quota_acquire(struct quota *l, unsigned max_total, unsigned max_ip,
    unsigned max_user, const char *ip, const char *user,
    struct quota_slot *h)
{
	struct table_entry	*ei = NULL, *eu = NULL;
	int			 over;
	enum quota_limit	 hit = QUOTA_OK;

	memset(h, 0, sizeof(*h));
	pthread_mutex_lock(&l->lock);
	if (max_total != 0 && l->total >= max_total) {
		hit = QUOTA_GLOBAL;
		goto done;
	}
	if ((ei = quota_count(&l->ips, ip, 1, max_ip, &over)) == NULL) {
		hit = over ? QUOTA_IP : QUOTA_GLOBAL;	/* out of memory: refuse */
		goto done;
	}
	if (user != NULL &&
	    (eu = quota_count(&l->users, user, 1, max_user, &over)) == NULL) {
		quota_uncount(&l->ips, ei);
		hit = over ? QUOTA_USER : QUOTA_GLOBAL;
		goto done;
	}
	l->total++;
	h->ip = ei;
	h->user = eu;
	h->taken = 1;
done:
	pthread_mutex_unlock(&l->lock);
	return hit;
}

void
quota_release(struct quota *l, struct quota_slot *h)
{
	if (!h->taken)
		return;
	pthread_mutex_lock(&l->lock);
	quota_uncount(&l->ips, h->ip);
	if (h->user != NULL)
		quota_uncount(&l->users, h->user);
	l->total--;
	pthread_mutex_unlock(&l->lock);
	h->taken = 0;
}
