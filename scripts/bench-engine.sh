#!/usr/bin/env bash
# bench-engine.sh — side-by-side numbers for Ferry's replication data path,
# recorded in docs/bench/engine.md. Needs: go, python3 (image generation),
# rsync, GNU time (/usr/bin/time), coreutils. Runs everything on one machine,
# gateway and agent on loopback, page cache warm for every contender.
#
#   scripts/bench-engine.sh            # 4 GiB image, 30 s throttle run
#   SIZE_MIB=1024 THROTTLE_S=10 scripts/bench-engine.sh   # quicker
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-4096}
THROTTLE_S=${THROTTLE_S:-30}
THROTTLE_RATE_MIB=${THROTTLE_RATE_MIB:-16}
BLOCK=${BLOCK:-1MiB}
WORK=${WORK:-$(mktemp -d /tmp/ferry-bench.XXXXXX)}
FERRY=$WORK/ferry
PORT=${PORT:-18543}
for tool in python3 rsync /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench-engine: $tool is missing (apt-get install -y rsync time python3)" >&2; exit 1; }
done

echo "# work dir $WORK; image ${SIZE_MIB} MiB; block $BLOCK; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$FERRY" ./cmd/ferry

IMG=$WORK/src.img
# Half of the 1 MiB blocks hold random (incompressible) data, the others are holes.
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
sync

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.2f}')"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); elapsed "$t0" "$t1"; }
kv() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" "$2" | tail -1; }

# --- gateway ---------------------------------------------------------------
"$FERRY" gateway --listen 127.0.0.1:$PORT --data "$WORK/gw" >"$WORK/gw.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q fingerprint "$WORK/gw.log" 2>/dev/null && break; sleep 0.1; done
FP=$(awk '/fingerprint/{print $NF}' "$WORK/gw.log")
CRED=$("$FERRY" gateway issue-credential --data "$WORK/gw" --disk bench)
agent() { # agent LOGFILE [extra flags]; prints wall seconds, RSS in the log
  local log=$1; shift
  /usr/bin/time -f "rss_kib=%M" -a -o "$log" "$FERRY" agent sync --quiet --source "$IMG" --gateway https://127.0.0.1:$PORT \
    --disk bench --credential "$CRED" --fingerprint "$FP" --block-size "$BLOCK" --state "$WORK/state" "$@" >>"$log"
}

# --- full first sync -------------------------------------------------------
cat "$IMG" >/dev/null # warm the cache for everyone
T_FERRY_FULL=$(timed agent "$WORK/full.log")
T_CP=$(timed cp --sparse=always "$IMG" "$WORK/cp.img")
T_RSYNC_FULL=$(timed rsync --inplace "$IMG" "$WORK/rsync.img")
cmp "$IMG" "$WORK/gw/disks/bench.img"

