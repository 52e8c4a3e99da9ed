#!/usr/bin/env bash
# tests/docs.t: the documentation keeps up with the daemon.
#
# Every long option that `sserelay --help` prints is documented in
# man/sserelay.8 and in README.md, every one that is also a configuration
# key has its entry in man/sserelay.conf.5 and its line in
# examples/sserelay.conf, and `mandoc -T lint` finds nothing in either man
# page.  The keys SIGHUP changes live, those --help marks "(reload)", are
# exactly those sserelay.conf.5 marks live and sserelay.8 lists under
# SIGHUP.  --help is generated from the option table (src/options.c), so
# that table is what is checked here.  Read from the sources, so that a
# new one cannot go undocumented: every reset reason (src/hub_history.c
# hub_reset_names) is in man/sserelay.8 and README.md, every /healthz
# field and /metrics name (the rows of src/stats.h, the one list both are
# rendered from) in man/sserelay.8.  TAP output.  Needs SSERELAY (the
# daemon) and TESTS_SRCDIR (the tests/ directory of the source tree), both
# set by make check.
set -u

srcdir=${TESTS_SRCDIR:-$(cd "$(dirname "$0")" && pwd)}
man=$srcdir/../man/sserelay.8
conf=$srcdir/../man/sserelay.conf.5
readme=$srcdir/../README.md
example_conf=$srcdir/../examples/sserelay.conf
hub_c=$srcdir/../src/hub_history.c
stats_h=$srcdir/../src/stats.h
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

# The rows of --help: "NAME LIVE" for each option line ("  -x, --name ..."
# or "      --name ..."), LIVE 1 when its text, which goes on in lines
# indented by 31 blanks, ends with "(reload)".
mapfile -t rows < <(awk '
	function flush() {
		if (name != "")
			print name, (text ~ /\(reload\)$/ ? 1 : 0)
		name = ""
	}
	/^  -[A-Za-z], --[a-z]/ || /^      --[a-z]/ {
		flush()
		match($0, /--[a-z][a-z0-9-]*/)
		name = substr($0, RSTART + 2, RLENGTH - 2)
		text = $0
		sub(/ +$/, "", text)
		next
	}
	name != "" && substr($0, 1, 31) ~ /^ +$/ && substr($0, 32, 1) ~ /[^ ]/ {
		text = text " " $0
		sub(/ +$/, "", text)
		next
	}
	{ flush() }
	END { flush() }' <<<"$help")
opts=() keyrows=()
for row in "${rows[@]}"; do
	name=${row% *}
	opts+=("--$name")
	# every option but these four is also a key of the file
	case $name in config | check-config | version | help) ;; *) keyrows+=("$row") ;; esac
