# The MongoDB backup Job's script, set in the CronJob from templates/backup (`sh -c SCRIPT
# mongodb-backup MODE DIR [KEEP]`). It runs in the backup image (mongodump and a POSIX shell)
# with MONGO_URI from the Secret Rocket.Chat reads (secretKeyRef): it reaches mongodump inside
# the pod only, never Jeeves' command lines or files, and not mongodump's own command line either
# (`ps` on the node shows a container's processes): a private file named by `--config`.
#
# Kubernetes expands a container variable's name in `$(…)`, and a doubled dollar sign, in
# command and args: neither may appear here (`$(cmd)` of anything else is left as written).
#
#   dump DIR KEEP DEADLINE_SECONDS
#                  one `mongodump --archive --gzip` into DIR, then keep the newest KEEP archives
#                  (KEEP 0: none removed, none listed, for the upload container that follows);
#                  first removes what runs killed past the Job's deadline (DEADLINE_SECONDS) left
#   list DIR       the archives in DIR
#   restore DIR NAME
#                  `mongorestore --drop` of DIR/NAME into MONGO_DATABASE when set (operator
#                  mode: Rocket.Chat's, the URI being the admin user's), else the URI's database
#                  (its collections only), with each collection's count before and after
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

# mongosh's script for `dump`: `standalone`, `replica-set NAME`, or `unreadable NS CODE` when
# this user may not read what mongodump --oplog reads. The URI stays in the environment.
topology_probe='// jeeves-probe: topology
const d = connect(process.env.MONGO_URI);
const hello = d.hello();
if (!hello.setName) {
  print("standalone");
} else {
  let answer = "replica-set " + hello.setName;
  for (const [db, coll] of [["config", "transactions"], ["local", "oplog.rs"]]) {
    try {
      d.getSiblingDB(db).getCollection(coll).findOne({}, { _id: 1 });
    } catch (e) {
      if (e.codeName !== "Unauthorized") throw e;
      answer = "unreadable " + db + "." + coll + " Unauthorized";
      break;
    }
  }
  print(answer);
}'

