#!/usr/bin/env bash
# Side by side: Sourcegraph's Postgres outbox against telespool's record path,
# on this machine, in one run, each side alone (docs/benchmarks.md, "Against
# the Postgres outbox").
#
#  1. Postgres: a private cluster in a temporary directory (initdb, default
#     settings: fsync on, synchronous_commit on), Sourcegraph's
#     telemetry_events_export_queue table with its partial index; pgbench,
#     4 clients on 2 threads, each transaction one INSERT of 100 rows with a
#     fresh random v4 id (gen_random_uuid()) and a payload as large as the
#     load clients' events encoded (~600 B). Checked: rows == transactions x 100.
#  2. telespool HTTP: `telespool serve --sync always` (the event_logs mirror
#     is always on) on a fresh directory; wrk, 16 connections on 2 threads,
#     POST /v1/events of 100 realistic events, every event with a fresh
#     random v4 id per request (scripts/bench-vs-postgres.wrk.lua).
#  3. telespool gRPC, closed loop: a fresh `serve`; the project's load client
#     (examples/grpc_load.rs), 16 streams x payloads of 100, v4 ids.
#  4. telespool gRPC, paced at PACED_RATE events/s: the same, latency from
#     each payload's scheduled send time.
#
# For each telespool run: events/s, p50/p99 per request or payload of 100
# events, peak RssAnon of serve (sampled every 100 ms), serve's CPU per event
# (utime + stime over the run / events acked), the load client's own CPU,
# and the check that the queue holds exactly the events acknowledged (read
# offline with `telespool status DIR --json` after a clean SIGTERM; warm-up
# included). The script exits non-zero when a check fails.
#
# Settings (environment):
#   BENCH_SECS        measured seconds of each run (default 20)
#   PACED_RATE        offered events/s of the paced gRPC run (default 100000)
#   BENCH_DIR         where the temporary directories go; must be a real disk
#                     for fsync to mean anything (default /var/tmp)
#   BENCH_QUEUE_QUOTA serve's --queue-quota (default 16GiB: the runs must not
#                     hit the 1GiB default)
#
# Needs root to install what is missing (apt-get: postgresql, wrk, jq) and
# to run Postgres as the `postgres` user; as another user, with those
# installed, it runs Postgres as that user.
#
# Builds with `cargo build --release --bin telespool --example grpc_load`
# (the release profile: optimized, line tables).
set -euo pipefail

BENCH_SECS=${BENCH_SECS:-20}
PACED_RATE=${PACED_RATE:-100000}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH_QUEUE_QUOTA=${BENCH_QUEUE_QUOTA:-16GiB}
# The load shapes of issue 13 (fixed so that runs compare).
readonly BATCH=100 PG_CLIENTS=4 PG_THREADS=2 WRK_CONNS=16 WRK_THREADS=2 STREAMS=16 WARMUP=2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/target/release/telespool
loader=$repo/target/release/examples/grpc_load
wrk_lua=$repo/scripts/bench-vs-postgres.wrk.lua

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench-vs-postgres: %s\n' "$*" >&2; exit 1; }

[[ $BENCH_SECS =~ ^[0-9]+$ && $BENCH_SECS -gt 0 ]] || die "BENCH_SECS=$BENCH_SECS: a whole number of seconds, at least 1"
[[ $PACED_RATE =~ ^[0-9]+$ && $PACED_RATE -gt 0 ]] || die "PACED_RATE=$PACED_RATE: events/s, a whole number, at least 1"
[[ -d $BENCH_DIR ]] || die "BENCH_DIR=$BENCH_DIR: no such directory"

is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------- tools
pg_bindir() {
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    [[ -n $d && -x $d/pg_ctl && -x $d/pgbench ]] && printf '%s\n' "$d"
}

apt_install() {
    is_root || die "missing: $*; install them (apt-get install $*) or run this as root"
    log "installing $* (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; } ||
        die "apt-get install $* failed"
}

