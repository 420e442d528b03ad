#!/usr/bin/env bash
# Start Microsoft 365 Agents Playground (a Teams-like chat client) against a bot on 127.0.0.1, wait until it answers,
# print one line "READY <url> <log file>", then stay in the foreground until the Playground exits or is stopped.
# usage: devtools/playground/start_playground.sh [--config FILE] [--log-dir DIR] BOT_PORT [PLAYGROUND_PORT]
#   BOT_PORT         the bot listens on http://127.0.0.1:BOT_PORT/api/messages (sandbox mode: no app id, no JWT)
#   PLAYGROUND_PORT  default 56150; the web UI is http://127.0.0.1:PLAYGROUND_PORT
#   --config FILE    default devtools/playground/.m365agentsplayground.yml (the sandbox school's Chemistry 201)
#   --log-dir DIR    default a new temporary folder; the Playground's log and stdout go there
# Exit 4: the Playground is not installed or did not start. Run it inside devtools/playground/isolated.sh so its
# telemetry and metadata probes cannot leave the machine (it listens on all interfaces of its namespace).
set -u

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
config="$here/.m365agentsplayground.yml"
log_dir=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --log-dir) log_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
  echo "usage: $0 [--config FILE] [--log-dir DIR] BOT_PORT [PLAYGROUND_PORT]" >&2
  exit 2
fi
bot_port="$1"
pg_port="${2:-56150}"

cli="$repo/devtools/node_modules/@microsoft/m365agentsplayground/cli.js"
if ! command -v node >/dev/null 2>&1 || [ ! -f "$cli" ]; then
  echo "start_playground.sh: Node.js or the Agents Playground is missing; run scripts/setup" >&2
  exit 4
fi
if [ ! -f "$config" ]; then
  echo "start_playground.sh: config file $config not found" >&2
  exit 4
fi
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
if [ -z "$log_dir" ]; then
  log_dir="$(mktemp -d -t gradebot-playground.XXXXXX)"
fi
mkdir -p "$log_dir"
log_dir="$(cd "$log_dir" && pwd)"
cd "$log_dir" || exit 4  # the Playground writes ./devTools/ relative to its working folder

export TEAMSAPPTESTER_BROWSER=none
export APPLICATION_INSIGHTS_NO_STATSBEAT=1
export M365_AGENTS_PLAYGROUND_CONFIG_PATH="$config"
export M365_AGENTS_PLAYGROUND_LOGFILE="$log_dir/playground.log"

node "$cli" start -e "http://127.0.0.1:$bot_port/api/messages" -c msteams -p "$pg_port" --disable-telemetry \
  >"$log_dir/stdout.log" 2>&1 &
node_pid=$!
trap 'kill -TERM "$node_pid" 2>/dev/null; wait "$node_pid"; exit 143' TERM INT HUP

ping_playground() {
  # A plain HTTP/1.0 request over bash's /dev/tcp, so neither curl nor wget is needed.
  local answer
  answer="$( (exec 3<>"/dev/tcp/127.0.0.1/$pg_port" && printf 'GET /_debug/ping HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null)"
  [[ "$answer" == *pong* ]]
}

for _ in $(seq 1 300); do  # up to 30 s; it is usually ready in about 2 s
  if ! kill -0 "$node_pid" 2>/dev/null; then
    echo "start_playground.sh: the Playground exited during start-up; its output:" >&2
    tail -n 20 "$log_dir/stdout.log" >&2
    exit 4
  fi
  if ping_playground; then
    echo "READY http://127.0.0.1:$pg_port $log_dir/playground.log"
    wait "$node_pid"
    exit $?
  fi
  sleep 0.1
done
echo "start_playground.sh: the Playground did not answer /_debug/ping on port $pg_port within 30 s" >&2
kill -TERM "$node_pid" 2>/dev/null
wait "$node_pid"
exit 4