# The URI for a full dump: its database removed, its authSource kept. Without authSource the
# driver authenticates against the URI's database (the connection string spec), so that
# database becomes the explicit authSource. Shell expansions only: the URI is in no argv.
full_dump_uri() {
	scheme=${1%%://*}
	rest=${1#*://}
	hosts=${rest%%/*}
	path=${rest#"$hosts"}
	path=${path#/}
	db=${path%%\?*}
	query=
	case $path in
	*\?*) query=${path#*\?} ;;
	esac
	case "&$query" in
	*"&authSource="*) ;;
	*) [ -z "$db" ] || query="${query:+$query&}authSource=$db" ;;
	esac
	printf '%s://%s/%s%s' "$scheme" "$hosts" "${query:+?}" "$query"
}

# mongosh's script for `restore`: `COLLECTION COUNT` for each collection of the database
# restored (RESTORE_DATABASE, in the environment like the URI).
counts_probe='// jeeves-probe: counts
const d = connect(process.env.MONGO_URI).getSiblingDB(process.env.RESTORE_DATABASE);
d.getCollectionNames().sort().forEach((c) => print(c + " " + d.getCollection(c).countDocuments({})));'

# The URI's database (empty when it names none).
uri_database() {
	rest=${1#*://}
	path=${rest#"${rest%%/*}"}
	path=${path#/}
	printf '%s' "${path%%\?*}"
}

# `jeeves-restore: WHEN COLLECTION COUNT` for each collection of the database restored.
counted() {
	if ! RESTORE_DATABASE=$db mongosh --nodb --quiet --eval "$counts_probe" >"$counts"; then
		echo "jeeves-restore: could not count the collections $1 the restore (mongosh, above)" >&2
		exit 1
	fi
	while read -r collection count; do
		printf 'jeeves-restore: %s %s %s\n' "$1" "$collection" "$count"
	done <"$counts"
}

# The TERM trap of `dump`: mongodump stopped and waited for (still unwaited, it can be
# signalled even if it has just exited), then its partial archive removed.
stopped() {
	kill -TERM "$dumping"
	wait "$dumping" || echo "jeeves-backup: mongodump ended with status $? after SIGTERM" >&2
	rm -f -- "$partial"
	echo "jeeves-backup: stopped by SIGTERM (the Job reached its deadline or was deleted); its partial archive was removed; no archive was written" >&2
	exit 143
}

mode=${1:-}
dir=${2:-}
case $mode in
list)
	list "$dir"
	;;
dump)
	keep=$3
	deadline=$4
	# A run killed at its deadline before this fix could not remove its partial file. A partial
	# older than the Job's deadline belongs to no running Job (the Job controller stops every
	# pod at activeDeadlineSeconds), while a younger one may be a concurrent manual run's.
	stale_minutes=$((deadline / 60 + 1))
	find "$dir" -maxdepth 1 -name '.mongodb-*.archive.gz.partial' -mmin "+$stale_minutes" \
		-exec rm -f -- {} + -exec printf 'jeeves-backup: removed leftover %s\n' {} +
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
	# A point in time needs `mongodump --oplog`, which only a replica set member has, and which
	# reads config.transactions and local.oplog.rs (mongo-tools 100.x, mongodump/oplog_dump.go
	# `determineOplogCollectionName`, `getOplogCopyStartTime`). The server is asked each time
	# (the mode, bundled, operator or external, does not say what an external URI reaches).
	if ! topology=$(mongosh --nodb --quiet --eval "$topology_probe"); then
		echo "jeeves-backup: could not ask the server whether it is a replica set (mongosh, above); no archive was written" >&2
		exit 1
	fi
	oplog=
	uri=$MONGO_URI
	case $topology in
	"replica-set "*)
		oplog=--oplog
		# --oplog wants a full dump, and the URI's database would make it a dump of that
		# database (common/options/options.go `setOptionsFromURI`; mongodump.go
		# `ValidateOptions`: "--oplog mode only supported on full dumps"): a full dump by
		# this user covers the databases it may read (listDatabases' authorizedDatabases).
		uri=$(full_dump_uri "$MONGO_URI")
		echo "jeeves-backup: point in time: mongodump --oplog (${topology})"
		;;
	standalone)
		echo "jeeves-backup: not a point in time: a standalone server has no oplog (writes during the dump may be half in it)"
		;;
	"unreadable "*)
		what=${topology#unreadable }
		echo "jeeves-backup: not a point in time: the backup's user may not read ${what%% *} (${what#* }); give it MongoDB's built-in backup role for mongodump --oplog"
		;;
	*)
		echo "jeeves-backup: mongosh answered \"$topology\" about the server's topology, which this script does not know; no archive was written" >&2
		exit 1
		;;
	esac
	printf "uri: '%s'\n" "$(printf '%s' "$uri" | sed "s/'/''/g")" >"$config"
	# Written aside and renamed once complete: a failed dump never counts as an archive, and
	# retention never removes a good one for it.
	#
	# At the Job's deadline the kubelet has the runtime send SIGTERM to the container's PID 1,
	# this shell, and SIGKILL after the grace period. The kernel drops a signal to a PID
	# namespace's init that has no handler for it (pid_namespaces(7)), and a shell runs its
	# traps only once its foreground command ends, so a plain `mongodump …` here would be
	# killed with the partial file left behind. mongodump therefore runs in the background and
	# the shell waits for it: `wait` returns at once when a trapped signal arrives (POSIX,
	# Shell Command Language 2.11), the trap passes SIGTERM on (mongodump shuts down on its
	# first one: mongo-tools common/signals/signals.go), waits for it and removes the partial.
	# shellcheck disable=SC2086 # $oplog: one flag or none
	mongodump --config="$config" --archive="$partial" --gzip $oplog &
	dumping=$!
	trap stopped TERM
	if ! wait "$dumping"; then
		rm -f -- "$partial"
		echo "jeeves-backup: mongodump failed; no archive was written" >&2
		exit 1
	fi
	trap - TERM
	mv -- "$partial" "$archive"
	if [ "$keep" -eq 0 ]; then
		# Uploaded by the Job's next container, which keeps and lists the archives there.
		printf 'jeeves-backup: dumped %s\n' "${archive##*/}"
		exit 0
	fi
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
restore)
	name=$3
	archive="$dir/$name"
	if [ ! -f "$archive" ]; then
		echo "jeeves-restore: no archive $name in $dir; nothing was restored" >&2
		exit 1
	fi
	db=${MONGO_DATABASE:-}
	[ -n "$db" ] || db=$(uri_database "$MONGO_URI")
	if [ -z "$db" ]; then
		echo "jeeves-restore: the database URI names no database; nothing was restored" >&2
		exit 1
	fi
	umask 077
	config=$(mktemp)
	counts=$(mktemp)
	trap 'rm -f -- "$config" "$counts"' EXIT
	counted before
	# That database only, whatever else the archive holds (a point-in-time dump is a full
	# dump): --nsInclude, with the URI's database moved to authSource, since mongorestore
	# reads a URI's database as the deprecated --db. The archive's oplog is not replayed:
	# mongorestore refuses --oplogReplay with any include, exclude or rename, the URI's
	# database counting as an include ("cannot use --oplogReplay with includes specified":
	# mongo-tools 100.x, mongorestore/mongorestore.go `ParseAndValidateOptions`), so a replay
	# means restoring the whole archive, whose admin database holds the users as they were
	# (a full restore with --drop replaces the live ones: `RestoreUsersOrRoles`), passwords
	# the rebuilt cluster no longer has. Each collection comes back as mongodump read it.
	printf "uri: '%s'\n" "$(full_dump_uri "$MONGO_URI" | sed "s/'/''/g")" >"$config"
	if ! mongorestore --config="$config" --archive="$archive" --gzip --drop --nsInclude="$db.*"; then
		echo "jeeves-restore: mongorestore failed (above); the database may be partly restored" >&2
		counted after
		exit 1
	fi
	counted after
	printf 'jeeves-restore: restored %s into %s\n' "$name" "$db"
	;;
*)
	echo "usage: mongodb-backup dump DIR KEEP DEADLINE_SECONDS | list DIR | restore DIR NAME" >&2
	exit 2
	;;
esac