ensure_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v jq >/dev/null || missing+=(jq)
    command -v pgrep >/dev/null || missing+=(procps)
    pg_bindir >/dev/null || missing+=(postgresql)
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
    # Older Debian releases ship pgbench in postgresql-contrib.
    pg_bindir >/dev/null || apt_install postgresql-contrib
    pg_bindir >/dev/null || die "no pg_ctl and pgbench under /usr/lib/postgresql/*/bin after installing postgresql"
}

ensure_tools
PGBIN=$(pg_bindir)
CLK_TCK=$(getconf CLK_TCK)

log "building: cargo build --release --bin telespool --example grpc_load"
(cd "$repo" && cargo build --release --bin telespool --example grpc_load) >&2

# ---------------------------------------------------------------- workspace, cleanup
work=$(mktemp -d "$BENCH_DIR/bench-vs-postgres.XXXXXX")
# Postgres runs as its own user: it must reach its directory.
chmod 755 "$work"
pg_started=0
serve_pid=
sampler_pid=

cleanup() {
    local rc=$?
    set +e
    if [[ -n $sampler_pid ]]; then kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; fi
    if [[ -n $serve_pid ]]; then kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; fi
    if ((pg_started)); then as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1; fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_disk_gib=$(df -Pk "$work" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
((free_disk_gib >= 8)) || log "warning: only ${free_disk_gib} GiB free under $BENCH_DIR; a run writes a few GiB"

# ---------------------------------------------------------------- measuring helpers
# A loopback port nothing listens on.
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            printf '%s\n' "$p"
            return
        fi
    done
    die "no free loopback port found"
}

# Fields of /proc/PID/stat after the command name (state is $1): utime $12,
# stime $13, cutime $14, cstime $15.
# CPU ticks (user + system) of one process.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# CPU ticks of a process tree one level deep, with the children it reaped
# (Postgres: the postmaster, its background processes, exited backends).
tree_cpu_ticks() {
    local pids
    pids=$(pgrep -P "$1" | tr '\n' ' ' || true)
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    (cd /proc && for p in "$1" $pids; do cat "$p/stat" 2>/dev/null || true; done) |
        sed 's/.*) //' | awk '{ s += $12 + $13 + $14 + $15 } END { print s + 0 }'
}

# Runs a command and sets child_secs to its CPU time (user + system, from
# the `times` of a shell that ran it); returns its exit status.
run_and_time() {
    local rc=0
    # shellcheck disable=SC2016 # the inner shell expands them
    "$BASH" -c '"$@"; rc=$?; times >&3; exit "$rc"' bash "$@" 3>"$work/times" || rc=$?
    # The second line of `times`: the children's user and system time, as 1m2.345s.
    child_secs=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } printf "%.2f", s }' "$work/times")
    return "$rc"
}

# Samples the RssAnon (KiB) of PID (with "tree": PID and its children,
# summed) every 100 ms into FILE, keeping the peak; in the background.
start_rss_sampler() {
    local pid=$1 tree=$2 out=$3
    (
        peak=0
        while kill -0 "$pid" 2>/dev/null; do
            pids=$pid
            if [[ $tree == tree ]]; then pids="$pid $(pgrep -P "$pid" | tr '\n' ' ' || true)"; fi
            # shellcheck disable=SC2086 # word splitting of the pid list is intended
            kib=$(cd /proc && for p in $pids; do cat "$p/status" 2>/dev/null || true; done |
                awk '/^RssAnon:/ { s += $2 } END { print s + 0 }')
            if ((kib > peak)); then peak=$kib; printf '%s\n' "$peak" >"$out"; fi
            sleep 0.1
        done
    ) &
    sampler_pid=$!
}
stop_rss_sampler() {
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=
}
mib() { awk -v k="$(cat "$1" 2>/dev/null || echo 0)" 'BEGIN { printf "%.0f", k / 1024 }'; }

