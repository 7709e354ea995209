# The S3 upload of the MongoDB backup Job, set in the CronJob from templates/backup with
# `destination = "s3"` (`sh -c SCRIPT mongodb-backup-upload upload DIR BUCKET PREFIX KEEP`). It
# runs in the upload image (the aws CLI and a POSIX shell) after the Job's init container has
# dumped one archive into DIR (an emptyDir both mount), with the bucket's credentials from the
# node's instance profile or from the environment (a Secret, by secretKeyRef), and the S3
# endpoint, elsewhere than AWS, from AWS_ENDPOINT_URL_S3 (read by the aws CLI itself).
#
#   upload DIR BUCKET PREFIX KEEP  copy DIR's archive to s3://BUCKET/PREFIX/, then keep the
#                                  newest KEEP archives there
#   download DIR BUCKET PREFIX NAME
#                                  copy s3://BUCKET/PREFIX/NAME into DIR (for a restore)
#
# Every archive is listed as `jeeves-backup: archive NAME BYTES`, as the volume's script lists
# them; names hold the UTC time the dump started, so they sort by age.
set -eu

# The archives under the prefix, oldest first, one `NAME<TAB>BYTES` a line (the CLI's text
# output of the query; `None` when there are none; the CLI follows continuation tokens itself).
archives() {
	aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix/mongodb-" \
		--query 'Contents[].[Key, Size]' --output text >"$listing"
	tab=$(printf '\t')
	while IFS=$tab read -r key bytes; do
		name=${key#"$prefix/"}
		case $name in
		mongodb-*.archive.gz) printf '%s\t%s\n' "$name" "$bytes" ;;
		esac
	done <"$listing" | sort
}

if [ "${1:-}" = download ] && [ $# -eq 5 ]; then
	if ! aws s3 cp --only-show-errors "s3://$3/$4/$5" "$2/$5"; then
		echo "jeeves-restore: could not download s3://$3/$4/$5 (aws, above); nothing was restored" >&2
		exit 1
	fi
	printf 'jeeves-restore: downloaded %s (%s bytes)\n' "$5" "$(wc -c <"$2/$5")"
	exit 0
fi
if [ "${1:-}" != upload ] || [ $# -ne 5 ]; then
	echo "usage: mongodb-backup-upload upload DIR BUCKET PREFIX KEEP | download DIR BUCKET PREFIX NAME" >&2
	exit 2
fi
dir=$2
bucket=$3
prefix=$4
keep=$5
listing=$(mktemp)
trap 'rm -f -- "$listing" "$listing.sorted"' EXIT

set -- "$dir"/mongodb-*.archive.gz
if [ ! -e "$1" ] || [ $# -ne 1 ]; then
	echo "jeeves-backup: expected one archive from the dump in $dir, found: $*; nothing was uploaded" >&2
	exit 1
fi
name=${1##*/}
if ! aws s3 cp --only-show-errors "$1" "s3://$bucket/$prefix/$name"; then
	echo "jeeves-backup: the upload to s3://$bucket/$prefix/ failed (aws, above); the archive is lost with the pod" >&2
	exit 1
fi
printf 'jeeves-backup: wrote %s\n' "$name"

archives >"$listing.sorted"
excess=$(($(wc -l <"$listing.sorted") - keep))
while IFS=$(printf '\t') read -r old _; do
	[ "$excess" -gt 0 ] || break
	aws s3 rm --only-show-errors "s3://$bucket/$prefix/$old"
	printf 'jeeves-backup: removed %s\n' "$old"
	excess=$((excess - 1))
done <"$listing.sorted"

count=0
for line in $(archives | tr '\t' '='); do
	count=$((count + 1))
	printf 'jeeves-backup: archive %s %s\n' "${line%=*}" "${line#*=}"
done
printf 'jeeves-backup: %s archive(s) in s3://%s/%s/\n' "$count" "$bucket" "$prefix"
