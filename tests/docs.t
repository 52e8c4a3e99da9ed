#!/usr/bin/env bash
# tests/docs.t: the documentation keeps up with the daemon.
#
# Every long option that `sserelay --help` prints is documented in
# man/sserelay.8 and in README.md, every one that is also a configuration
# key has its entry in man/sserelay.conf.5, and `mandoc -T lint` finds
# nothing in either man page.  TAP output.  Needs SSERELAY (the daemon) and TESTS_SRCDIR (the
# tests/ directory of the source tree), both set by make check.
set -u

srcdir=${TESTS_SRCDIR:-$(cd "$(dirname "$0")" && pwd)}
man=$srcdir/../man/sserelay.8
conf=$srcdir/../man/sserelay.conf.5
readme=$srcdir/../README.md
relay=${SSERELAY:-}

n=0
ok() { n=$((n + 1)); printf 'ok %d - %s\n' "$n" "$1"; }
not_ok() { n=$((n + 1)); printf 'not ok %d - %s\n' "$n" "$1"; }
diag() { sed 's/^/# /'; }
skip() { n=$((n + 1)); printf 'ok %d - %s # SKIP %s\n' "$n" "$1" "$2"; }

if [[ -n $relay && -x $relay ]] && help=$("$relay" --help 2>&1); then
	ok "sserelay --help exits 0"
else
	not_ok "sserelay --help exits 0 (SSERELAY=${relay:-unset})"
	help=
fi

# "--name" tokens of the option column and of the text, once each.
mapfile -t opts < <(grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' <<<"$help" | sort -u)
if ((${#opts[@]} >= 10)); then
	ok "--help lists ${#opts[@]} long options"
else
	not_ok "--help lists long options (found ${#opts[@]})"
	printf '%s\n' "$help" | diag
fi

for f in "$man" "$conf" "$readme"; do
	if [[ -r $f ]]; then ok "${f##*/} is readable"; else not_ok "${f##*/} is readable ($f)"; fi
done

for o in "${opts[@]}"; do
	name=${o#--}
	# mdoc writes the option as "Fl -name" (possibly "Fl l , Fl -name"),
	# or in text/literal blocks as "\-\-name" or "--name".
	if grep -qE -- "(Fl -${name}([^a-z0-9-]|\$)|(\\\\-\\\\-|--)${name}([^a-z0-9-]|\$))" "$man" 2>/dev/null; then
		ok "man page documents $o"
	else
		not_ok "man page documents $o"
	fi
	if grep -qE -- "--${name}([^a-z0-9-]|\$)" "$readme" 2>/dev/null; then
		ok "README.md documents $o"
	else
		not_ok "README.md documents $o"
	fi
	# every option but these four is also a key of the file
	case $name in config | check-config | version | help) continue ;; esac
	if grep -qE "^\.It Ic ${name}( |\$)" "$conf" 2>/dev/null; then
		ok "sserelay.conf.5 documents the key $name"
	else
		not_ok "sserelay.conf.5 documents the key $name"
	fi
done

# mandoc -T lint implies -W style.  Drop only the cross-reference messages
# about .Xr pages (curl(1), redis-server(1)): whether those are found depends
# on the man pages and mandoc.db of the machine, not on this page.
# (sserelay(8) and sserelay.conf(5) refer to each other, and neither is
# installed when the tests run.)
for f in "$man" "$conf"; do
	page=man/${f##*/}
	if command -v mandoc >/dev/null 2>&1; then
		lint=$(mandoc -T lint "$f" 2>&1 |
			grep -vE 'outdated mandoc\.db lacks|referenced manual not found: Xr')
		if [[ -z $lint ]]; then
			ok "mandoc -T lint $page is clean"
		else
			not_ok "mandoc -T lint $page is clean"
			printf '%s\n' "$lint" | diag
		fi
	elif [[ ${SSERELAY_REQUIRE_ALL:-} == 1 ]]; then
		not_ok "mandoc -T lint $page (mandoc not installed: apt-get install mandoc)"
	else
		skip "mandoc -T lint $page" "mandoc not installed"
	fi
done

printf '1..%d\n' "$n"
# failures are the "not ok" lines; a non-zero status would count again as ERROR
exit 0
