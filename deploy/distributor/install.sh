#!/bin/sh
# SSM Distributor install (and update) script for openclaw-token-sync. AWS-ConfigureAWSPackage
# runs it as root in the unpacked package, beside the .deb. It installs the .deb (keeping a
# config the operator changed) and, only when asked through additionalArguments, configures the
# host and enables the timer:
#   {"SSM_SECRET_ID": "openclaw/anthropic", "SSM_USER": "ubuntu", "SSM_REGION": "us-east-1",
#    "SSM_VERSION_STAGE": "CANARY", "SSM_ENABLE_TIMER": "true"}
# A config that already names a secret is never rewritten.
set -eu
cd "$(dirname "$0")"
say() { echo "openclaw-token-sync distributor: $*"; }
fail() { echo "openclaw-token-sync distributor: $*" >&2; exit 1; }

valid() { printf '%s' "$2" | grep -Eq "$1"; }
secret_id=${SSM_SECRET_ID:-} user=${SSM_USER:-} region=${SSM_REGION:-}
stage=${SSM_VERSION_STAGE:-} enable=${SSM_ENABLE_TIMER:-false}
[ -z "$secret_id" ] || valid '^[A-Za-z0-9/_+=.@:-]{1,2048}$' "$secret_id" || fail "invalid SSM_SECRET_ID"
[ -z "$user" ] || valid '^[a-z_][a-z0-9_-]{0,31}$' "$user" || fail "invalid SSM_USER"
[ -z "$region" ] || valid '^[a-z]{2}(-[a-z]+)+-[0-9]$' "$region" || fail "invalid SSM_REGION"
[ -z "$stage" ] || valid '^[A-Za-z0-9_.+=@-]{1,256}$' "$stage" || fail "invalid SSM_VERSION_STAGE"
case "$enable" in true|false) ;; *) fail "SSM_ENABLE_TIMER must be true or false" ;; esac

set -- openclaw-token-sync_*.deb
[ -f "$1" ] || fail "no openclaw-token-sync_*.deb beside this script"
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$1"
say "installed $1"

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
if [ -n "$user" ] && command -v loginctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    # A user unit gateway runs without a login session only when its user lingers.
    loginctl enable-linger "$user" || say "could not enable lingering for $user"
fi
if [ "$enable" = true ]; then
    if [ -d /run/systemd/system ]; then
        systemctl enable --now openclaw-token-sync.timer
        say "enabled openclaw-token-sync.timer"
    else
        fail "SSM_ENABLE_TIMER=true, but systemd is not running"
    fi
fi
