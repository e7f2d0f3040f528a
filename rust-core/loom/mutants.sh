#!/usr/bin/env bash
# Proves the loom models can fail: builds the protocol files with one
# deliberate breakage at a time (a weakened ordering, a dropped fence or
# check) and expects the named models to fail on each. The freer's two
# barriers (the SeqCst null store and the fence before the scan) are
# broken together: in the freer's own scan either one orders the null
# before the record loads, so loom passes with one of them gone (the
# fence is still needed for scans by other threads, which the C++ model
# orders only through a fence of their own). Run by `make
# loom-mutants`; works on a copy, never on the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The copy: a workspace of the loom crate alone, with the same layout.
mkdir -p "$work/rust-core/loom" "$work/rust-core/src/engine"
cp "$here/Cargo.toml" "$here/lib.rs" "$work/rust-core/loom/"
cp "$root/rust-core/src/sync.rs" "$root/rust-core/src/epoch.rs" "$work/rust-core/src/"
cp "$root/rust-core/src/engine/shard_lock_protocol.rs" "$work/rust-core/src/engine/"
cp "$root/Cargo.lock" "$work/"
sed -n '/^\[workspace.package\]/,/^$/p' "$root/Cargo.toml" > "$work/ws.tmp"
{ printf '[workspace]\nresolver = "2"\nmembers = ["rust-core/loom"]\n\n'; cat "$work/ws.tmp"; } > "$work/Cargo.toml"

export RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$root/target/loom-mutants"
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}

failed=0
# name | file under rust-core/src | perl substitution | models expected to fail
while IFS='|' read -r name file subst models; do
  [ -z "$name" ] && continue
  f="$work/rust-core/src/$file"
  cp "$f" "$f.orig"
  perl -0pi -e "$subst" "$f"
  if cmp -s "$f" "$f.orig"; then
    echo "mutant $name: substitution matched nothing"; failed=1; mv "$f.orig" "$f"; continue
  fi
  for m in $models; do
    if (cd "$work" && cargo test -q --release -p mapcore-loom -- --exact "$m" >/dev/null 2>&1); then
      echo "MISSED  $name: $m passed"; failed=1
    else
      echo "caught  $name: $m fails"
    fi
  done
  mv "$f.orig" "$f"
done <<'LIST'
reader-fence-acqrel|engine/shard_lock_protocol.rs|s/(exclude_readers`\.\n\s*)fence\(SeqCst\)/${1}fence(AcqRel)/|shard_lock_protocol::models::short_reads_exclude_the_writer shard_lock_protocol::models::group_reads_exclude_the_writers_of_every_shard
writer-fence-acqrel|engine/shard_lock_protocol.rs|s/(fence in `announce`\.\n\s*)fence\(SeqCst\)/${1}fence(AcqRel)/|shard_lock_protocol::models::short_reads_exclude_the_writer shard_lock_protocol::models::two_short_readers_exclude_the_writer
no-flag-recheck|engine/shard_lock_protocol.rs|s/writing\.load\(Acquire\)/{ let _ = writing; false }/|shard_lock_protocol::models::short_reads_exclude_the_writer shard_lock_protocol::models::group_reads_exclude_the_writers_of_every_shard
flag-load-relaxed|engine/shard_lock_protocol.rs|s/writing\.load\(Acquire\)/writing.load(Relaxed)/|shard_lock_protocol::models::short_reads_exclude_the_writer
withdraw-relaxed|engine/shard_lock_protocol.rs|s/slot\.store\(0, Release\)/slot.store(0, Relaxed)/|shard_lock_protocol::models::short_reads_exclude_the_writer
readmit-relaxed|engine/shard_lock_protocol.rs|s/writing\.store\(false, Release\)/writing.store(false, Relaxed)/|shard_lock_protocol::models::short_reads_exclude_the_writer
writer-ignores-groups|engine/shard_lock_protocol.rs|s/announced != id && announced != group/announced != id/|shard_lock_protocol::models::group_reads_exclude_the_writers_of_every_shard
pin-store-release|epoch.rs|s/store_seq_cst\(mine, e\)/mine.store(e, Release)/|epoch::models::a_free_racing_calls epoch::models::reclamation_waits_for_every_thread_that_can_see_the_object
freer-without-barriers|epoch.rs|s/store_seq_cst\(slot, std::ptr::null_mut\(\)\)/slot.store(std::ptr::null_mut(), Release)/; s/(around a reclamation\.\n\s*)fence\(SeqCst\);/$1/|epoch::models::a_free_racing_calls epoch::models::reclamation_waits_for_every_thread_that_can_see_the_object
unpin-relaxed|epoch.rs|s/mine\.store\(0, Release\)/mine.store(0, Relaxed)/|epoch::models::a_free_racing_calls epoch::models::reclamation_waits_for_every_thread_that_can_see_the_object
free-at-oldest-pin|epoch.rs|s/tag < oldest_pinned/tag <= oldest_pinned/|epoch::models::a_free_racing_calls epoch::models::reclamation_waits_for_every_thread_that_can_see_the_object
epoch-advanced-before-unlink|epoch.rs|s/store_seq_cst\(slot, std::ptr::null_mut\(\)\);\n(\s*)global\.fetch_add\(1, SeqCst\)/let tag = global.fetch_add(1, SeqCst);\n${1}store_seq_cst(slot, std::ptr::null_mut());\n${1}tag/|epoch::models::a_free_racing_calls epoch::models::reclamation_waits_for_every_thread_that_can_see_the_object
LIST
exit $failed
