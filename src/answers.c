/*
 * answers.c - what Redis answers.  See answers.h.
 *
 * hiredis 0.14 speaks RESP2 only: a pub/sub push is an array whose first
 * element names its kind, and it comes on the same connection as the
 * answers to (un)subscribe commands, which have the same shape.  Strings
 * are binary (a channel or payload may hold NUL): use len, never strlen,
 * but for the words Redis itself writes.
 */
#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cluster.h"
#include "durable.h"
#include "slot.h"

/* the kinds, with where their channel and payload sit */
static const struct {
	const char		*word;
	enum answers_kind	 kind;
	size_t			 elements;	/* exactly */
	size_t			 channel;	/* index */
} answers_kinds[] = {
	{ "message",		ANSWERS_MESSAGE,	3, 1 },
	{ "smessage",		ANSWERS_MESSAGE,	3, 1 },
	{ "pmessage",		ANSWERS_MESSAGE,	4, 2 },
	{ "subscribe",		ANSWERS_SUBSCRIBED,	3, 1 },
	{ "ssubscribe",		ANSWERS_SUBSCRIBED,	3, 1 },
	{ "unsubscribe",	ANSWERS_UNSUBSCRIBED,	3, 1 },
	{ "sunsubscribe",	ANSWERS_UNSUBSCRIBED,	3, 1 },
	{ "psubscribe",		ANSWERS_PSUBSCRIBED,	3, 1 },
};

static int
answers_is_string(const redisReply *r)
{
	return r->type == REDIS_REPLY_STRING ||
	    r->type == REDIS_REPLY_STATUS;
}

int
answers_pubsub(const redisReply *r, struct answers_pubsub *a)
{
	const redisReply	*ch;
	size_t			 i;

	memset(a, 0, sizeof(*a));
	if (r->type == REDIS_REPLY_ERROR) {
		a->kind = ANSWERS_ERROR;
		return 0;
	}
	if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
		a->kind = ANSWERS_PONG;
		return 0;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return -1;
	a->word = r->element[0]->str;
	if (strcmp(a->word, "pong") == 0) {
		a->kind = ANSWERS_PONG;
		return 0;
	}
	for (i = 0; i < sizeof(answers_kinds) / sizeof(answers_kinds[0]); i++)
		if (strcmp(a->word, answers_kinds[i].word) == 0)
			break;
	if (i == sizeof(answers_kinds) / sizeof(answers_kinds[0]) ||
	    r->elements != answers_kinds[i].elements)
		return -1;
	ch = r->element[answers_kinds[i].channel];
	if (ch->type != REDIS_REPLY_STRING)
		return -1;
	a->channel = ch->str;
	a->channel_len = ch->len;
	if (answers_kinds[i].kind == ANSWERS_MESSAGE) {
		/* the payload is last */
		ch = r->element[r->elements - 1];
		if (ch->type != REDIS_REPLY_STRING)
			return -1;
		a->payload = ch->str;
		a->payload_len = ch->len;
	}
	a->kind = answers_kinds[i].kind;
	return 0;
}

/* "MOVED 3999 127.0.0.1:6381", "ASK 3999 :6381" (the node asked) */
static int
answers_redirect(const char *s, struct answers_refusal *a)
{
	const char	*colon, *sp;
	char		*end;
	unsigned long	 slot;
	long		 port;

	slot = strtoul(s, &end, 10);
	if (end == s || *end != ' ' || slot >= SLOT_COUNT)
		return -1;
	sp = end + 1;
	if ((colon = strrchr(sp, ':')) == NULL ||
	    (size_t)(colon - sp) >= sizeof(a->host))
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		return -1;
	memcpy(a->host, sp, (size_t)(colon - sp));
	a->host[colon - sp] = '\0';
	a->slot = (unsigned)slot;
	a->port = (int)port;
	return 0;
}

int
answers_refusal(const redisReply *r, struct answers_refusal *a)
{
	size_t	 n;

	memset(a, 0, sizeof(*a));
	if (r->type != REDIS_REPLY_ERROR)
		return -1;
	a->text = r->str;
	n = strcspn(r->str, " ");
	if (n >= sizeof(a->code))
		n = sizeof(a->code) - 1;
	memcpy(a->code, r->str, n);
	a->code[n] = '\0';
	if (strcmp(a->code, "MOVED") == 0)
		a->kind = ANSWERS_MOVED;
	else if (strcmp(a->code, "ASK") == 0)
		a->kind = ANSWERS_ASK;
	else
		return 0;
	a->redirect_ok = r->str[n] == ' ' &&
	    answers_redirect(r->str + n + 1, a) == 0;
	return 0;
}

int
answers_role_master(const redisReply *r, const char **said)
{
	*said = "no ROLE";
	if (r->type == REDIS_REPLY_ERROR)
		*said = r->str;
	else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING) {
		*said = r->element[0]->str;
		if (strcmp(*said, "master") == 0)
			return 0;
	}
	return -1;
}

int
answers_library_version(const redisReply *r, const char *version,
    const char **other)
{
	*other = NULL;
	if (!answers_is_string(r))
		return -1;
	if (strcmp(r->str, version) == 0)
		return 0;
	*other = r->str;
	return -1;
}

