/*
 * test_sse.c - the pure SSE encoder (sse.h): sbuf growth and every field.
 *
 * Payloads are binary: every check compares lengths and bytes, never
 * strlen, so a NUL or an invalid UTF-8 byte that gets lost or truncated
 * shows up as a length mismatch.
 */
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "tap.h"

/* a string literal and its length, NULs included */
#define L(s)	(s), (sizeof(s) - 1)

static void
data_case(const char *in, size_t inlen, const char *exp, size_t explen,
    const char *desc)
{
	struct sbuf b;
	int rc;

	sbuf_init(&b);
	rc = sse_data(&b, in, inlen);
	is_int(rc, 0, "sse_data %s: returns 0", desc);
	is_mem(b.data, b.len, exp, explen, "sse_data %s: bytes", desc);
	sbuf_free(&b);
}

static void
test_sbuf(void)
{
	struct sbuf b;
	unsigned char *exp;
	size_t n = 100003, off, chunk;
	char big[5001];
	int bad = 0;

	sbuf_init(&b);
	is_int(b.len, 0, "sbuf_init: empty");

	exp = malloc(n);
	for (off = 0; off < n; off++)
		exp[off] = (unsigned char)(off * 31 % 251);	/* NULs too */
	for (off = 0, chunk = 1; off < n; off += chunk, chunk = chunk % 97 + 1) {
		if (chunk > n - off)
			chunk = n - off;
		if (sbuf_add(&b, exp + off, chunk) != 0)
			bad++;
	}
	is_int(bad, 0, "sbuf_add: 100003 bytes in odd chunks all succeed");
	ok(b.cap >= b.len, "sbuf: cap >= len");
	is_mem(b.data, b.len, exp, n, "sbuf_add: grown buffer holds every byte");
	free(exp);

	is_int(sbuf_add(&b, "", 0), 0, "sbuf_add of 0 bytes: returns 0");
	is_int(b.len, n, "sbuf_add of 0 bytes: length unchanged");

	sbuf_reset(&b);
	is_int(b.len, 0, "sbuf_reset: empty again");
	is_int(sbuf_addstr(&b, "hello"), 0, "sbuf_addstr: returns 0");
	is_int(sbuf_add(&b, L("\0x")), 0, "sbuf_add with a NUL: returns 0");
	is_mem(b.data, b.len, L("hello\0x"), "sbuf_reset then add: contents");

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sbuf_reset(&b);
	sbuf_addstr(&b, "<");
	is_int(sbuf_printf(&b, "%s-%d", big, 42), 0,
	    "sbuf_printf: longer than any small initial capacity");
	ok(b.len == 1 + 5000 + 3 && b.data[0] == '<' &&
	    b.data[1] == 'z' && b.data[5000] == 'z' &&
	    memcmp(b.data + 5001, "-42", 3) == 0,
	    "sbuf_printf: appends the formatted text (len %zu)", b.len);
	sbuf_free(&b);

	/* a freed buffer can be initialised and used again */
	sbuf_init(&b);
	sbuf_printf(&b, "%u", 7u);
	is_mem(b.data, b.len, L("7"), "sbuf_printf into a fresh buffer");
	sbuf_free(&b);
}

static void
test_data(void)
{
	data_case(L("hello"), L("data: hello\n"), "one line");
	data_case(L("a\nb"), L("data: a\ndata: b\n"), "LF");
	data_case(L("a\rb"), L("data: a\ndata: b\n"), "CR");
	data_case(L("a\r\nb"), L("data: a\ndata: b\n"),
	    "CRLF is one line break");
	data_case(L("a\nb\r\nc\rd"),
	    L("data: a\ndata: b\ndata: c\ndata: d\n"), "mixed LF CRLF CR");
	data_case(L("a\r\rb"), L("data: a\ndata: \ndata: b\n"),
	    "CR CR is two breaks");
	data_case(L("a\n\r\nb"), L("data: a\ndata: \ndata: b\n"),
	    "LF CRLF is two breaks");
	data_case(L("a\n\rb"), L("data: a\ndata: \ndata: b\n"),
	    "LF CR is two breaks (not a CRLF)");
	/*
	 * A client joins data lines with LF and drops only the last LF of
	 * the event, so keeping a trailing line break of the payload needs
	 * one more, empty, data line.  Same rule that makes an empty
	 * payload one "data: " line.
	 */
	data_case(L("a\n"), L("data: a\ndata: \n"),
	    "trailing LF: an empty last line");
	data_case(L("a\r\n"), L("data: a\ndata: \n"),
	    "trailing CRLF: an empty last line");
	data_case(L("\n"), L("data: \ndata: \n"), "a lone LF");
	data_case(L(""), L("data: \n"), "empty payload: one \"data: \" line");
	data_case(L("a\0b"), L("data: a\0b\n"), "NUL copied as-is");
	data_case(L("\0"), L("data: \0\n"), "a lone NUL");
	data_case(L("\xff\xfe\xc3(\xe2\x82"), L("data: \xff\xfe\xc3(\xe2\x82\n"),
	    "invalid UTF-8 copied as-is");
	data_case(L("h\xc3\xa9 \xf0\x9f\x98\x80"),
	    L("data: h\xc3\xa9 \xf0\x9f\x98\x80\n"), "UTF-8 copied as-is");
	data_case(L("x\0\ny"), L("data: x\0\ndata: y\n"),
	    "NUL before a line break");
	data_case(L(" lead"), L("data:  lead\n"),
	    "leading space kept after the separator space");
	data_case(L(":not a comment"), L("data: :not a comment\n"),
	    "a colon-led line stays data");

	/* appends: does not reset what is already there */
	{
		struct sbuf b;

		sbuf_init(&b);
		sbuf_addstr(&b, "X");
		sse_data(&b, L("1\n2"));
		sse_data(&b, L("3"));
		is_mem(b.data, b.len, L("Xdata: 1\ndata: 2\ndata: 3\n"),
		    "sse_data appends to the buffer");
		sbuf_free(&b);
	}

	/* a large binary payload: line count and bytes */
	{
		struct sbuf b, e;
		char *p;
		size_t i, n = 65536, start;

		p = malloc(n);
		for (i = 0; i < n; i++)
			p[i] = (char)((i * 7919 + 13) % 256);
		sbuf_init(&b);
		sbuf_init(&e);
		/* the expectation, built independently of sse_data */
		sbuf_addstr(&e, "data: ");
		for (i = 0, start = 0; i <= n; i++) {
			if (i == n) {
				sbuf_add(&e, p + start, i - start);
				sbuf_addstr(&e, "\n");
			} else if (p[i] == '\r' || p[i] == '\n') {
				sbuf_add(&e, p + start, i - start);
				sbuf_addstr(&e, "\ndata: ");
				if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
					i++;
				start = i + 1;
			}
		}
		is_int(sse_data(&b, p, n), 0, "sse_data 64 KiB binary: rc");
		is_mem(b.data, b.len, e.data, e.len,
		    "sse_data 64 KiB binary: bytes");
		sbuf_free(&b);
		sbuf_free(&e);
		free(p);
	}
}