# --- incremental: 1% of the blocks rewritten, scattered ---------------------
CHANGED=$(python3 - "$IMG" "$SIZE_MIB" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(2)
blocks = r.sample(range(mib), max(1, mib // 100))
with open(path, "r+b") as f:
    for b in blocks:
        f.seek(b << 20); f.write(os.urandom(1 << 20))
print(len(blocks) << 20)
PY
)
cat "$IMG" >/dev/null
T_FERRY_INC=$(timed agent "$WORK/inc.log")
T_RSYNC_INC=$(timed rsync --inplace --no-whole-file "$IMG" "$WORK/rsync.img")
T_CAT=$(timed cat "$IMG")
cmp "$IMG" "$WORK/gw/disks/bench.img"
cmp "$IMG" "$WORK/rsync.img"

# --- incremental: 1% of the blocks get one 4 KiB write (write amplification) --
SMALL=$(python3 - "$IMG" "$SIZE_MIB" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
r = random.Random(3)
blocks = r.sample(range(mib), max(1, mib // 100))
with open(path, "r+b") as f:
    for b in blocks:
        f.seek((b << 20) + r.randrange(256) * 4096); f.write(os.urandom(4096))
print(len(blocks) * 4096)
PY
)
cat "$IMG" >/dev/null
T_FERRY_SMALL=$(timed agent "$WORK/small.log")
cmp "$IMG" "$WORK/gw/disks/bench.img"
GW_RSS=$(awk '/VmHWM/{print $2}' /proc/$GW/status)

# --- throttle accuracy -----------------------------------------------------
TH_MIB=$((THROTTLE_RATE_MIB * THROTTLE_S))
head -c $((TH_MIB << 20)) /dev/urandom >"$WORK/rand.img"
CRED2=$("$FERRY" gateway issue-credential --data "$WORK/gw" --disk throttle)
t0=$(now)
"$FERRY" agent sync --quiet --source "$WORK/rand.img" --gateway https://127.0.0.1:$PORT --disk throttle --credential "$CRED2" \
  --fingerprint "$FP" --state "$WORK/state" --rate ${THROTTLE_RATE_MIB}MiB/s >"$WORK/throttle.log"
t1=$(now)
TH_WIRE=$(kv wire_bytes "$WORK/throttle.log")
TH_T=$(elapsed "$t0" "$t1")

# --- report ----------------------------------------------------------------
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
FULL_WIRE=$(kv wire_bytes "$WORK/full.log"); INC_WIRE=$(kv wire_bytes "$WORK/inc.log"); INC_CH=$(kv changed_bytes "$WORK/inc.log")
SMALL_WIRE=$(kv wire_bytes "$WORK/small.log")
cat <<EOT

| measurement | time (s) | notes |
|---|---|---|
| full: ferry agent sync (TLS, loopback, verified) | $T_FERRY_FULL | wire $(ratio "$FULL_WIRE" 1048576) MiB, agent max RSS $(kv rss_kib "$WORK/full.log") KiB |
| full: cp --sparse=always | $T_CP | |
| full: rsync --inplace | $T_RSYNC_FULL | |
| incr. 1% blocks rewritten: ferry | $T_FERRY_INC | changed $(ratio "$CHANGED" 1048576) MiB, sent $(ratio "$INC_CH" 1048576) MiB of blocks, wire $(ratio "$INC_WIRE" 1048576) MiB = $(ratio "$INC_WIRE" "$CHANGED") x changed; agent RSS $(kv rss_kib "$WORK/inc.log") KiB |
| incr.: same sync, time inside the agent (no process start) | $(kv elapsed_s "$WORK/inc.log") | |
| incr.: rsync --inplace --no-whole-file | $T_RSYNC_INC | ferry is $(ratio "$T_RSYNC_INC" "$T_FERRY_INC") x faster (in-agent: $(ratio "$T_RSYNC_INC" "$(kv elapsed_s "$WORK/inc.log")") x) |
| incr.: cat img > /dev/null | $T_CAT | ferry takes $(ratio "$T_FERRY_INC" "$T_CAT") x one read (in-agent: $(ratio "$(kv elapsed_s "$WORK/inc.log")" "$T_CAT") x) |
| ferry version (process start of the ferry binary) | $(timed "$FERRY" version) | |
| incr. 1% blocks with one 4 KiB write: ferry | $T_FERRY_SMALL | changed $(ratio "$SMALL" 1024) KiB, wire $(ratio "$SMALL_WIRE" 1048576) MiB (whole ${BLOCK} blocks) |
| throttle ${THROTTLE_RATE_MIB} MiB/s, ${TH_MIB} MiB random | $TH_T | effective $(python3 -c "print(f'{$TH_WIRE/$TH_T/1048576:.2f}')") MiB/s = $(python3 -c "print(f'{$TH_WIRE/$TH_T/1048576/$THROTTLE_RATE_MIB*100-100:+.1f}')")% of the set rate |
| gateway max RSS | | $GW_RSS KiB |
EOT
