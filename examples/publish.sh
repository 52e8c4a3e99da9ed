#!/bin/sh
# publish.sh: simulate an upload with redis-cli, the way an application would
# report progress to sserelay: PUBLISH upload:<id> {"pct":0} .. {"pct":100}
# in steps of 10, then PUBLISH user:<id> a notification that it finished.
# With -r ROOM it then says so in a chat room too, PUBLISH chat:room:<ROOM>
# {"type":"chat","user":USER,"text":...} (the channel of ?room=ROOM with
# sserelay --channel room=chat:room:), and with -b TEXT it ends with a banner
# for every browser, PUBLISH notifications:broadcast
# {"type":"broadcast","text":TEXT} (sserelay --broadcast
# notifications:broadcast).  -R PREFIX and -B CHANNEL change those channels.
#
#     examples/publish.sh [-D] [-u URL | -h HOST] [-p PORT] [-d DELAY_MS]
#         [-r ROOM] [-R PREFIX] [-b TEXT] [-B CHANNEL] [UPLOAD] [USER]
#
# -D publishes durably, for sserelay --history redis: FCALL sserelay_publish
# 1 <channel> <payload> instead of PUBLISH, so the message is kept in Redis
# and a client resumes on any instance (it prints the message's position).
#
# UPLOAD defaults to u7, USER to alice. The Redis server is REDIS_URL
# (default redis://127.0.0.1:6379), or -u URL, or -h/-p as in redis-cli.
# DELAY_MS (env or -d, default 300) is the pause between two progress steps.
# Watch it in a browser (sserelay --demo, then open
# http://127.0.0.1:8080/?user=alice&upload=u7) or with
#     curl -N 'http://127.0.0.1:8080/events?user=alice&upload=u7'
# Exits non-zero on any error (Redis unreachable, error reply, bad argument).
set -eu

prog=${0##*/}
url=${REDIS_URL:-redis://127.0.0.1:6379}
host=
port=
delay=${DELAY_MS:-300}
durable=
room=
room_prefix=chat:room:
banner=
banner_set=
banner_channel=notifications:broadcast

usage() {
	echo "usage: $prog [-D] [-u URL | -h HOST] [-p PORT] [-d DELAY_MS] [-r ROOM] [-R PREFIX] [-b TEXT] [-B CHANNEL] [UPLOAD] [USER]" >&2
	exit 2
}
die() {
	echo "$prog: $*" >&2
	exit 1
}

while getopts Du:h:p:d:r:R:b:B: opt; do
	case $opt in
	D) durable=1 ;;
	u) url=$OPTARG ;;
	h) host=$OPTARG ;;
	p) port=$OPTARG ;;
	d) delay=$OPTARG ;;
	r) room=$OPTARG ;;
	R) room_prefix=$OPTARG ;;
	b) banner=$OPTARG banner_set=1 ;;
	B) banner_channel=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -le 2 ] || usage
upload=${1:-u7}
user=${2:-alice}

command -v redis-cli >/dev/null 2>&1 ||
	die "redis-cli not found (Debian: apt-get install redis-tools)"

# The ids sserelay accepts: 1..128 bytes of [A-Za-z0-9._:@-] (so they also
# need no quoting inside the JSON below).
valid_id() {
	case $1 in
	'' | *[!A-Za-z0-9._:@-]*) return 1 ;;
	esac
	[ ${#1} -le 128 ]
}
valid_id "$upload" || die "invalid upload id '$upload' (1..128 of A-Za-z0-9._:@-)"
valid_id "$user" || die "invalid user id '$user' (1..128 of A-Za-z0-9._:@-)"
[ -z "$room" ] || valid_id "$room" || die "invalid room id '$room' (1..128 of A-Za-z0-9._:@-)"
[ -n "$banner_channel" ] || die "the broadcast channel must not be empty"
case $banner in
*[[:cntrl:]]*) die "the banner text must be one line without control characters" ;;
esac
case $delay in
'' | *[!0-9]*) die "DELAY_MS must be a number of milliseconds, not '$delay'" ;;
esac
pause=$(awk -v ms="$delay" 'BEGIN { printf "%.3f", ms / 1000 }')

# -h/-p given: talk to that host/port, as redis-cli does; else the URL.
if [ -n "$host$port" ]; then
	set -- -h "${host:-127.0.0.1}" -p "${port:-6379}"
	where="${host:-127.0.0.1}:${port:-6379}"
else
	# redis-cli sends AUTH "" PASS for redis://:PASS@host; Redis wants the
	# user "default" there (as redis-py and node-redis do by themselves).
	case $url in
	redis://:*@* | rediss://:*@*) url="${url%%://*}://default${url#*://}" ;;
	esac
	set -- -u "$url"
	# Never print the password.
	where=$(printf '%s\n' "$url" | sed 's#^\([a-z]*://[^:/@]*\):[^@/]*@#\1:***@#')
fi

# TEXT as a JSON string: quotes and backslashes escaped (control characters
# are refused above, so sed is enough).
json_string() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}

# PUBLISH CHANNEL PAYLOAD; prints what it did and how many subscribers got
# it.  Durably (-D): FCALL sserelay_publish, which answers the position.
publish() {
	if [ -n "$durable" ]; then
		n=$(redis-cli --no-auth-warning "$@" FCALL sserelay_publish 1 \
		    "$ch" "$msg" 2>&1) || die "FCALL $ch failed on $where: $n"
		case $n in
		*[!0-9a-f:]* | '') die "FCALL $ch failed on $where: $n" ;;
		esac
		echo "FCALL sserelay_publish 1 $ch $msg -> position $n"
		return
	fi
	n=$(redis-cli --no-auth-warning "$@" PUBLISH "$ch" "$msg" 2>&1) ||
		die "PUBLISH $ch failed on $where: $n"
	case $n in
	'' | *[!0-9]*) die "PUBLISH $ch failed on $where: $n" ;;
	esac
	echo "PUBLISH $ch $msg -> $n subscriber(s)"
}

echo "$prog: upload $upload of user $user on $where, ${delay} ms per step"
pct=0
while [ $pct -le 100 ]; do
	ch="upload:$upload" msg="{\"pct\":$pct}"
	publish "$@"
	[ $pct -eq 100 ] || sleep "$pause"
	pct=$((pct + 10))
done
ch="user:$user" msg="{\"type\":\"notification\",\"text\":\"Upload $upload finished\"}"
publish "$@"
if [ -n "$room" ]; then
	ch="$room_prefix$room"
	msg="{\"type\":\"chat\",\"user\":\"$user\",\"text\":\"Upload $upload finished\"}"
	publish "$@"
fi
if [ -n "$banner_set" ]; then
	ch=$banner_channel msg="{\"type\":\"broadcast\",\"text\":$(json_string "$banner")}"
	publish "$@"
fi
