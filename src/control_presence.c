/*
 * control_presence.c - presence in Redis, for the control thread: what
 * changed on this instance goes out in one pipelined FCALL per channel
 * per pass, entries are refreshed before --presence-ttl, and a person's
 * last close becomes a leave once --presence-grace is over; with
 * --presence-events a new stream is told who is there (hub_presence.h).
 * See control.c for the thread and control.h for the interface.
 */

#include "autoconf.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "cluster.h"
#include "config.h"
#include "control_int.h"
#include "frame.h"
#include "hub_presence.h"
#include "log.h"
#include "presence.h"
#include "stats.h"
#include "util.h"

/* how join and leave are announced: "" none, PUBLISH or SPUBLISH, or
 * RETURN, for control_announce */
static const char *
control_pub(const struct control *ctl)
{
	if (!ctl->cfg->presence_events)
		return "";
	if (ctl->cfg->history_redis)
		return "RETURN";	/* control_announce publishes them */
	return ctl->cfg->redis_cluster != NULL && !ctl->cfg->cluster_classic ?
	    "SPUBLISH" : "PUBLISH";
}

/* the primary serving a channel's slot, or NULL */
static struct control_node *
control_node_of(struct control *ctl, const char *ch, size_t len)
{
	int	 i;

	if (!ctl->have_map || ctl->nnodes == 1)
		return &ctl->nodes[0];
	i = cluster_map_primary(&ctl->map, ch, len);
	return i >= 0 && (size_t)i < ctl->nnodes ? &ctl->nodes[i] : NULL;
}

void
control_leave_free(struct control_leave *l)
{
	free(l->chan);
	free(l->who);
	free(l);
}

/* who's last stream anywhere closed: a leave unless back within grace */
static void
control_leave_later(struct control *ctl, const char *ch, size_t chlen,
    const char *who, size_t wlen)
{
	struct control_leave	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->chan = malloc(chlen + 1)) == NULL ||
	    (l->who = malloc(wlen + 1)) == NULL) {
		if (l != NULL)
			free(l->chan);
		free(l);
		return;
	}
	memcpy(l->chan, ch, chlen);
	l->chan[chlen] = '\0';
	l->chlen = chlen;
	memcpy(l->who, who, wlen);
	l->who[wlen] = '\0';
	l->wlen = wlen;
	l->due_ms = util_now_ms() + ctl->cfg->presence_grace_s * 1000ULL;
	TAILQ_INSERT_TAIL(&ctl->leaves, l, entry);
}

/*
 * With --history redis a join or leave goes out through FCALL
 * sserelay_publish, so that it has its position in the channel's history
 * like any message: each announcement in said is queued on node (its
 * answer read by control_announced).  -1 when the connection failed.
 */
static int
control_announce(struct control_node *node, const char *ch, size_t chlen,
    const redisReply *said)
{
	const char	*argv[5] = { "FCALL", "sserelay_publish", "1", ch, NULL };
	size_t		 lens[5] = { 5, 16, 1, chlen, 0 };
	size_t		 i;

	if (said == NULL || said->type != REDIS_REPLY_ARRAY)
		return 0;
	for (i = 0; i < said->elements; i++) {
		if (said->element[i]->type != REDIS_REPLY_STRING)
			continue;
		argv[4] = said->element[i]->str;
		lens[4] = said->element[i]->len;
		if (redisAppendCommandArgv(node->cmd, 5, argv, lens) !=
		    REDIS_OK)
			return -1;
		node->announced++;
	}
	return 0;
}

/* the answers to what control_announce queued; -1 when a connection
 * failed */
static int
control_announced(struct control *ctl)
{
	struct control_node	*node;
	redisReply		*r;
	size_t			 i;

	for (i = 0; i < ctl->nnodes; i++) {
		node = &ctl->nodes[i];
		for (; node->announced > 0; node->announced--) {
			if (node->cmd == NULL ||
			    redisGetReply(node->cmd, (void **)&r) != REDIS_OK)
				return -1;
			if (r->type == REDIS_REPLY_ERROR)
				log_warnx("presence: a join or leave was not "
				    "published: %s", r->str);
			freeReplyObject(r);
		}
	}
	return 0;
}

/*
 * FCALL sserelay_presence_set for each channel of u (grouped), with every
 * count 0 when zero: pipelined, one command per channel, then the answers
 * read in order.  -1 when a connection failed.
 */
