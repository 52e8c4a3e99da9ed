/*
 * options.h - the table of every option, one row each, and the typed
 * parsers that read a value into its field of struct config.
 *
 * The command line (getopt_long's arrays), the configuration file, --help,
 * -t and the SIGHUP diff (config.c) all walk the table: adding a setting is
 * one row in options.c plus the code that uses its field.
 *
 * Most settings are one value.  The kinds of channel are not: a row of
 * type OPTIONS_CHANNEL or OPTIONS_CHANNEL_MAX without .kind takes words,
 * NAME=VALUE on the command line ("--channel room=chat:room:") and words
 * apart in the file ("channel room chat:room: 8", options_set_words), and
 * with OPTIONS_REPEAT it may be given any number of times.  A row with
 * .kind is an alias that sets one kind ("--user-prefix u:" is "--channel
 * user=u:").  They all keep their values in struct config's channels
 * (channel.h), which also says what happens when one is given twice.
 *
 * THREADS: only main calls these.  A row marked OPTIONS_LIVE names a field
 * that other threads read without a lock while main writes it on SIGHUP:
 * a number there must be _Atomic unsigned (options_copy panics otherwise).
 */
#ifndef SSERELAY_OPTIONS_H
#define SSERELAY_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

struct config;

enum options_type {
	OPTIONS_COMMAND,	/* command line only (-c, -t, -V, -h): no field,
				   not a key of the file; config.c acts on it */
	OPTIONS_NUMBER,		/* unsigned, .min to .max */
	OPTIONS_MSEC,		/* unsigned milliseconds, .min to .max */
	OPTIONS_SEC,		/* unsigned seconds, .min to .max */
	OPTIONS_BYTES,		/* unsigned bytes, digits only */
	OPTIONS_SEC_FRACTION,	/* seconds with up to three decimals ("0.5"),
				   kept as unsigned milliseconds */
	OPTIONS_SIZE,		/* size_t bytes, suffix k, M or G (1024s) */
	OPTIONS_FLAG,		/* int 0 or 1: yes/no, on/off, true/false, 1/0;
				   --name alone is yes */
	OPTIONS_CHOICE,		/* int: the index of the word in .choices */
	OPTIONS_STRING,		/* char *, a copy; .choices or .check may
				   restrict it */
	OPTIONS_LIST,		/* char *, comma-separated; "none" unsets it */
	OPTIONS_HOSTPORT,	/* HOST:PORT: char * host at .offset, int port
				   at .offset2 */
	OPTIONS_REDIS_URL,	/* struct redis_url (redis_url_parse) */
	OPTIONS_CHANNEL,	/* struct channel_table: a kind's prefix;
				   NAME PREFIX [MAX], or PREFIX with .kind */
	OPTIONS_CHANNEL_MAX,	/* struct channel_table: a kind's maximum,
				   .min to .max; NAME N, or N with .kind */
	OPTIONS_BROADCAST,	/* struct channel_table: a broadcast channel */
};

#define OPTIONS_LIVE	0x1	/* SIGHUP applies it to the running daemon */
#define OPTIONS_NODIFF	0x2	/* a reload compares it through another row
				   (the password file: through redis) */
#define OPTIONS_REPEAT	0x4	/* may be given many times, each adds: the
				   file has no "duplicate key" for it */

struct options_entry {
	const char		*name;		/* --name, and the file's key */
	int			 shortopt;	/* -x, or 0 */
	enum options_type	 type;
	int			 flags;		/* OPTIONS_LIVE, OPTIONS_NODIFF */
	size_t			 offset;	/* its field in struct config */
	size_t			 size;		/* that field's size, checked */
	int			 atomic;	/* that field is _Atomic unsigned */
	size_t			 offset2;	/* HOSTPORT: the int port */
	long long		 min, max;	/* numbers, in the unit kept */
	const char *const	*choices;	/* CHOICE, STRING: NULL-ended */
	const char		*def;		/* the default as typed; NULL:
						   unset (or set by config_init) */
	const char		*shown;		/* --help's [...] when not .def */
	const char		*arg;		/* --help: the value's name */
	const char		*kind;		/* CHANNEL*: the kind an alias
						   sets; NULL: NAME is given */
	const char		*help;		/* --help: what it does */
	/* STRING: a further test of the value; -1 with err set */
	int			(*check)(const char *, char *, size_t);
	/* replaces the type's parser; the type still says how the field
	   is compared, copied and freed */
	int			(*parse)(const struct options_entry *,
				    struct config *, const char *, char *,
				    size_t);
};

/* The table, read-only, and its number of rows. */
const struct options_entry *options_table(size_t *count);
/* The row of a long option or key; NULL if there is none. */
const struct options_entry *options_find(const char *name);

/*
 * Read value into o's field of c.  err gets the problem without the
 * option's name (the caller says "--name" or "FILE:LINE: name").
 */
int	options_set(const struct options_entry *o, struct config *c,
	    const char *value, char *err, size_t errlen);
/*
 * 1 if the file gives o's value as words (NAME PREFIX [MAX]): the caller
 * splits them and calls options_set_words; options_set takes the command
 * line's NAME=VALUE instead.
 */
int	options_takes_words(const struct options_entry *o);
int	options_set_words(const struct options_entry *o, struct config *c,
	    size_t argc, char **argv, char *err, size_t errlen);
/* Every row's default into c (zeroed first by the caller). */
void	options_init(struct config *c);
/* Free what the rows' fields hold. */
void	options_free(struct config *c);
/* 1 if o's setting differs between a and b. */
int	options_differs(const struct options_entry *o, const struct config *a,
	    const struct config *b);
/* SIGHUP: o's value from next into run; o must be OPTIONS_LIVE. */
void	options_copy(const struct options_entry *o, struct config *run,
	    const struct config *next);
/* --help, generated from the table. */
void	options_usage(FILE *fp);

/* A number row's value in c, in the unit kept (ms for SEC_FRACTION). */
long long options_number_get(const struct options_entry *o,
	    const struct config *c);
/* A number as the row's parser reads it: "0.1" (seconds), "64M", "15". */
void	options_number_text(const struct options_entry *o, long long v,
	    char *buf, size_t len);
/* 1 for the types that have .min and .max. */
int	options_is_number(const struct options_entry *o);

#endif