# Nearest-rank percentile P (0-100) of a file of sorted numbers.
percentile() {
    awk -v p="$2" '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }' "$1"
}
# The value of key=VALUE on a line.
field() { awk -v k="$2=" '{ for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }' <<<"$1"; }
# CPU microseconds per event: TICKS over EVENTS.
us_per_event() { awk -v t="$1" -v e="$2" -v hz="$CLK_TCK" 'BEGIN { if (e > 0) printf "%.1f", t / hz * 1e6 / e; else print "nan" }'; }

failures=()
fail() { failures+=("$1"); printf 'CHECK FAILED: %s\n' "$1" >&2; }

# Summary rows: path|events/s|p50|p99|rss|cpu/event|client cores|check
rows=()

# ---------------------------------------------------------------- header
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit+=" (with uncommitted changes)"; fi
load_before=$(uptime)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
log "work directory $work; $BENCH_SECS s per run"

# The events of both telespool paths, and the outbox's payload size.
"$loader" --write-http-body "$work/body.json" --batch "$BATCH" >"$work/body.txt"
event_bytes=$(sed -n 's/.*; \([0-9]*\) B per event protobuf-encoded.*/\1/p' "$work/body.txt")
[[ $event_bytes =~ ^[0-9]+$ ]] || die "could not read the event size from: $(cat "$work/body.txt")"

