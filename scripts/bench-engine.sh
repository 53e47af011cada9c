#!/usr/bin/env bash
# bench-engine.sh — side-by-side numbers for Ferry's replication data path
# (issue 17), recorded in docs/bench/engine.md and docs/benchmarks.md.
# Gateway and agent are separate `ferry` processes talking TLS 1.3 over
# loopback; every ferry sync ends with the gateway's proof that target ==
# source, and the script cmp's the files too. rsync --inplace
# --no-whole-file and one `cat` of the source run in the same run, on the
# same files, page cache warm for every contender.
#
#   scripts/bench-engine.sh          # full sizes (≈ 10–15 min on 2 cores)
#   QUICK=1 scripts/bench-engine.sh  # small sizes, a smoke run (≈ 2 min)
#
# Needs root for the clone benchmark (loop-mounted ext4), python3, rsync,
# GNU time, e2fsprogs; `make bench` installs them (APT_PKGS).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${QUICK:-}" ]; then
  DENSE_MIB=${DENSE_MIB:-512} SIZE_MIB=${SIZE_MIB:-256} THROTTLE_S=${THROTTLE_S:-5}
  CLONE_MIB=${CLONE_MIB:-512} CHANGE_MIB=${CHANGE_MIB:-10} CLONES=${CLONES:-4} ADAPT_MIB=${ADAPT_MIB:-48}
else
  DENSE_MIB=${DENSE_MIB:-4096} SIZE_MIB=${SIZE_MIB:-1024} THROTTLE_S=${THROTTLE_S:-30}
  CLONE_MIB=${CLONE_MIB:-2048} CHANGE_MIB=${CHANGE_MIB:-50} CLONES=${CLONES:-10} ADAPT_MIB=${ADAPT_MIB:-128}
fi
THROTTLE_RATE_MIB=${THROTTLE_RATE_MIB:-16}
WORK=${WORK:-$(mktemp -d /tmp/ferry-bench.XXXXXX)}
FERRY=$WORK/ferry
PORT=${PORT:-18543}
for tool in python3 rsync /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench-engine: $tool is missing (make deps)" >&2; exit 1; }
done
echo "# work dir $WORK; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
go build -o "$FERRY" ./cmd/ferry

now() { date +%s.%N; }
py() { python3 -c "print($1)"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); py "f'{$t1-$t0:.2f}'"; }
kv() { sed -n "s/.*\b$1=\([0-9.a-z]*\).*/\1/p" "$2" | tail -1; }
mib() { py "f'{$1/1048576:.2f}'"; }
ratio() { py "f'{$1/$2:.3f}'"; }

