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

# --- value rules: the same block in deploy/install.sh and deploy/distributor/install.sh (a test
# compares them). Every value either script writes into a config or unit file passes one of
# these checks first. A check returns 1 with $problem saying what is wrong; the value itself is
# never printed, at most one character of it, and a control character only as its byte value.
LC_ALL=C
export LC_ALL
nl='
'
problem=""
# Sets $problem and returns 0 when $2 has a character outside the bracket set $1.
has_bad_char() {
    case "$2" in *[!$1]*) ;; *) return 1 ;; esac
    # shellcheck disable=SC2295 # $1 is a bracket set: a pattern on purpose
    bad_rest=${2#"${2%%[!$1]*}"}
    bad_char=${bad_rest%"${bad_rest#?}"}
    case "$bad_char" in
        "$nl") problem="contains a line break" ;;
        ' ') problem="contains a space" ;;
        \') problem="contains a single quote" ;;
        \") problem="contains a double quote" ;;
        [[:cntrl:]]) problem="contains a control character (byte 0x$(printf '%s' "$bad_char" | od -An -tx1 | tr -d ' \n'))" ;;
        [[:print:]]) problem="contains '$bad_char'" ;;
        *) problem="contains a non-ASCII byte (0x$(printf '%s' "$bad_char" | od -An -tx1 | tr -d ' \n'))" ;;
    esac
    problem="$problem; allowed: $1"
}
# 1 to $3 characters of the set $1.
check_chars() {
    [ -n "$2" ] || { problem="is empty"; return 1; }
    if has_bad_char "$1" "$2"; then return 1; fi
    [ "${#2}" -le "$3" ] || { problem="is longer than $3 characters"; return 1; }
}
# A user name of POSIX's portable characters, not starting with -.
check_user() {
    check_chars 'A-Za-z0-9._-' "$1" 32 || return 1
    case "$1" in -* | . | ..) problem="is not a user name (starts with -, or is . or ..)"; return 1 ;; esac
    case "$1" in *[!0-9]*) ;; *) problem="is all digits (a uid, not a user name)"; return 1 ;; esac
}
# A Secrets Manager secret name or ARN.
check_secret_id() { check_chars 'A-Za-z0-9/_+=.@:-' "$1" 2048; }
# A staging label (what the binary accepts for version-stage).
check_version_stage() { check_chars 'A-Za-z0-9_.+=@-' "$1" 256; }
check_region() {
    check_chars 'a-z0-9-' "$1" 64 || return 1
    printf '%s\n' "$1" | grep -Eq '^[a-z]{2}(-[a-z]+)+-[0-9]+$' \
        || { problem="is not a region name like eu-west-1"; return 1; }
}
# A systemd service unit: NAME.service, or NAME (systemctl adds .service); an instance of a
# template needs its instance (NAME@INSTANCE.service).
check_unit() {
    check_chars 'A-Za-z0-9:_.@-' "$1" 256 || return 1
    case "$1" in
        -* | .*) problem="is not a unit name (starts with - or .)"; return 1 ;;
        *@.service | *@) problem="is a template without an instance (NAME@INSTANCE.service)"; return 1 ;;
        *.service) ;;
        *.socket | *.timer | *.target | *.mount | *.automount | *.path | *.slice | *.scope | *.swap | *.device)
            problem="is not a .service unit (the gateway runs as a service)"; return 1 ;;
    esac
}
# An absolute path without whitespace, quotes, control characters or systemd's % specifiers.
check_path() {
    check_chars 'A-Za-z0-9/._+@:,=~-' "$1" 4096 || return 1
    case "$1" in /*) ;; *) problem="is not an absolute path"; return 1 ;; esac
    case "$1/" in */./* | */../*) problem="has a . or .. component"; return 1 ;; esac
}
check_uid() { check_chars '0-9' "$1" 10; }
# --- end of the value rules
secret_id=${SSM_SECRET_ID:-} user=${SSM_USER:-} region=${SSM_REGION:-}
stage=${SSM_VERSION_STAGE:-} enable=${SSM_ENABLE_TIMER:-false}
# The rules of deploy/install.sh, before anything happens.
[ -z "$secret_id" ] || check_secret_id "$secret_id" || fail "SSM_SECRET_ID: $problem"
[ -z "$user" ] || check_user "$user" || fail "SSM_USER: $problem"
[ -z "$region" ] || check_region "$region" || fail "SSM_REGION: $problem"
[ -z "$stage" ] || check_version_stage "$stage" || fail "SSM_VERSION_STAGE: $problem"
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
if [ -n "$user" ] && ! getent passwd "$user" >/dev/null 2>&1; then
    say "warning: SSM_USER is not a user on this host (yet): the sync fails until it is"
elif [ -n "$user" ] && [ "$systemd" = 1 ] && command -v loginctl >/dev/null 2>&1; then
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