# ---------------------------------------------------------------- 1. Postgres outbox
run_postgres() {
    log "Postgres outbox: initdb, start"
    mkdir -p "$work/pg"
    if is_root; then chown postgres: "$work/pg"; fi
    as_pg "$PGBIN/initdb" -D "$work/pg/data" -U postgres -A trust --no-locale -E UTF8 --no-sync >"$work/pg/initdb.log" 2>&1 ||
        die "initdb failed: $(tail -n 5 "$work/pg/initdb.log")"
    local port
    port=$(free_port)
    pg_started=1
    as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg" start >/dev/null ||
        die "Postgres did not start: $(tail -n 5 "$work/pg/server.log")"
    local psql=("$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -X -q -A -t -v ON_ERROR_STOP=1)
    # Sourcegraph's table (frontend migrations; the id index of the first
    # migration, redundant with the primary key, is left out: it would only
    # slow the outbox down).
    "${psql[@]}" <<'SQL'
CREATE TABLE telemetry_events_export_queue (
    id TEXT PRIMARY KEY,
    timestamp TIMESTAMPTZ NOT NULL,
    payload_pb BYTEA NOT NULL,
    exported_at TIMESTAMPTZ DEFAULT NULL
);
CREATE INDEX telemetry_events_export_queue_export_order
    ON telemetry_events_export_queue (timestamp) WHERE exported_at IS NULL;
SQL
    local settings
    settings=$("${psql[@]}" -F '|' -c "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'), current_setting('wal_sync_method'), current_setting('shared_buffers')")
    IFS='|' read -r pg_version pg_fsync pg_sync pg_wal_sync pg_shared <<<"$settings"
    log "Postgres $pg_version: fsync=$pg_fsync synchronous_commit=$pg_sync wal_sync_method=$pg_wal_sync shared_buffers=$pg_shared"

    # One transaction: one INSERT of BATCH rows, each with a fresh random v4
    # id, the time, and a payload of event_bytes random bytes (a parameter of
    # the prepared statement, as Sourcegraph's bulk insert sends it).
    {
        echo "INSERT INTO telemetry_events_export_queue (id, timestamp, payload_pb) VALUES"
        for ((i = 1; i < BATCH; i++)); do echo "(gen_random_uuid()::text, now(), :payload),"; done
        echo "(gen_random_uuid()::text, now(), :payload);"
    } >"$work/pg/insert.sql"
    local payload
    payload='\x'$(od -A n -t x1 -v -N "$event_bytes" /dev/urandom | tr -d ' \n')

    local pm_pid
    pm_pid=$(head -n 1 "$work/pg/data/postmaster.pid")
    local children_before cpu0 cpu1
    children_before=$(pgrep -c -P "$pm_pid" || true)
    start_rss_sampler "$pm_pid" tree "$work/pg/rss"
    cpu0=$(tree_cpu_ticks "$pm_pid")
    log "Postgres outbox: pgbench -c $PG_CLIENTS -j $PG_THREADS, $BENCH_SECS s"
    run_and_time "$PGBIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -M prepared \
        -c "$PG_CLIENTS" -j "$PG_THREADS" -T "$BENCH_SECS" \
        -f "$work/pg/insert.sql" -D "payload=$payload" \
        -l --log-prefix="$work/pg/txlog" postgres >"$work/pg/pgbench.out" 2>"$work/pg/pgbench.err" ||
        die "pgbench failed: $(tail -n 5 "$work/pg/pgbench.err")"
    local client_cores
    client_cores=$(awk -v c="$child_secs" -v s="$BENCH_SECS" 'BEGIN { printf "%.2f", c / s }')
    # The backends exit after pgbench: their CPU is the postmaster's to reap.
    for _ in $(seq 50); do
        (($(pgrep -c -P "$pm_pid" || true) <= children_before)) && break
        sleep 0.1
    done
    cpu1=$(tree_cpu_ticks "$pm_pid")
    stop_rss_sampler

    local tx failed tps rows_in_table
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pg/pgbench.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pg/pgbench.out")
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pg/pgbench.out")
    [[ -n $tx && -n $tps ]] || die "could not read pgbench's output: $(cat "$work/pg/pgbench.out")"
    cat "$work/pg"/txlog.* | awk '$3 ~ /^[0-9]+$/ { print $3 / 1000 }' | sort -n >"$work/pg/latency_ms"
    rows_in_table=$("${psql[@]}" -c "SELECT count(*) FROM telemetry_events_export_queue")
    pg_rate=$(awk -v t="$tps" -v b="$BATCH" 'BEGIN { printf "%.0f", t * b }')
    local check="rows $rows_in_table = $tx tx x $BATCH"
    if ((rows_in_table != tx * BATCH)); then
        check="rows $rows_in_table != $tx tx x $BATCH"
        fail "Postgres: the table holds $rows_in_table rows, pgbench reported $tx transactions of $BATCH"
    fi
    if [[ -n $failed && $failed -ne 0 ]]; then fail "Postgres: $failed transactions failed"; fi
    rows+=("Postgres outbox (pgbench -c $PG_CLIENTS, tx of $BATCH rows)|$pg_rate|$(percentile "$work/pg/latency_ms" 50)|$(percentile "$work/pg/latency_ms" 99)|$(mib "$work/pg/rss") (all processes)|$(us_per_event $((cpu1 - cpu0)) $((tx * BATCH)))|$client_cores|$check")

    log "Postgres outbox: stop"
    as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null
    pg_started=0
    rm -rf "$work/pg"
}

# ---------------------------------------------------------------- telespool
# Starts `telespool serve` on a fresh directory NAME, ports chosen by the
# system; sets serve_pid, grpc_addr, http_addr.
start_serve() {
    local dir=$work/$1
    mkdir -p "$dir"
    # Nothing from the caller's environment changes the settings.
    local unset_env=()
    while read -r v; do unset_env+=(-u "$v"); done < <(compgen -e | grep -E '^(TELESPOOL_|TELEMETRY_GATEWAY_|SRC_TELEMETRY_)' || true)
    env "${unset_env[@]}" TELESPOOL_LOG=info "$bin" serve --data-dir "$dir/data" \
        --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
        --sync always --queue-quota "$BENCH_QUEUE_QUOTA" >"$dir/serve.log" 2>&1 &
    serve_pid=$!
    local line=
    for _ in $(seq 600); do
        line=$(grep -m 1 'telespool sidecar serving' "$dir/serve.log" || true)
        [[ -n $line ]] && break
        kill -0 "$serve_pid" 2>/dev/null || die "telespool serve exited at start: $(tail -n 5 "$dir/serve.log")"
        sleep 0.1
    done
    [[ -n $line ]] || die "telespool serve did not start within 60 s: $(tail -n 5 "$dir/serve.log")"
    grpc_addr=$(field "$line" grpc)
    http_addr=$(field "$line" http)
}

# Stops serve: SIGTERM (it finishes what is in flight and flushes), SIGKILL
# after 120 s.
stop_serve() {
    local label=$1 log=$2 rc=0
    kill -TERM "$serve_pid"
    for _ in $(seq 1200); do
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" || rc=$?
    serve_pid=
    ((rc == 0)) || fail "$label: telespool serve exited with $rc after SIGTERM (log: $(tail -n 3 "$log"))"
}

# Runs one telespool path: NAME LABEL KIND [RATE]; KIND is http or grpc.
run_telespool() {
    local name=$1 label=$2 kind=$3 rate=${4:-}
    local dir=$work/$name
    start_serve "$name"
    log "$label: serve pid $serve_pid (grpc $grpc_addr, http $http_addr), $BENCH_SECS s"
    start_rss_sampler "$serve_pid" one "$dir/rss"
    local cpu0 cpu1 rate_s p50 p99 acked client_cores check low high
    cpu0=$(cpu_ticks "$serve_pid")
    if [[ $kind == http ]]; then
        WRK_BODY=$work/body.json wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${BENCH_SECS}s" --timeout 60s \
            -s "$wrk_lua" "http://$http_addr/v1/events" >"$dir/load.out" 2>&1 ||
            die "$label: wrk failed: $(tail -n 5 "$dir/load.out")"
    else
        local pace=()
        [[ -n $rate ]] && pace=(--rate "$rate")
        "$loader" --addr "$grpc_addr" --streams "$STREAMS" --batch "$BATCH" --secs "$BENCH_SECS" \
            --warmup "$WARMUP" --ids v4 "${pace[@]}" >"$dir/load.out" 2>&1 ||
            die "$label: grpc_load failed: $(tail -n 5 "$dir/load.out")"
    fi
    cpu1=$(cpu_ticks "$serve_pid")
    stop_rss_sampler
    sed 's/^/   /' "$dir/load.out" >&2

    stop_serve "$label" "$dir/serve.log"
    # The records in the queue, read offline from the directory.
    local queued
    queued=$("$bin" status "$dir/data" --json | jq -r '.records') ||
        die "$label: telespool status $dir/data failed"
    [[ $queued =~ ^[0-9]+$ ]] || die "$label: telespool status gave no record count: $queued"
    if [[ $kind == http ]]; then
        local r sent responses ok partial non2xx sockerr secs
        r=$(grep '^wrk_result ' "$dir/load.out") || die "$label: no wrk_result line in wrk's output"
        sent=$(field "$r" requests_sent) responses=$(field "$r" responses) ok=$(field "$r" ok)
        partial=$(field "$r" partial) non2xx=$(field "$r" non2xx) sockerr=$(field "$r" socket_errors)
        secs=$(field "$r" duration_s)
        [[ $(field "$r" ids_per_request) == "$BATCH" ]] || die "$label: the body template does not hold $BATCH ids"
        acked=$((ok * BATCH))
        rate_s=$(awk -v a="$acked" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')
        p50=$(field "$r" p50_ms) p99=$(field "$r" p99_ms)
        client_cores=$(awk -v t="$(field "$r" client_cpu_ticks)" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", t / hz / s }')
        # Requests in flight when wrk stopped, and answers with failed events,
        # may or may not be queued: the queue must hold every event acked and
        # none beyond those.
        low=$acked
        high=$((acked + (sent - responses + partial + non2xx) * BATCH))
        if ((non2xx + partial + sockerr > 0)); then
            fail "$label: $non2xx non-2xx answers, $partial answers with failed events, $sockerr socket errors"
        fi
    else
        local r errors sent
        r=$(grep '^events=' "$dir/load.out" | tail -n 1) || die "$label: no result line in grpc_load's output"
        acked=$(field "$r" acked) sent=$(field "$r" sent) errors=$(field "$r" errors)
        rate_s=$(field "$r" rate) p50=$(field "$r" p50_ms) p99=$(field "$r" p99_ms)
        client_cores=$(field "$r" client_cores)
        # Every payload is answered before a stream ends; one whose stream
        # failed may or may not be queued.
        low=$acked
        high=$sent
        if ((errors > 0)); then fail "$label: $errors load errors ($(grep 'first error' "$dir/load.out" || true))"; fi
    fi
    if ((queued == acked)); then
        check="queued $queued = acked"
    elif ((queued >= low && queued <= high)); then
        check="queued $queued, acked $acked (+ $((queued - acked)) unanswered)"
    else
        check="queued $queued != acked $acked"
        fail "$label: the queue holds $queued records, $acked events were acknowledged (at most $high could be queued)"
    fi
    rows+=("$label|$rate_s|$p50|$p99|$(mib "$dir/rss")|$(us_per_event $((cpu1 - cpu0)) "$acked")|$client_cores|$check")
    rm -rf "$dir"
}

run_postgres
run_telespool http "telespool HTTP (wrk -c $WRK_CONNS, $BATCH events/request)" http
run_telespool grpc-closed "telespool gRPC closed loop ($STREAMS streams x $BATCH)" grpc
run_telespool grpc-paced "telespool gRPC paced at $PACED_RATE events/s" grpc "$PACED_RATE"

# ---------------------------------------------------------------- summary
load_after=$(uptime)
echo
echo "bench-vs-postgres: $started, commit $commit, $(nproc) cores, $BENCH_SECS s per run (gRPC after a ${WARMUP} s warm-up), events of $event_bytes B encoded, BENCH_DIR=$BENCH_DIR"
echo "Postgres $pg_version (fsync=$pg_fsync, synchronous_commit=$pg_sync, wal_sync_method=$pg_wal_sync, shared_buffers=$pg_shared); telespool --sync always, event_logs mirror on"
echo "load before: $load_before"
echo "load after:  $load_after"
echo "latency: per transaction / request / payload of $BATCH events; CPU per event: the server's user + system time over the run / events acked"
echo
# The table; the ratio is events/s over the outbox's.
table=("path|events/s|p50 ms|p99 ms|RssAnon peak MiB|CPU us/event|client cores|vs outbox|check")
for row in "${rows[@]}"; do
    IFS='|' read -r path rate p50 p99 rss cpu client check <<<"$row"
    table+=("$(awk -v path="$path" -v rate="$rate" -v p50="$p50" -v p99="$p99" -v rss="$rss" -v cpu="$cpu" \
        -v client="$client" -v check="$check" -v pg="$pg_rate" 'BEGIN {
            printf "%s|%s|%.1f|%.1f|%s|%s|%s|%s|%s", path, rate, p50, p99, rss, cpu, client, (pg > 0 ? sprintf("%.2fx", rate / pg) : "-"), check
        }')")
done
printf '%s\n' "${table[@]}" | awk -F '|' '
    { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
    END {
        for (r = 1; r <= NR; r++) {
            line = ""
            for (i = 1; i <= NF; i++) line = line sprintf("%-*s  ", w[i], cell[r, i])
            sub(/ +$/, "", line)
            print line
        }
    }'
echo
if ((${#failures[@]})); then
    printf 'FAILED: %s\n' "${failures[@]}"
    exit 1
fi
echo "all checks passed"
