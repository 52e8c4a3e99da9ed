#!/bin/sh
# Install the npm packages the real-client tests need (tests/eventsource.t,
# tests/chromium.t, tests/firefox.t, ...) into DIR, outside the source tree:
#
#     tests/js/install.sh DIR
#     export SSERELAY_JS_MODULES=DIR
#
# Copies package.json and package-lock.json into DIR and runs `npm ci` there.
# Does nothing when DIR/node_modules was already installed from the same lock
# file (sha256 stamp). Never downloads a browser: the Chromium tests drive
# Debian's /usr/bin/chromium through playwright-core, the Firefox test
# Debian's /usr/bin/firefox-esr through puppeteer-core (not `puppeteer`,
# whose install step downloads a browser).
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
here=$(cd "$(dirname "$0")" && pwd)

command -v npm >/dev/null 2>&1 || { echo "$0: npm not found (apt-get install npm)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

want=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp=$dir/node_modules/.sserelay-stamp

install_locked() {
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		return 0
	fi
	cp "$here/package.json" "$here/package-lock.json" "$dir/"
	chmod u+w "$dir/package.json" "$dir/package-lock.json"
	(
		cd "$dir"
		PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	)
	echo "$want" >"$stamp"
	echo "$0: installed npm modules into $dir/node_modules" >&2
}

# Serialise concurrent callers (two builds checking at once).
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.install.lock"
	flock 9
fi
install_locked
