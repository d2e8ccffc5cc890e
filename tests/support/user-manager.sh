#!/usr/bin/env bash
# Starts or stops a real `systemd --user` manager for a throwaway user. Test harness only; needs
# root. Two modes, chosen by `mode` (DESIGN.md section 7):
#   linger      PID 1 is systemd (an ordinary Debian/Ubuntu VM, cgroup v2): the user's real
#               user@UID.service, started by `loginctl enable-linger` and stopped with it;
#   standalone  PID 1 is not systemd (containers, this project's CI machine): `systemd --user`
#               started by hand in a cgroup of its own, with a private /run/systemd.
#   user-manager.sh mode          -> prints linger or standalone
#   user-manager.sh start USER    -> prints the manager's PID once it answers "running"
#   user-manager.sh stop USER PID
# OCSYNC_MANAGER_MODE forces a mode; OCSYNC_PROC (default /proc) and OCSYNC_RUN_SYSTEMD (default
# /run/systemd/system) are where `mode` looks, so the selection can be checked without a VM.
set -euo pipefail

mode() {
    if [ -n "${OCSYNC_MANAGER_MODE:-}" ]; then
        echo "$OCSYNC_MANAGER_MODE"
        return
    fi
    local comm
    comm=$(cat "${OCSYNC_PROC:-/proc}/1/comm" 2>/dev/null || true)
    # sd_booted(): PID 1 is systemd and it says so in /run/systemd/system.
    if [ "$comm" = systemd ] && [ -d "${OCSYNC_RUN_SYSTEMD:-/run/systemd/system}" ]; then
        echo linger
    else
        echo standalone
    fi
}

wait_running() { # USER UID PID-or-empty LOG-or-empty
    local user=$1 uid=$2 manager=$3 log=$4 state
    for _ in $(seq 1 100); do
        state=$(runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" systemctl --user show -p SystemState --value 2>/dev/null || true)
        if [ "$state" = running ] || [ "$state" = degraded ]; then
            return 0
        fi
        if [ -n "$manager" ] && ! kill -0 "$manager" 2>/dev/null; then
            echo "systemd --user for $user exited early; log follows" >&2
            [ -n "$log" ] && cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "systemd --user for $user did not answer within 10 s" >&2
    [ -n "$log" ] && cat "$log" >&2
    return 1
}

cmd=${1:-}
case "$cmd" in
mode)
    mode
    exit 0
    ;;
start|stop) ;;
*)
    echo "usage: $0 mode | start USER | stop USER PID" >&2
    exit 2
    ;;
esac
user=$2
uid=$(id -u "$user")
cg="ocsync-$user"

if [ "$(mode)" = linger ]; then
    case "$cmd" in
    start)
        loginctl enable-linger "$user"
        systemctl start "user@$uid.service"
        wait_running "$user" "$uid" "" "" || { journalctl -u "user@$uid.service" -n 50 >&2 || true; exit 1; }
        systemctl show -p MainPID --value "user@$uid.service"
        ;;
    stop)
        loginctl disable-linger "$user" || true
        systemctl stop "user@$uid.service" || true
        ;;
    esac
    exit 0
fi

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
            mkdir -m 0755 "$fake/system" "$fake/journal"
            # The journal stays reachable (its sockets appear once a journald runs), so the
            # manager connects services'"'"' output to it as on a real host.
            mkdir -p /run/systemd/journal
            mount --bind /run/systemd/journal "$fake/journal"
            mount --rbind "$fake" /run/systemd
            exec setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups \
                env -i HOME="$2" USER="$1" LOGNAME="$1" PATH=/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$3" \
                /lib/systemd/systemd --user' _ "$user" "$home" "$uid"
    ) </dev/null >"$log" 2>&1 &
    manager=$!
    if wait_running "$user" "$uid" "$manager" "$log"; then
        # This manager runs without a login session, as a lingering user's does: say so where
        # logind would (status checks it).
        install -d -m 0755 /var/lib/systemd/linger
        : > "/var/lib/systemd/linger/$user"
        echo "$manager"
        exit 0
    fi
    kill "$manager" 2>/dev/null || true
    exit 1
    ;;
stop)
    pid=$3
    rm -f "/var/lib/systemd/linger/$user"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
esac