done
if ((${#opts[@]} >= 10)); then
	ok "--help lists ${#opts[@]} long options"
else
	not_ok "--help lists long options (found ${#opts[@]})"
	printf '%s\n' "$help" | diag
fi
nlive=$(printf '%s\n' "${keyrows[@]}" | grep -c ' 1$')
if ((nlive >= 1 && nlive < ${#keyrows[@]})); then
	ok "--help marks $nlive of ${#keyrows[@]} settings (reload)"
else
	not_ok "--help marks some settings (reload) (found $nlive of ${#keyrows[@]})"
fi
if grep -q '^(reload) ' <<<"$help"; then
	ok "--help says what (reload) means"
else
	not_ok "--help says what (reload) means"
fi

for f in "$man" "$conf" "$readme" "$example_conf" "$hub_c" "$stats_h"; do
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
	# "# key value" (commented out, showing the default) or "key value"
	if grep -qE "^(# ?)?${name}( |\$)" "$example_conf" 2>/dev/null; then
		ok "examples/sserelay.conf has the key $name"
	else
		not_ok "examples/sserelay.conf has the key $name"
	fi
done

# The reset reasons, from the array the daemon sends them from.
mapfile -t reasons < <(awk '/hub_reset_names\[[^]]*\] *= *\{/ { on = 1 }
	on { print } on && /\};/ { exit }' "$hub_c" 2>/dev/null |
	grep -oE '"[a-z][a-z0-9-]*"' | tr -d '"')
if ((${#reasons[@]} >= 5)); then
	ok "src/hub_history.c hub_reset_names has ${#reasons[@]} reasons"
else
	not_ok "src/hub_history.c hub_reset_names has reasons (found ${#reasons[@]} in $hub_c)"
fi
for r in "${reasons[@]}"; do
	if grep -qE -- "(^|[^a-z0-9-])${r}([^a-z0-9-]|\$)" "$man" 2>/dev/null; then
		ok "man page documents the reset reason $r"
	else
		not_ok "man page documents the reset reason $r"
	fi
	if grep -qE -- "\`${r}\`" "$readme" 2>/dev/null; then
		ok "README.md documents the reset reason $r"
	else
		not_ok "README.md documents the reset reason $r"
	fi
done

# The /healthz fields and /metrics names: the rows of STATS_FIELDS and
# STATS_FAMILIES in src/stats.h ("X(field, TYPE, GROUP, "key", "name", ..."
# and "X(field, "key", "name", ..."), the list both renderers walk, and the
# five fields every /healthz answer starts with.
rows=$(awk '/^#define STATS_(FIELDS|FAMILIES)\(X\)/ { on = 1 }
	on { print } on && !/\\$/ { on = 0 }' "$stats_h" 2>/dev/null | tr -d '\n\t\\')
mapfile -t fields < <({ printf '%s\n' status redis redis_since_s uptime_s version
	grep -oE 'X\([a-z_]+, (STATS_[A-Z]+, )*"[a-z_]+"' <<<"$rows" |
	sed -E 's/.*"([a-z_]+)"$/\1/'; } | sort -u)
mapfile -t names < <(grep -oE '"sserelay_[a-z_]+"' <<<"$rows" | tr -d '"' | sort -u)
if ((${#fields[@]} >= 20 && ${#names[@]} >= 15)); then
	ok "src/stats.h has ${#fields[@]} /healthz fields and ${#names[@]} metrics"
else
	not_ok "src/stats.h has /healthz fields and metrics (found ${#fields[@]} and ${#names[@]} in $stats_h)"
fi
for fld in "${fields[@]}"; do
	# an item of the list in HEALTH: ".It Li name"
	if grep -qE -- "^\.It Li ${fld}\$" "$man" 2>/dev/null; then
		ok "man page documents the /healthz field $fld"
	else
		not_ok "man page documents the /healthz field $fld"
	fi
done
for m in "${names[@]}" sserelay_delivery_seconds; do
	# an item of the list in METRICS: ".It Li name No type"
	if grep -qE -- "^\.It Li ${m} No " "$man" 2>/dev/null; then
		ok "man page documents the metric $m"
	else
		not_ok "man page documents the metric $m"
	fi
done

# The SIGHUP item of sserelay.8 (up to the next signal): a list item
# ".It Fl -name" for each live key, a ".Fl -name" for the others.
sighup=$(awk '/^\.It Dv SIGHUP/ { on = 1; next } on && /^\.It Dv / { exit }
	on' "$man" 2>/dev/null)
man_live=$(sed -nE 's/^\.It Fl -([a-z-]+).*/\1/p' <<<"$sighup" | sort -u)
man_restart=$(sed -nE 's/^\.Fl -([a-z-]+).*/\1/p' <<<"$sighup" | sort -u)
for row in "${keyrows[@]}"; do
	key=${row% *} live=${row#* }
	# the line after ".It Ic key" is ".Em live ." for a live key
	marked=$(awk -v k="$key" '$1 == ".It" && $2 == "Ic" && $3 == k {
		getline; print ($0 ~ /^\.Em live/) ? 1 : 0; exit }' "$conf" 2>/dev/null)
	what=$([[ $live == 1 ]] && echo "live" || echo "restart-only")
	if [[ $marked == "$live" ]]; then
		ok "sserelay.conf.5 marks $key $what"
	else
		not_ok "sserelay.conf.5 marks $key $what (--help says live=$live)"
	fi
	if [[ $live == 1 ]]; then
		grep -qx -- "$key" <<<"$man_live" && ! grep -qx -- "$key" <<<"$man_restart"
	else
		grep -qx -- "$key" <<<"$man_restart" && ! grep -qx -- "$key" <<<"$man_live"
	fi
	if (($? == 0)); then
		ok "sserelay.8 SIGHUP says $key is $what"
	else
		not_ok "sserelay.8 SIGHUP says $key is $what (--help says live=$live)"
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
