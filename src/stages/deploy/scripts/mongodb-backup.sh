# The MongoDB backup Job's script, set in the CronJob from templates/backup (`sh -c SCRIPT
# mongodb-backup MODE DIR [KEEP]`). It runs in the backup image (mongodump and a POSIX shell)
# with MONGO_URI from the Secret Rocket.Chat reads (secretKeyRef): it reaches mongodump inside
# the pod only, never Jeeves' command lines or files, and not mongodump's own command line either
# (`ps` on the node shows a container's processes): a private file named by `--config`.
#
# Kubernetes expands a container variable's name in `$(…)`, and a doubled dollar sign, in
# command and args: neither may appear here (`$(cmd)` of anything else is left as written).
#
#   dump DIR KEEP  one `mongodump --archive --gzip` into DIR, then keep the newest KEEP archives
#   list DIR       the archives in DIR
#
# Every archive is listed as `jeeves-backup: archive NAME BYTES` (`jeeves backup` reads these
# lines from the Job's log); NAME holds the UTC time the dump started, so names sort by age.
set -eu

list() {
	count=0
	for f in "$1"/mongodb-*.archive.gz; do
		[ -e "$f" ] || continue
		count=$((count + 1))
		printf 'jeeves-backup: archive %s %s\n' "${f##*/}" "$(wc -c <"$f")"
	done
	printf 'jeeves-backup: %s archive(s) in %s\n' "$count" "$1"
}

mode=${1:-}
dir=${2:-}
case $mode in
list)
	list "$dir"
	;;
dump)
	keep=$3
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	archive="$dir/mongodb-$stamp.archive.gz"
	partial="$dir/.mongodb-$stamp.archive.gz.partial"
	if [ -e "$archive" ]; then
		echo "jeeves-backup: $archive already exists (a backup started in the same second); nothing was written" >&2
		exit 1
	fi
	# The URI in a file only this user may read, written by shell builtins (printf; sed reads it
	# on its standard input), removed on exit. mongodump reads `uri` from the YAML file named by
	# --config (mongodb/mongo-tools 100.x, common/options/options.go ParseConfigFile), as its own
	# warning against a URI on the command line advises. YAML single quotes: a quote inside is
	# doubled.
	umask 077
	config=$(mktemp)
	trap 'rm -f -- "$config"' EXIT
	printf "uri: '%s'\n" "$(printf '%s' "$MONGO_URI" | sed "s/'/''/g")" >"$config"
	# Written aside and renamed once complete: a failed dump never counts as an archive, and
	# retention never removes a good one for it.
	if ! mongodump --config="$config" --archive="$partial" --gzip; then
		rm -f -- "$partial"
		echo "jeeves-backup: mongodump failed; no archive was written" >&2
		exit 1
	fi
	mv -- "$partial" "$archive"
	printf 'jeeves-backup: wrote %s\n' "${archive##*/}"
	# The glob sorts oldest first: remove from the front until KEEP remain.
	set -- "$dir"/mongodb-*.archive.gz
	excess=$(($# - keep))
	for f in "$@"; do
		[ "$excess" -gt 0 ] || break
		rm -- "$f"
		printf 'jeeves-backup: removed %s\n' "${f##*/}"
		excess=$((excess - 1))
	done
	list "$dir"
	;;
*)
	echo "usage: mongodb-backup dump DIR KEEP | list DIR" >&2
	exit 2
	;;
esac