static int
control_presence_send(struct control *ctl, struct presence_update *u,
    size_t n, int zero)
{
	struct control_node	**sent = NULL, *node;
	size_t			*first = NULL;
	const char		**argv = NULL;
	size_t			*lens = NULL, i, j, k, nsent = 0, argc;
	char			 ttl[24], (*num)[24] = NULL;
	const char		*pub = control_pub(ctl);
	redisReply		*r, *e;
	struct answers_refusal	 refusal;
	int			 ret = -1, moved = 0;

	if (n == 0)
		return 0;
	snprintf(ttl, sizeof(ttl), "%u", ctl->cfg->presence_ttl_s * 1000);
	if ((sent = calloc(n, sizeof(*sent))) == NULL ||
	    (first = calloc(n, sizeof(*first))) == NULL ||
	    (num = calloc(n, sizeof(*num))) == NULL ||
	    (argv = calloc(7 + 2 * n, sizeof(*argv))) == NULL ||
	    (lens = calloc(7 + 2 * n, sizeof(*lens))) == NULL)
		goto done;
	for (i = 0; i < n; i = j) {
		argv[0] = "FCALL";
		argv[1] = "sserelay_presence_set";
		argv[2] = "1";
		argv[3] = u[i].chan;
		argv[4] = ctl->instance;
		argv[5] = ttl;
		argv[6] = pub;
		for (k = 0; k < 7; k++)
			lens[k] = strlen(argv[k]);
		lens[3] = u[i].chlen;
		argc = 7;
		for (j = i; j < n && u[j].chlen == u[i].chlen &&
		    memcmp(u[j].chan, u[i].chan, u[i].chlen) == 0; j++) {
			argv[argc] = u[j].who;
			lens[argc++] = u[j].wlen;
			snprintf(num[j], sizeof(num[j]), "%u",
			    zero ? 0 : u[j].count);
			argv[argc] = num[j];
			lens[argc++] = strlen(num[j]);
		}
		if ((node = control_node_of(ctl, u[i].chan, u[i].chlen)) ==
		    NULL)
			continue;
		if (redisAppendCommandArgv(node->cmd, (int)argc, argv, lens) !=
		    REDIS_OK)
			goto done;
		first[nsent] = i;
		sent[nsent++] = node;
	}
	for (k = 0; k < nsent; k++) {
		if (redisGetReply(sent[k]->cmd, (void **)&r) != REDIS_OK)
			goto done;
		i = first[k];
		if (answers_refusal(r, &refusal) == 0) {
			if (refusal.kind == ANSWERS_MOVED)
				moved = 1;
			log_debug("presence: %s", r->str);
		} else if (r->type == REDIS_REPLY_ARRAY) {
			if (strcmp(pub, "RETURN") == 0 && r->elements == 2) {
				/* {those people, the joins to publish} */
				if (control_announce(sent[k], u[i].chan,
				    u[i].chlen, r->element[1]) == -1) {
					freeReplyObject(r);
					goto done;
				}
				e = r->element[0];
			} else
				e = r;
			/* the people whose last stream anywhere closed */
			for (j = 0; e->type == REDIS_REPLY_ARRAY &&
			    j < e->elements; j++) {
				if (e->element[j]->type == REDIS_REPLY_STRING)
					control_leave_later(ctl, u[i].chan,
					    u[i].chlen, e->element[j]->str,
					    e->element[j]->len);
			}
		}
		freeReplyObject(r);
	}
	if (control_announced(ctl) == -1)
		goto done;
	/* a slot moved: connect again, to the new map, and send it all */
	ret = moved ? -1 : 0;
done:
	free(sent);
	free(first);
	free(num);
	free(argv);
	free(lens);
	return ret;
}

/* the leaves whose grace is over: FCALL sserelay_presence_leave each */
static int
control_presence_leaves(struct control *ctl, uint64_t now)
{
	struct control_leave	*l;
	struct control_node	*node;
	redisReply		*r;
	const char		*argv[6];
	size_t			 lens[6];

	while ((l = TAILQ_FIRST(&ctl->leaves)) != NULL && l->due_ms <= now) {
		TAILQ_REMOVE(&ctl->leaves, l, entry);
		if ((node = control_node_of(ctl, l->chan, l->chlen)) != NULL) {
			argv[0] = "FCALL";
			argv[1] = "sserelay_presence_leave";
			argv[2] = "1";
			argv[3] = l->chan;
			argv[4] = control_pub(ctl);
			argv[5] = l->who;
			lens[0] = 5;
			lens[1] = strlen(argv[1]);
			lens[2] = 1;
			lens[3] = l->chlen;
			lens[4] = strlen(argv[4]);
			lens[5] = l->wlen;
			r = redisCommandArgv(node->cmd, 6, argv, lens);
			if (r == NULL || control_announce(node, l->chan,
			    l->chlen, r) == -1 || control_announced(ctl) == -1) {
				freeReplyObject(r);
				control_leave_free(l);
				return -1;
			}
			freeReplyObject(r);
		}
		control_leave_free(l);
	}
	return 0;
}