static void
test_fields(void)
{
	struct sbuf b;

	sbuf_init(&b);
	is_int(sse_id(&b, L("a1b2c3d4-7")), 0, "sse_id: returns 0");
	is_mem(b.data, b.len, L("id: a1b2c3d4-7\n"), "sse_id: bytes");

	sbuf_reset(&b);
	sbuf_addstr(&b, "K");
	is_int(sse_id(&b, L("a\nb")), -1, "sse_id with LF: -1");
	is_int(sse_id(&b, L("a\rb")), -1, "sse_id with CR: -1");
	is_int(sse_id(&b, L("a\0b")), -1, "sse_id with NUL: -1");
	is_int(sse_id(&b, L("\n")), -1, "sse_id of a lone LF: -1");
	is_mem(b.data, b.len, L("K"),
	    "a rejected id leaves the buffer as it was (no half line)");

	sbuf_reset(&b);
	is_int(sse_event(&b, "upload"), 0, "sse_event: returns 0");
	is_mem(b.data, b.len, L("event: upload\n"), "sse_event: bytes");
	is_int(sse_event(&b, "a\nb"), -1, "sse_event with LF: -1");
	is_int(sse_event(&b, "a\rb"), -1, "sse_event with CR: -1");

	sbuf_reset(&b);
	is_int(sse_retry(&b, 3000), 0, "sse_retry: returns 0");
	is_mem(b.data, b.len, L("retry: 3000\n"), "sse_retry 3000: bytes");
	sbuf_reset(&b);
	sse_retry(&b, 0);
	is_mem(b.data, b.len, L("retry: 0\n"), "sse_retry 0: bytes");
	sbuf_reset(&b);
	sse_retry(&b, 4294967295UL);
	is_mem(b.data, b.len, L("retry: 4294967295\n"),
	    "sse_retry large: digits only");

	sbuf_reset(&b);
	is_int(sse_comment(&b, "ping"), 0, "sse_comment: returns 0");
	is_mem(b.data, b.len, L(": ping\n"), "sse_comment ping: bytes");
	sbuf_reset(&b);
	sse_comment(&b, "sserelay");
	is_mem(b.data, b.len, L(": sserelay\n"), "sse_comment sserelay");
	sbuf_reset(&b);
	sse_comment(&b, "a\nb\r\nc\rd");
	is_mem(b.data, b.len, L(": a\n: b\n: c\n: d\n"),
	    "sse_comment multi-line: one comment line per line");

	sbuf_reset(&b);
	is_int(sse_end(&b), 0, "sse_end: returns 0");
	is_mem(b.data, b.len, L("\n"), "sse_end: one blank line");

	/* a whole event, as the stream opening and a message look */
	sbuf_reset(&b);
	sse_retry(&b, 3000);
	sse_comment(&b, "sserelay");
	sse_end(&b);
	sse_id(&b, L("0000abcd-1"));
	sse_data(&b, L("x\ny"));
	sse_end(&b);
	is_mem(b.data, b.len,
	    L("retry: 3000\n: sserelay\n\nid: 0000abcd-1\ndata: x\ndata: y\n\n"),
	    "opening + one event: bytes");
	sbuf_free(&b);
}

int
main(void)
{
	test_sbuf();
	test_data();
	test_fields();
	return done_testing();
}
