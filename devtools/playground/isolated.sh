#!/usr/bin/env bash
# Run a command inside a fresh network namespace that has only loopback, so nothing it starts can reach another host.
# usage: devtools/playground/isolated.sh COMMAND [ARGS...]     (exit 3: this machine cannot create the namespace)
#
# Microsoft 365 Agents Playground (and Chromium) try telemetry, Azure IMDS (169.254.169.254) and DNS; inside the
# namespace every such connect() fails at once with ENETUNREACH. The command also runs in its own PID namespace when
# the kernel allows it: when the command ends (or this script is killed) every process it started is ended too.
set -u

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

export TEAMSAPPTESTER_BROWSER=none          # the Playground must not try to open a browser
export APPLICATION_INSIGHTS_NO_STATSBEAT=1  # stops the bundled App Insights SDK probing Azure IMDS and DNS

# Inside: bring loopback up, then run the command as a child (not exec) so this shell stays PID 1 and reaps orphans.
inner='ip link set lo up || { echo "isolated.sh: cannot bring up loopback in the namespace" >&2; exit 3; }; "$@"; exit $?'

# Most isolated first. --map-root-user variants let a non-root developer use a user namespace instead of root.
variants=(
  "--net --pid --fork --kill-child --mount-proc"
  "--net"
  "--map-root-user --net --pid --fork --kill-child --mount-proc"
  "--map-root-user --net"
)
for flags in "${variants[@]}"; do
  # shellcheck disable=SC2086  # flags are deliberately split into words
  if unshare $flags -- true >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    exec unshare $flags -- bash -c "$inner" isolated "$@"
  fi
done

echo "isolated.sh: cannot create a loopback-only network namespace here (\`unshare -n\` is not permitted:" \
  "run as root, or allow unprivileged user namespaces); refusing to run the command without isolation." >&2
exit 3