GW=
gw_start() { # gw_start DIR: a fresh gateway on $PORT
  gw_stop
  "$FERRY" gateway --listen 127.0.0.1:$PORT --data "$1" >"$1.log" 2>&1 &
  GW=$!
  for _ in $(seq 100); do grep -q fingerprint "$1.log" 2>/dev/null && break; sleep 0.1; done
  FP=$(awk '/fingerprint/{print $NF}' "$1.log")
  GWDIR=$1
}
gw_stop() { if [ -n "$GW" ]; then kill "$GW" 2>/dev/null || true; wait "$GW" 2>/dev/null || true; GW=; fi; }
CLEAN=()
cleanup() { gw_stop; for c in "${CLEAN[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT

agent() { # agent LOG SOURCE DISK [TENANT] [flags...]: one sync, RSS into LOG
  local log=$1 src=$2 disk=$3 tenant=${4:-}; shift 4 || shift $#
  local cred; cred=$("$FERRY" gateway issue-credential --data "$GWDIR" --disk "$disk" --tenant "$tenant")
  /usr/bin/time -f "rss_kib=%M" -a -o "$log" "$FERRY" agent sync --quiet --source "$src" --gateway https://127.0.0.1:$PORT \
    --disk "$disk" --credential "$cred" --fingerprint "$FP" --state "$WORK/state" "$@" >>"$log"
}

ROWS=()
row() { ROWS+=("| $* |"); echo "| $* |"; }

# --- 1. first full sync of a dense image vs cp --sparse=always -------------
DENSE=$WORK/dense.img
head -c $((DENSE_MIB << 20)) /dev/urandom >"$DENSE"
sync
gw_start "$WORK/gw-dense"
cat "$DENSE" >/dev/null
T_FULL=$(timed agent "$WORK/full.log" "$DENSE" dense "")
T_CP=$(timed cp --sparse=always "$DENSE" "$WORK/cp.img")
T_SYNC=$(timed sync)
cmp "$DENSE" "$WORK/gw-dense/disks/dense.img"
rm -f "$WORK/cp.img" "$WORK/gw-dense/disks/dense.img"
gw_stop
row "full sync, dense ${DENSE_MIB} MiB random: ferry | ${T_FULL} s | $(py "f'{$DENSE_MIB/$T_FULL:.0f}'") MiB/s, agent RSS $(kv rss_kib "$WORK/full.log") KiB, level $(kv level "$WORK/full.log"), verified: reread $(mib "$(kv reread_bytes "$WORK/full.log")") MiB"
row "full sync: cp --sparse=always (page cache, no fsync) | ${T_CP} s | $(py "f'{$DENSE_MIB/$T_CP:.0f}'") MiB/s; ferry reaches $(ratio "$T_CP" "$T_FULL") x cp's throughput"
row "full sync: the sync(1) after cp | ${T_SYNC} s | cp + sync = $(py "f'{$T_CP+$T_SYNC:.2f}'") s; ferry $(ratio "$(py "$T_CP+$T_SYNC")" "$T_FULL") x its throughput"

# --- 2. incremental syncs of a half-random image -----------------------------
IMG=$WORK/src.img
python3 - "$IMG" "$SIZE_MIB" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(1)
with open(path, "wb") as f:
    f.truncate(mib << 20)
    for i in range(mib):
        if r.random() < 0.5:
            f.seek(i << 20); f.write(os.urandom(1 << 20))
PY
gw_start "$WORK/gw-inc"
agent "$WORK/inc0.log" "$IMG" inc ""
rsync --inplace "$IMG" "$WORK/rsync.img"
cmp "$IMG" "$WORK/gw-inc/disks/inc.img"

change() { # change KIND SEED: rewrite 1% of the image, print the changed bytes
  python3 - "$IMG" "$SIZE_MIB" "$1" "$2" <<'PY'
import os, random, sys
path, mib, kind, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
r = random.Random(seed)
size = mib << 20
unit = {"4k": 4096, "64k": 65536, "1m": 1 << 20}[kind]
n = max(1, size // unit // 100)
with open(path, "r+b") as f:
    for off in r.sample(range(size // unit), n):
        f.seek(off * unit); f.write(os.urandom(unit))
print(n * unit)
PY
}
inc() { # inc KIND SEED LABEL [flags]
  local kind=$1 seed=$2 label=$3; shift 3
  local ch; ch=$(change "$kind" "$seed")
  cat "$IMG" >/dev/null
  local t log=$WORK/inc-$kind-$seed.log
  t=$(timed agent "$log" "$IMG" inc "" "$@")
  local tr tc
  tr=$(timed rsync -I --inplace --no-whole-file "$IMG" "$WORK/rsync.img")
  tc=$(timed cat "$IMG")
  cmp "$IMG" "$WORK/gw-inc/disks/inc.img"
  cmp "$IMG" "$WORK/rsync.img"
  local wire plain
  wire=$(kv wire_bytes "$log"); plain=$(kv plain_bytes "$log")
  row "incr. $label: ferry $* | $t s | changed $(mib "$ch") MiB; wire $(mib "$wire") MiB = $(ratio "$wire" "$ch") x changed (before compression $(ratio "$plain" "$ch") x); $(kv blocks_patched "$log") blocks patched; agent RSS $(kv rss_kib "$log") KiB; in-agent $(kv elapsed_s "$log") s"
  row "incr. $label: rsync -I --inplace --no-whole-file | $tr s | ferry takes $(ratio "$t" "$tr") x rsync's time (in-agent $(ratio "$(kv elapsed_s "$log")" "$tr") x)"
  row "incr. $label: cat image > /dev/null | $tc s | ferry $(ratio "$t" "$tc") x one read"
}
inc 4k 2 "1% of 4 KiB blocks"
inc 64k 3 "1% in 64 KiB runs"
inc 1m 4 "1% of 1 MiB blocks"
inc 4k 5 "1% of 4 KiB blocks, protocol 1 (before this change)" --protocol 1
row "ferry version (process start) | $(timed "$FERRY" version) | |"
GW_RSS=$(awk '/VmHWM/{print $2}' /proc/$GW/status)
row "gateway max RSS over the incremental runs | | $GW_RSS KiB"

# --- 3. throttle accuracy --------------------------------------------------
TH_MIB=$((THROTTLE_RATE_MIB * THROTTLE_S))
head -c $((TH_MIB << 20)) /dev/urandom >"$WORK/rand.img"
t0=$(now)
agent "$WORK/throttle.log" "$WORK/rand.img" throttle "" --rate ${THROTTLE_RATE_MIB}MiB/s
t1=$(now)
TH_WIRE=$(kv wire_bytes "$WORK/throttle.log")
TH_T=$(py "$t1-$t0")
row "throttle ${THROTTLE_RATE_MIB} MiB/s, ${TH_MIB} MiB random | $(py "f'{$TH_T:.2f}'") s | $(py "f'{$TH_WIRE/$TH_T/1048576:.2f}'") MiB/s = $(py "f'{$TH_WIRE/$TH_T/1048576/$THROTTLE_RATE_MIB*100-100:+.1f}'")% of the set rate (wall clock incl. start-up and proof)"
# The same rate through a transfer window (issue 13: the window layer over
# x/time/rate's bucket); fresh random data, or the content index would copy it.
head -c $((TH_MIB << 20)) /dev/urandom >"$WORK/rand.img"
t0=$(now)
agent "$WORK/throttle-w.log" "$WORK/rand.img" throttlew "" --windows "Daily 00:00-24:00=${THROTTLE_RATE_MIB}MiB/s" --tz UTC
t1=$(now)
TH_WIRE=$(kv wire_bytes "$WORK/throttle-w.log")
TH_T=$(py "$t1-$t0")
row "throttle through a window =${THROTTLE_RATE_MIB}MiB/s, ${TH_MIB} MiB random | $(py "f'{$TH_T:.2f}'") s | $(py "f'{$TH_WIRE/$TH_T/1048576:.2f}'") MiB/s = $(py "f'{$TH_WIRE/$TH_T/1048576/$THROTTLE_RATE_MIB*100-100:+.1f}'")% of the set rate (wall clock incl. start-up and proof)"
rm -f "$WORK/rand.img" "$WORK/gw-inc/disks/throttle.img" "$WORK/gw-inc/disks/throttlew.img"
gw_stop

# --- 4. RSS at a 2 TiB sparse disk ------------------------------------------
BIG=$WORK/big.img
truncate -s 2T "$BIG"
python3 - "$BIG" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    for i in range(4):
        f.seek(i * (512 << 30)); f.write(os.urandom(1 << 20))
PY
gw_start "$WORK/gw-big"
T_BIG=$(timed agent "$WORK/big.log" "$BIG" big "")
python3 - "$BIG" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100 << 30); f.write(os.urandom(4096))
PY
T_BIG2=$(timed agent "$WORK/big2.log" "$BIG" big "")
row "2 TiB sparse disk (2 Mi blocks): first sync | $T_BIG s | agent max RSS $(kv rss_kib "$WORK/big.log") KiB"
row "2 TiB: incremental (one 4 KiB write) | $T_BIG2 s | agent max RSS $(kv rss_kib "$WORK/big2.log") KiB, wire $(kv wire_bytes "$WORK/big2.log") B"
row "2 TiB: gateway max RSS | | $(awk '/VmHWM/{print $2}' /proc/$GW/status) KiB"
rm -f "$BIG" "$WORK/gw-big/disks/big.img"
gw_stop

# --- 5. adaptive compression on a slow link ---------------------------------
TXT=$WORK/text.img
python3 - "$TXT" "$ADAPT_MIB" <<'PY'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(9)
words = [''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(r.randint(2, 9))) for _ in range(5000)]
with open(path, "w") as f:
    n = 0
    while n < mib << 20:
        line = ' '.join(r.choice(words) for _ in range(12)) + '\n'
        f.write(line); n += len(line)
PY
gw_start "$WORK/gw-adapt"
# Two tenants, so that the second run cannot copy the first one's blocks.
T_L1=$(timed agent "$WORK/adapt1.log" "$TXT" adapt1 fixed --rate 4MiB/s --level 1)
T_LA=$(timed agent "$WORK/adapta.log" "$TXT" adapta adaptive --rate 4MiB/s)
row "compressible ${ADAPT_MIB} MiB at 4 MiB/s, zstd fastest fixed | $T_L1 s | wire $(mib "$(kv wire_bytes "$WORK/adapt1.log")") MiB"
row "same, level adapting to the link | $T_LA s | wire $(mib "$(kv wire_bytes "$WORK/adapta.log")") MiB, ended at level $(kv level "$WORK/adapta.log")"
gw_stop
rm -f "$TXT"

# --- 6. ten clones of one image, each with its own changes -------------------
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
  GOLD=$WORK/golden.img
  truncate -s $((CLONE_MIB << 20)) "$GOLD"
  mkfs.ext4 -q -F "$GOLD"
  MNT=$WORK/mnt
  mkdir -p "$MNT"
  mount -o loop "$GOLD" "$MNT"; CLEAN+=("umount $MNT 2>/dev/null")
  # A Debian-like root: this machine's /usr, up to ~40% of the image.
  budget=$((CLONE_MIB * 4 / 10))
  for d in /usr/lib /usr/share /usr/bin; do
    used=$(df -m --output=used "$MNT" | tail -1)
    [ "$used" -ge "$budget" ] && break
    (cd / && tar cf - --exclude='*.so.debug' "${d#/}" 2>/dev/null | head -c $(((budget - used) << 20)) | tar xf - -C "$MNT" 2>/dev/null) || true
  done
  GOLD_DATA=$(df -B1 --output=used "$MNT" | tail -1)
  umount "$MNT"
  gw_start "$WORK/gw-clones"
  agent "$WORK/golden.log" "$GOLD" golden ref
  W_GOLD=$(kv wire_bytes "$WORK/golden.log")
  TOTAL=0; T_CLONES=0
  for i in $(seq 1 "$CLONES"); do
    C=$WORK/clone$i.img
    cp --sparse=always "$GOLD" "$C"
    mount -o loop "$C" "$MNT"
    mkdir -p "$MNT/srv/app$i"
    # Its own changes through the filesystem: new files (half random, half
    # text), a rewritten config, a grown log.
    head -c $((CHANGE_MIB << 19)) /dev/urandom >"$MNT/srv/app$i/blob"
    python3 - "$MNT/srv/app$i/log" $((CHANGE_MIB << 19)) "$i" <<'PY'
import random, sys
r = random.Random(int(sys.argv[3]))
with open(sys.argv[1], "w") as f:
    n = 0
    while n < int(sys.argv[2]):
        line = f"{r.random():.12f} request {r.randint(0, 1 << 30)} served in {r.randint(1, 900)} ms\n"
        f.write(line); n += len(line)
PY
    echo "host=clone$i" >"$MNT/srv/app$i/hostname"
    umount "$MNT"
    t=$(timed agent "$WORK/clone$i.log" "$C" "clone$i" estate)
    cmp "$C" "$WORK/gw-clones/disks/clone$i.img"
    w=$(kv wire_bytes "$WORK/clone$i.log")
    TOTAL=$((TOTAL + w)); T_CLONES=$(py "$T_CLONES+$t")
    echo "clone $i: wire $(mib "$w") MiB, $(kv blocks_copied "$WORK/clone$i.log") blocks copied at the gateway, $t s"
    rm -f "$C"
  done
  BASE=$((W_GOLD + CLONES * (CHANGE_MIB << 20)))
  row "$CLONES clones of a ${CLONE_MIB} MiB ext4 image ($(mib "$GOLD_DATA") MiB used), $CHANGE_MIB MiB own files each, one after another | $(py "f'{$T_CLONES:.1f}'") s | total wire $(mib "$TOTAL") MiB = $(ratio "$TOTAL" "$BASE") x (one image $(mib "$W_GOLD") MiB + $CLONES x $CHANGE_MIB MiB)"
  row "gateway max RSS after the clones | | $(awk '/VmHWM/{print $2}' /proc/$GW/status) KiB"
  gw_stop
  rm -rf "$WORK/gw-clones" "$GOLD"
else
  row "clones | skipped | needs root (loop mount) and mkfs.ext4"
fi

echo
echo "| measurement | time | notes |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