/* this instance's entries refreshed, every channel it has anyone on */
static int
control_presence_refresh(struct control *ctl)
{
	char			**names;
	size_t			*lens, n, i;
	int			 r;

	if (presence_channels(&names, &lens, &n) == -1)
		return 0;
	/* a set with no people: only the entry's expiry */
	r = 0;
	for (i = 0; i < n && r == 0; i++) {
		struct control_node	*node;
		const char		*argv[7];
		size_t			 al[7], k;
		char			 ttl[24];

		snprintf(ttl, sizeof(ttl), "%u",
		    ctl->cfg->presence_ttl_s * 1000);
		argv[0] = "FCALL";
		argv[1] = "sserelay_presence_set";
		argv[2] = "1";
		argv[3] = names[i];
		argv[4] = ctl->instance;
		argv[5] = ttl;
		argv[6] = "";
		for (k = 0; k < 7; k++)
			al[k] = strlen(argv[k]);
		al[3] = lens[i];
		if ((node = control_node_of(ctl, names[i], lens[i])) != NULL &&
		    redisAppendCommandArgv(node->cmd, 7, argv, al) !=
		    REDIS_OK)
			r = -1;
	}
	/* the answers, in the order sent on each connection */
	for (i = 0; i < n && r == 0; i++) {
		struct control_node	*node;
		redisReply		*rep;

		if ((node = control_node_of(ctl, names[i], lens[i])) == NULL)
			continue;
		if (redisGetReply(node->cmd, (void **)&rep) != REDIS_OK)
			r = -1;
		else
			freeReplyObject(rep);
	}
	presence_names_free(names, lens, n);
	return r;
}

/*
 * The answer of FCALL sserelay_presence (who, streams, ...; anonymous as
 * "") as "event: presence" to the streams that asked for it.
 */
static void
control_snapshot_give(struct control *ctl, const char *ch, size_t chlen,
    const redisReply *r)
{
	struct frame		*f;
	char			**who;
	size_t			*wlens, i, n = 0;
	unsigned long long	 anonymous = 0;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
		log_warnx("presence: FCALL sserelay_presence: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "an odd answer");
		return;
	}
	if ((who = calloc(r->elements / 2 + 1, sizeof(*who))) == NULL ||
	    (wlens = calloc(r->elements / 2 + 1, sizeof(*wlens))) == NULL) {
		free(who);
		return;
	}
	for (i = 0; i + 1 < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i + 1]->type != REDIS_REPLY_INTEGER ||
		    r->element[i + 1]->integer <= 0)
			continue;
		if (r->element[i]->len == 0)
			anonymous += (unsigned long long)
			    r->element[i + 1]->integer;
		else {
			who[n] = r->element[i]->str;
			wlens[n++] = r->element[i]->len;
		}
	}
	if ((f = frame_presence(ch, chlen, who, wlens, n, anonymous)) != NULL) {
		hub_presence_give(ctl->hub, ch, chlen, f);
		frame_unref(f);
	}
	free(who);
	free(wlens);
}

/*
 * Who is on each channel in names, read (pipelined, one FCALL per
 * channel) after this pass's counts went out, given to the streams that
 * asked (hub_presence_owed).  -1 when a connection failed.
 */
static int
control_snapshots(struct control *ctl, char **names, size_t *lens, size_t n)
{
	struct control_node	*node;
	redisReply		*r;
	const char		*argv[4] = { "FCALL", "sserelay_presence", "1" };
	size_t			 al[4] = { 5, 17, 1 }, i;

	for (i = 0; i < n; i++) {
		if ((node = control_node_of(ctl, names[i], lens[i])) == NULL)
			continue;
		argv[3] = names[i];
		al[3] = lens[i];
		if (redisAppendCommandArgv(node->cmd, 4, argv, al) != REDIS_OK)
			return -1;
	}
	/* the answers, in the order sent on each connection */
	for (i = 0; i < n; i++) {
		if ((node = control_node_of(ctl, names[i], lens[i])) == NULL)
			continue;
		if (redisGetReply(node->cmd, (void **)&r) != REDIS_OK)
			return -1;
		control_snapshot_give(ctl, names[i], lens[i], r);
		freeReplyObject(r);
	}
	return 0;
}

/*
 * One pass: what changed since the last (everything after a (re)connect
 * or when --presence was turned on; zeros when it was turned off), the
 * refresh when due, the leaves whose grace is over.  -1 when a
 * connection failed.
 */
int
control_presence(struct control *ctl, uint64_t now)
{
	struct presence_update	*u;
	char			**names = NULL;
	size_t			 n, *lens = NULL, nnames = 0;
	int			 on = atomic_load(&ctl->cfg->presence) != 0;
	int			 r = 0;

	if (!on && !ctl->presence_sent) {
		/* off: the counts are kept all the same (presence.h), and a
		   take is what drops those that went to 0 */
		presence_take(0, &u, &n);
		presence_updates_free(u, n);
		return 0;
	}
	/* the streams owed a snapshot before the counts (theirs too) go */
	if (on && ctl->cfg->presence_events && hub_presence_owed(ctl->hub,
	    &names, &lens, &nnames) == -1)
		log_warnx("presence: out of memory for the snapshots");
	if (presence_take(!on || !ctl->presence_sent, &u, &n) == -1)
		log_warnx("presence: out of memory taking the changes");
	r = control_presence_send(ctl, u, n, !on);
	presence_updates_free(u, n);
	if (r == 0)
		r = control_snapshots(ctl, names, lens, nnames);
	presence_names_free(names, lens, nnames);
	if (r == -1)
		return -1;
	ctl->presence_sent = on;
	if (!on)
		return 0;
	if (now >= ctl->refresh_ms) {
		ctl->refresh_ms = now + ctl->cfg->presence_ttl_s * 1000 / 3;
		if (control_presence_refresh(ctl) == -1)
			return -1;
	}
	return control_presence_leaves(ctl, now);
}