#!/usr/bin/env bash
# Run inside devtools/playground/isolated.sh (that is what `scripts/bot` does): Gradebot in sandbox mode
# (`python app.py`, which starts its own sandbox), Microsoft 365 Agents Playground, and the inner end of the UI bridge
# (unix:SOCKET -> tcp:127.0.0.1:PLAYGROUND_PORT), so a bridge on the host can reach the Playground's web UI.
# usage: devtools/playground/gradebot_in_namespace.sh SOCKET BOT_PORT PLAYGROUND_PORT LOG_DIR
# Gradebot's settings come from the environment as usual (DATABASE_URL, LOG_LEVEL, ...; PORT is set to BOT_PORT).
# Everything is stopped when stdin reaches end of file (the caller's control pipe closed: it ended or was stopped),
# on SIGTERM/SIGHUP, or as soon as one of the three ends. Exit 0 after a requested stop, 1 when a part failed.
set -u

if [ "$#" -ne 4 ]; then
  echo "usage: $0 SOCKET BOT_PORT PLAYGROUND_PORT LOG_DIR" >&2
  exit 2
fi
socket_path="$1"
bot_port="$2"
pg_port="$3"
log_dir="$4"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo" || exit 1
mkdir -p "$log_dir"
python="$repo/.venv/bin/python"
exec 4<&0 </dev/null  # fd 4: the control pipe; nothing started below reads it except the watcher

pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  # Up to 3 s on the clock (a loop of sleeps runs long under load) for a clean shutdown: Gradebot closes its store
  # and its sandbox in about 1 s; scripts/bot kills what is left 4 s after Ctrl-C.
  local deadline=$((${EPOCHREALTIME/./} + 3000000))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((${EPOCHREALTIME/./} < deadline)); do sleep 0.05; done
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  [ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null
  wait 2>/dev/null
}
trap 'stop_all; exit 0' TERM HUP
trap 'stop_all; exit 0' INT  # no effect when started in the background of a script (SIGINT is ignored there)

http_get() {  # http_get PORT PATH: the response of a plain HTTP/1.0 GET, over bash's /dev/tcp (no curl needed)
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 && cat <&3) 2>/dev/null
}

cat <&4 >/dev/null &  # returns at end of file on stdin: the caller is gone or wants everything stopped
watcher=$!
stop_requested() { ! kill -0 "$watcher" 2>/dev/null; }
give_up() {  # give_up MESSAGE: stop what started; a stop requested meanwhile is not a failure
  if stop_requested; then stop_all; exit 0; fi
  echo "gradebot_in_namespace.sh: $1" >&2
  stop_all
  exit 1
}

# The bridge first: until the Playground listens, the host side sees refused connections, not a missing socket.
"$python" "$here/bridge.py" --listen "unix:$socket_path" --connect "tcp:127.0.0.1:$pg_port" </dev/null >/dev/null &
bridge=$!
pids+=("$bridge")

PORT="$bot_port" "$python" app.py </dev/null &
bot=$!
pids+=("$bot")
for attempt in $(seq 1 301); do  # up to 30 s: the sandbox generates its keys and certificate first
  [[ "$(http_get "$bot_port" /healthz)" == *'"ok"'* ]] && break
  stop_requested && give_up "stopped during start-up"
  kill -0 "$bot" 2>/dev/null || give_up "Gradebot exited during start-up (see its log above)"
  [ "$attempt" = 301 ] && give_up "Gradebot did not answer /healthz on port $bot_port within 30 s"
  sleep 0.1
done

"$here/start_playground.sh" --log-dir "$log_dir" "$bot_port" "$pg_port" </dev/null >"$log_dir/start.out" 2>&1 &
playground=$!
pids+=("$playground")
until grep -q '^READY ' "$log_dir/start.out" 2>/dev/null; do
  stop_requested && give_up "stopped during start-up"
  kill -0 "$playground" 2>/dev/null || give_up "the Agents Playground did not start: $(cat "$log_dir/start.out")"
  sleep 0.1
done

wait -n "$watcher" "${pids[@]}"
ended=$?
if stop_requested; then
  stop_all
  exit 0
fi
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    case "$pid" in
      "$bot") echo "gradebot_in_namespace.sh: Gradebot ended (exit $ended); stopping the Playground" >&2 ;;
      "$playground") echo "gradebot_in_namespace.sh: the Agents Playground ended (exit $ended); stopping Gradebot" >&2 ;;
      *) echo "gradebot_in_namespace.sh: the UI bridge ended (exit $ended); stopping everything" >&2 ;;
    esac
    break
  fi
done
stop_all
exit 1
