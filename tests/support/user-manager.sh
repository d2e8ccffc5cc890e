#!/usr/bin/env bash
# Starts or stops a real `systemd --user` manager for a throwaway user on a host whose PID 1 is
# not systemd (DESIGN.md section 7). Test harness only; needs root.
#   user-manager.sh start USER   -> prints the manager's PID once it answers "running"
#   user-manager.sh stop USER PID
set -euo pipefail
cmd=$1 user=$2
uid=$(id -u "$user")
cg="ocsync-$user"
case "$cmd" in
start)
    for hierarchy in systemd unified; do
        if [ -d "/sys/fs/cgroup/$hierarchy" ]; then
            mkdir -p "/sys/fs/cgroup/$hierarchy/$cg"
            chown -R "$user:" "/sys/fs/cgroup/$hierarchy/$cg"
        fi
    done
    install -d -m 0700 -o "$user" -g "$(id -g "$user")" "/run/user/$uid"
    home=$(getent passwd "$user" | cut -d: -f6)
    log="/run/user/$uid/manager.log"
    (
        for hierarchy in systemd unified; do
            [ -d "/sys/fs/cgroup/$hierarchy/$cg" ] && echo "$BASHPID" > "/sys/fs/cgroup/$hierarchy/$cg/cgroup.procs"
        done
        exec unshare -m --propagation private bash -c '
            fake=$(mktemp -d /tmp/ocsync-run-systemd.XXXXXX)
            chmod 0755 "$fake"
            mkdir -m 0755 "$fake/system"
            mount --bind "$fake" /run/systemd
            exec setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups \
                env -i HOME="$2" USER="$1" LOGNAME="$1" PATH=/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$3" \
                /lib/systemd/systemd --user' _ "$user" "$home" "$uid"
    ) </dev/null >"$log" 2>&1 &
    manager=$!
    for _ in $(seq 1 100); do
        state=$(runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" systemctl --user show -p SystemState --value 2>/dev/null || true)
        if [ "$state" = running ] || [ "$state" = degraded ]; then
            echo "$manager"
            exit 0
        fi
        if ! kill -0 "$manager" 2>/dev/null; then
            echo "systemd --user for $user exited early; log follows" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "systemd --user for $user did not answer within 10 s; log follows" >&2
    cat "$log" >&2
    kill "$manager" 2>/dev/null || true
    exit 1
    ;;
stop)
    pid=$3
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start|stop USER [PID]" >&2
    exit 2
    ;;
esac
