#!/bin/sh
# SSM Distributor install script for openclaw-token-sync. AWS-ConfigureAWSPackage runs it as
# root in the unpacked package, beside the .deb (after uninstall.sh of the old version when it
# updates by "uninstall and reinstall"). It installs the .deb, keeping a config the operator
# changed, then takes over from a tarball install (deploy/install.sh), and restores the timer's
# enablement an uninstall.sh of this package recorded in the last hour. Only when asked through
# additionalArguments does it configure the host and enable the timer:
#   {"SSM_SECRET_ID": "openclaw/anthropic", "SSM_USER": "ubuntu", "SSM_REGION": "us-east-1",
#    "SSM_VERSION_STAGE": "CANARY", "SSM_ENABLE_TIMER": "true"}
# A config that already names a secret is never rewritten.
set -eu
cd "$(dirname "$0")"
say() { echo "openclaw-token-sync distributor: $*"; }
fail() { echo "openclaw-token-sync distributor: $*" >&2; exit 1; }

# One line matching the pattern: a value with a line break is refused (grep matches by line).
nl='
'
cr=$(printf '\r')
valid() {
    case "$2" in *"$nl"* | *"$cr"*) return 1 ;; esac
    printf '%s' "$2" | grep -Eq "$1"
}
secret_id=${SSM_SECRET_ID:-} user=${SSM_USER:-} region=${SSM_REGION:-}
stage=${SSM_VERSION_STAGE:-} enable=${SSM_ENABLE_TIMER:-false}
[ -z "$secret_id" ] || valid '^[A-Za-z0-9/_+=.@:-]{1,2048}$' "$secret_id" || fail "invalid SSM_SECRET_ID"
[ -z "$user" ] || valid '^[a-z_][a-z0-9_-]{0,31}$' "$user" || fail "invalid SSM_USER"
[ -z "$region" ] || valid '^[a-z]{2}(-[a-z]+)+-[0-9]$' "$region" || fail "invalid SSM_REGION"
[ -z "$stage" ] || valid '^[A-Za-z0-9_.+=@-]{1,256}$' "$stage" || fail "invalid SSM_VERSION_STAGE"
case "$enable" in true|false) ;; *) fail "SSM_ENABLE_TIMER must be true or false" ;; esac

set -- openclaw-token-sync_*.deb
[ -f "$1" ] || fail "no openclaw-token-sync_*.deb beside this script"
deb=$1
systemd=0
[ -d /run/systemd/system ] && systemd=1
state=/var/lib/openclaw-token-sync

# dpkg waits for nobody: retry while another package manager holds its lock (unattended
# upgrades just after boot), up to 10 minutes.
tries=0
until out=$(DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$deb" 2>&1); do
    tries=$((tries + 1))
    case "$out" in
        *lock*) [ "$tries" -lt 60 ] || fail "dpkg stayed locked for 10 minutes: $out"; sleep 10 ;;
        *) fail "dpkg -i $deb failed: $out" ;;
    esac
done
printf '%s\n' "$out"
say "installed $deb"

# A tarball install's units in /etc/systemd/system override the package's and run
# /usr/local/bin: now that the package is in place, remove what the tarball installed (its
# config stays) and carry its timer's enablement over to the package's timer.
tarball=$state/installed-files
if [ -f "$tarball" ]; then
    was_enabled=0
    if [ "$systemd" = 1 ] && systemctl is-enabled -q openclaw-token-sync.timer 2>/dev/null; then
        was_enabled=1
    fi
    while IFS= read -r path; do
        case "$path" in
            /etc/openclaw-token-sync/config.toml | /var/lib/systemd/linger/*) ;;
            /*) rm -f "$path" ;;
        esac
    done < "$tarball"
    rm -f "$tarball"
    rmdir /etc/systemd/system/openclaw-token-sync.service.d 2>/dev/null || true
    if [ "$systemd" = 1 ]; then
        systemctl daemon-reload
        if [ "$was_enabled" = 1 ]; then
            systemctl reenable openclaw-token-sync.timer
            systemctl restart openclaw-token-sync.timer
        fi
    fi
    say "replaced the tarball install (deploy/install.sh) by the package"
fi

config=/etc/openclaw-token-sync/config.toml
if [ -n "$secret_id" ] && ! grep -Eq '^[[:space:]]*secret-id[[:space:]]*=' "$config" 2>/dev/null; then
    umask 022
    {
        echo "# Written by the openclaw-token-sync Distributor package (SSM_* arguments)."
        echo "secret-id = \"$secret_id\""
        [ -z "$user" ] || echo "user = \"$user\""
        [ -z "$region" ] || echo "region = \"$region\""
        [ -z "$stage" ] || echo "version-stage = \"$stage\""
    } > "$config.new"
    mv "$config.new" "$config"
    say "wrote $config"
fi
if [ -n "$user" ] && [ "$systemd" = 1 ] && command -v loginctl >/dev/null 2>&1; then
    # A user unit gateway runs without a login session only when its user lingers.
    loginctl enable-linger "$user" || say "could not enable lingering for $user"
fi
# What an uninstall.sh of this package recorded within the last hour (the first half of an
# "uninstall and reinstall" update); an older record is a past decision, not this update's.
marker=$state/timer-enabled
restore=0
if [ -f "$marker" ] && [ -n "$(find "$marker" -mmin -60 2>/dev/null)" ]; then
    restore=1
fi
rm -f "$marker"
has_secret=0
grep -Eq '^[[:space:]]*secret-id[[:space:]]*=' "$config" 2>/dev/null && has_secret=1
if [ "$enable" = true ]; then
    [ "$has_secret" = 1 ] || fail "the timer would fail every run: $config names no secret (pass SSM_SECRET_ID)"
    [ "$systemd" = 1 ] || fail "cannot enable openclaw-token-sync.timer: systemd is not running"
    systemctl enable --now openclaw-token-sync.timer
    say "enabled openclaw-token-sync.timer"
elif [ "$restore" = 1 ]; then
    if [ "$has_secret" = 1 ] && [ "$systemd" = 1 ]; then
        systemctl enable --now openclaw-token-sync.timer
        say "enabled openclaw-token-sync.timer again (it was enabled before the update)"
    else
        say "warning: the timer was enabled before, but is left off ($config names no secret, or systemd is not running)"
    fi
fi
