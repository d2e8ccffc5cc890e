#!/bin/sh
# SSM Distributor uninstall script for openclaw-token-sync: removes the package (its prerm lets a
# running sync finish) and disables its timer, recording that it was enabled, so the install.sh
# of an "uninstall and reinstall" update (within the hour) turns it back on. On a host where the
# package is not installed (a tarball install) it touches nothing. The timer is disabled only
# once the package is gone: a failed removal leaves the host as it was.
# /etc/openclaw-token-sync/config.toml stays (dpkg --purge removes it).
set -eu
state=/var/lib/openclaw-token-sync
if ! dpkg-query -W -f='${Status}' openclaw-token-sync 2>/dev/null | grep -q 'ok installed'; then
    echo "openclaw-token-sync distributor: the package is not installed; nothing to do"
    exit 0
fi
enabled=0
if [ -d /run/systemd/system ] && systemctl is-enabled -q openclaw-token-sync.timer 2>/dev/null; then
    enabled=1
fi
DEBIAN_FRONTEND=noninteractive dpkg --remove openclaw-token-sync
if [ "$enabled" = 1 ]; then
    mkdir -p "$state" && : > "$state/timer-enabled"
    systemctl disable -q openclaw-token-sync.timer 2>/dev/null || true
fi
echo "openclaw-token-sync distributor: removed (config kept)"