int
answers_cluster_slots(struct cluster_map *m, const redisReply *r,
    const char *asked_host, char *err, size_t errlen)
{
	struct cluster_map	 next;
	const redisReply	*e, *node;
	long long		 start, end;
	size_t			 i;

	if (r->type == REDIS_REPLY_ERROR)
		return util_err(err, errlen, "%s", r->str);
	if (r->type != REDIS_REPLY_ARRAY)
		return util_err(err, errlen, "CLUSTER SLOTS: not an array");
	cluster_map_init(&next);
	for (i = 0; i < r->elements; i++) {
		e = r->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER ||
		    e->element[2]->type != REDIS_REPLY_ARRAY ||
		    e->element[2]->elements < 2)
			goto bad;
		start = e->element[0]->integer;
		end = e->element[1]->integer;
		node = e->element[2];
		if (start < 0 || end >= SLOT_COUNT || start > end ||
		    node->element[0]->type != REDIS_REPLY_STRING ||
		    node->element[1]->type != REDIS_REPLY_INTEGER ||
		    node->element[0]->len >= UTIL_HOST_MAX ||
		    node->element[1]->integer < 1 ||
		    node->element[1]->integer > 65535)
			goto bad;
		if (node->element[0]->len == 1 && node->element[0]->str[0] ==
		    '?')
			continue;	/* no endpoint known yet */
		if (cluster_map_add(&next, (unsigned)start, (unsigned)end,
		    node->element[0]->len ? node->element[0]->str : asked_host,
		    (int)node->element[1]->integer) == -1) {
			cluster_map_free(&next);
			return util_err(err, errlen, "out of memory");
		}
	}
	cluster_map_free(m);
	*m = next;
	return 0;
bad:
	cluster_map_free(&next);
	return util_err(err, errlen, "CLUSTER SLOTS: an entry not of the "
	    "form [start, end, [host, port, ...], ...]");
}

static int
answers_number(const redisReply *e, uint64_t *v)
{
	char		*end;
	char		 buf[32];

	if (e->type != REDIS_REPLY_STRING || e->len == 0 ||
	    e->len >= sizeof(buf) || e->str[0] < '0' || e->str[0] > '9')
		return -1;
	memcpy(buf, e->str, e->len);
	buf[e->len] = '\0';
	*v = strtoull(buf, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int
answers_history(struct durable_read *r, size_t i, const redisReply *rep)
{
	struct durable_chan	*c = &r->chans[i];
	struct durable_entry	*en;
	const redisReply	*d;
	const char		*st;
	size_t			 k, n;

	durable_chan_clear(c);
	memset(&c->now, 0, sizeof(c->now));
	c->status = DURABLE_FAILED;
	if (rep->type == REDIS_REPLY_ERROR)
		return 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    (rep->elements - 3) % 3 != 0 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING)
		return -1;
	st = rep->element[0]->str;
	if (rep->element[1]->len > 0) {
		if (position_epoch(rep->element[1]->str, rep->element[1]->len,
		    &c->now.epoch) == -1 || answers_number(rep->element[2],
		    &c->now.offset) == -1)
			goto bad;
		c->now.known = 1;
	}
	n = (rep->elements - 3) / 3;
	if (n > 0 && (c->entries = calloc(n, sizeof(*c->entries))) == NULL)
		goto bad;
	for (k = 0; k < n; k++) {
		d = rep->element[3 + 3 * k + 2];
		en = &c->entries[k];
		if (answers_number(rep->element[3 + 3 * k], &en->offset) ==
		    -1 || answers_number(rep->element[3 + 3 * k + 1],
		    &en->time_us) == -1 || d->type != REDIS_REPLY_STRING ||
		    (en->data = malloc(d->len + 1)) == NULL)
			goto bad;
		memcpy(en->data, d->str, d->len);
		en->data[d->len] = '\0';
		en->len = d->len;
		c->nentries = k + 1;
	}
	c->status = strcmp(st, "ok") == 0 ? DURABLE_OK :
	    strcmp(st, "epoch") == 0 ? DURABLE_EPOCH :
	    strcmp(st, "trimmed") == 0 ? DURABLE_TRIMMED :
	    strcmp(st, "ahead") == 0 ? DURABLE_AHEAD : DURABLE_FAILED;
	return 0;
bad:
	durable_chan_clear(c);
	c->status = DURABLE_FAILED;
	return -1;
}

enum answers_master
answers_sentinel_master(const redisReply *r, char *host, size_t hostlen,
    int *port)
{
	char	 buf[8], *end;
	long	 p;

	if (r->type == REDIS_REPLY_NIL)
		return ANSWERS_MASTER_UNKNOWN;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len == 0 || r->element[0]->len >= hostlen ||
	    r->element[1]->len == 0 || r->element[1]->len >= sizeof(buf))
		return ANSWERS_MASTER_BAD;
	memcpy(buf, r->element[1]->str, r->element[1]->len);
	buf[r->element[1]->len] = '\0';
	p = strtol(buf, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return ANSWERS_MASTER_BAD;
	memcpy(host, r->element[0]->str, r->element[0]->len);
	host[r->element[0]->len] = '\0';
	*port = (int)p;
	return ANSWERS_MASTER_AT;
}

int
answers_switch_master(const char *payload, size_t len,
    struct answers_switch *s)
{
	char	 buf[1024], extra;

	if (len >= sizeof(buf) || memchr(payload, '\0', len) != NULL)
		return -1;
	memcpy(buf, payload, len);
	buf[len] = '\0';
	/* UTIL_HOST_MAX is 256: %255s */
	if (sscanf(buf, "%255s %255s %d %255s %d %c", s->name, s->from,
	    &s->from_port, s->to, &s->to_port, &extra) != 5 ||
	    s->from_port < 1 || s->from_port > 65535 ||
	    s->to_port < 1 || s->to_port > 65535)
		return -1;
	return 0;
}
