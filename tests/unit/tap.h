/*
 * tap.h - a tiny TAP producer for the unit tests.
 *
 * Each check prints "ok N - desc" or "not ok N - desc" followed by "# "
 * diagnostic lines (file:line, and what was got versus expected).
 * done_testing() prints the plan "1..N" last (allowed by TAP) and returns
 * the exit status: non-zero when any check failed or none ran.
 * Header only: every test program includes it once.
 */
#ifndef SSERELAY_TAP_H
#define SSERELAY_TAP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define TAP_UNUSED	__attribute__((unused))

static int tap_count;
static int tap_fails;

static TAP_UNUSED void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static TAP_UNUSED __attribute__((format(printf, 4, 0))) int
tap_vok(int pass, const char *file, int line, const char *fmt, va_list ap)
{
	tap_count++;
	printf("%sok %d - ", pass ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	printf("\n");
	if (!pass) {
		tap_fails++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

static TAP_UNUSED __attribute__((format(printf, 4, 5))) int
tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(pass, file, line, fmt, ap);
	va_end(ap);
	return r;
}

/* bytes as a C literal, cut after 240 bytes */
static TAP_UNUSED void
tap_dump(const char *label, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i, n = len > 240 ? 240 : len;

	printf("#   %8s: ", label);
	if (s == NULL) {
		printf("NULL\n");
		return;
	}
	printf("(%zu) \"", len);
	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			printf("\\n");
		else if (s[i] == '\r')
			printf("\\r");
		else if (s[i] == '"' || s[i] == '\\')
			printf("\\%c", s[i]);
		else if (s[i] < 0x20 || s[i] >= 0x7f)
			printf("\\x%02x", s[i]);
		else
			putchar(s[i]);
	}
	printf("\"%s\n", n < len ? "..." : "");
}

static TAP_UNUSED __attribute__((format(printf, 6, 7))) int
tap_is_int(long long got, long long exp, const char *gs, const char *file,
    int line, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = tap_vok(got == exp, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		printf("#   %s\n#          got: %lld\n#     expected: %lld\n",
		    gs, got, exp);
	return r;
}

static TAP_UNUSED __attribute__((format(printf, 7, 8))) int
tap_is_mem(const char *file, int line, const void *got, size_t glen,
    const void *exp, size_t elen, const char *fmt, ...)
{
	va_list ap;
	int pass;
	size_t i;

	pass = glen == elen && (elen == 0 || (got != NULL &&
	    memcmp(got, exp, elen) == 0));
	va_start(ap, fmt);
	pass = tap_vok(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		for (i = 0; got && i < glen && i < elen; i++)
			if (((const char *)got)[i] != ((const char *)exp)[i])
				break;
		printf("#   first difference at byte %zu\n", i);
		tap_dump("got", got, glen);
		tap_dump("expected", exp, elen);
	}
	return pass;
}

#define ok(cond, ...)	tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, exp, ...)	tap_is_int((long long)(got),		\
	    (long long)(exp), #got " == " #exp, __FILE__, __LINE__, __VA_ARGS__)
/*
 * is_mem(got, glen, exp, elen, fmt, ...): all variadic so that a macro
 * expanding to "ptr, len" may stand for got/glen or exp/elen.
 */
#define is_mem(...)	tap_is_mem(__FILE__, __LINE__, __VA_ARGS__)
/* NUL-terminated strings; NULL is a failure unless both are NULL */
#define is_str(got, exp, ...)	tap_is_str((got), (exp), __FILE__,	\
	    __LINE__, __VA_ARGS__)

static TAP_UNUSED __attribute__((format(printf, 5, 6))) int
tap_is_str(const char *got, const char *exp, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (got == NULL || exp == NULL)
		pass = got == exp;
	else
		pass = strcmp(got, exp) == 0;
	va_start(ap, fmt);
	pass = tap_vok(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		tap_dump("got", got, got ? strlen(got) : 0);
		tap_dump("expected", exp, exp ? strlen(exp) : 0);
	}
	return pass;
}

static TAP_UNUSED int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_fails)
		printf("# %d of %d checks failed\n", tap_fails, tap_count);
	fflush(stdout);
	return tap_fails != 0 || tap_count == 0;
}

#endif
