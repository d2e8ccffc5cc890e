#!/usr/bin/env bash
# Installs openclaw-token-sync on an instance: the binary, its config, the systemd service and
# timer (hardened, rendered for the gateway's user), and retires a legacy fetch-claude-token
# timer/script (disabled, and a copy kept under /var/backups/openclaw-token-sync/).
#
#   install.sh --user NAME --secret-id ID [--region REGION] [--binary PATH] [--unit NAME]
#              [--version-stage CANARY] [--root DIR] [--home DIR --uid N] [--no-enable]
#   install.sh --uninstall [--root DIR] [--purge]
#
# --root DIR installs into a scratch root (nothing is enabled; for packaging and tests).
# Uninstall keeps /etc/openclaw-token-sync/config.toml unless --purge.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root="" user="" secret_id="" region="" binary="" unit="" version_stage=""
home="" uid="" enable=1 uninstall=0 purge=0
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --user) user=$2; shift 2 ;;
        --secret-id) secret_id=$2; shift 2 ;;
        --region) region=$2; shift 2 ;;
        --version-stage) version_stage=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --unit) unit=$2; shift 2 ;;
        --root) root=$(cd "$2" && pwd); shift 2 ;;
        --home) home=$2; shift 2 ;;
        --uid) uid=$2; shift 2 ;;
        --no-enable) enable=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage ;;
        *) echo "install.sh: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$root" ] && enable=0
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or use --root DIR for a scratch install)" >&2
    exit 2
fi
live_systemd=0
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    live_systemd=1
fi
bin_path=$root/usr/local/bin/openclaw-token-sync
config=$root/etc/openclaw-token-sync/config.toml
units=$root/etc/systemd/system
manifest=$root/var/lib/openclaw-token-sync/installed-files
say() { echo "install.sh: $*"; }

if [ "$uninstall" = 1 ]; then
    if [ "$live_systemd" = 1 ]; then
        systemctl disable --now openclaw-token-sync.timer 2>/dev/null || true
    fi
    if [ -f "$manifest" ]; then
        while IFS= read -r path; do
            [ "$path" = "/etc/openclaw-token-sync/config.toml" ] && [ "$purge" = 0 ] && continue
            rm -f "$root$path" && say "removed $path"
        done < "$manifest"
        rm -f "$manifest"
    fi
    rmdir "$root/var/lib/openclaw-token-sync" 2>/dev/null || true
    if [ "$purge" = 1 ]; then
        rm -f "$config"; rmdir "$root/etc/openclaw-token-sync" 2>/dev/null || true
    elif [ -f "$config" ]; then
        say "kept $config (--purge removes it)"
    fi
    [ "$live_systemd" = 1 ] && systemctl daemon-reload
    say "uninstalled"
    exit 0
fi

[ -n "$user" ] || { echo "install.sh: --user is required" >&2; exit 2; }
[ -n "$secret_id" ] || { echo "install.sh: --secret-id is required" >&2; exit 2; }
printf '%s' "$user" | grep -Eq '^[a-z_][a-z0-9_-]{0,31}$' || { echo "install.sh: invalid user name" >&2; exit 2; }
printf '%s' "$secret_id" | grep -Eq '^[A-Za-z0-9/_+=.@:-]{1,2048}$' || { echo "install.sh: invalid secret id" >&2; exit 2; }
[ -z "$version_stage" ] || printf '%s' "$version_stage" | grep -Eq '^[A-Za-z0-9_.+=@-]{1,256}$' || { echo "install.sh: invalid version stage" >&2; exit 2; }
[ -z "$region" ] || printf '%s' "$region" | grep -Eq '^[a-z]{2}(-[a-z]+)+-[0-9]$' || { echo "install.sh: invalid region" >&2; exit 2; }
if [ -z "$home" ]; then home=$(getent passwd "$user" | cut -d: -f6); fi
if [ -z "$uid" ]; then uid=$(id -u "$user"); fi
[ -n "$home" ] && [ -n "$uid" ] || { echo "install.sh: cannot resolve user $user (pass --home and --uid)" >&2; exit 2; }
if [ -z "$binary" ]; then
    for candidate in "$here/openclaw-token-sync" "$here/../target/release/openclaw-token-sync"; do
        [ -x "$candidate" ] && binary=$candidate && break
    done
fi
[ -n "$binary" ] && [ -x "$binary" ] || { echo "install.sh: no binary found (pass --binary PATH)" >&2; exit 2; }

mkdir -p "$(dirname "$manifest")"
: > "$manifest.new"
record() { echo "$1" >> "$manifest.new"; }

install -D -m 0755 "$binary" "$bin_path"; record /usr/local/bin/openclaw-token-sync
say "installed /usr/local/bin/openclaw-token-sync"

install -d -m 0700 "$(dirname "$config")"
if [ -f "$config" ]; then
    say "kept existing /etc/openclaw-token-sync/config.toml"
else
    umask 077
    {
        echo "# openclaw-token-sync configuration (see README). Flags and environment override it."
        echo "secret-id = \"$secret_id\""
        echo "user = \"$user\""
        # No unit: sync finds every OpenClaw gateway of the user (one per profile).
        [ -n "$unit" ] && echo "unit = \"$unit\""
        [ -n "$region" ] && echo "region = \"$region\""
        [ -n "$version_stage" ] && echo "version-stage = \"$version_stage\""
    } > "$config"
    chmod 0600 "$config"
    say "wrote /etc/openclaw-token-sync/config.toml"
fi
record /etc/openclaw-token-sync/config.toml

install -d -m 0755 "$units"
sed -e "s|@HOME@|$home|g" -e "s|@UID@|$uid|g" "$here/openclaw-token-sync.service" > "$units/openclaw-token-sync.service"
cp "$here/openclaw-token-sync.timer" "$units/openclaw-token-sync.timer"
chmod 0644 "$units/openclaw-token-sync.service" "$units/openclaw-token-sync.timer"
record /etc/systemd/system/openclaw-token-sync.service
record /etc/systemd/system/openclaw-token-sync.timer
say "installed openclaw-token-sync.service and .timer (ReadWritePaths=$home /run/user/$uid)"
mv "$manifest.new" "$manifest"

# Retire the legacy fetch-claude-token timer and script, keeping a copy.
backup=$root/var/backups/openclaw-token-sync/legacy-$(date +%Y%m%dT%H%M%S)
found=0
for legacy in \
    "$root/etc/systemd/system/fetch-claude-token.timer" "$root/etc/systemd/system/fetch-claude-token.service" \
    "$root$home/.config/systemd/user/fetch-claude-token.timer" "$root$home/.config/systemd/user/fetch-claude-token.service" \
    "$root/usr/local/bin/fetch-claude-token.sh" "$root/usr/local/bin/fetch-claude-token" "$root$home/fetch-claude-token.sh"; do
    [ -e "$legacy" ] || continue
    if [ "$found" = 0 ] && [ "$live_systemd" = 1 ]; then
        systemctl disable --now fetch-claude-token.timer 2>/dev/null || true
        runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" systemctl --user disable --now fetch-claude-token.timer 2>/dev/null || true
    fi
    found=1
    mkdir -p "$backup"
    cp -a "$legacy" "$backup/"
    rm -f "$legacy"
    say "retired legacy ${legacy#"$root"} (copy in ${backup#"$root"}/)"
done

# The gateway is a user unit: it runs without a login session (at boot, for SSM and the timer)
# only when its user lingers.
if [ "$live_systemd" = 1 ]; then
    if loginctl enable-linger "$user"; then
        say "enabled lingering for $user (its systemd manager and gateway run without a login)"
    else
        say "could not enable lingering for $user: run loginctl enable-linger $user"
    fi
elif [ -n "$root" ]; then
    install -d -m 0755 "$root/var/lib/systemd/linger"
    : > "$root/var/lib/systemd/linger/$user"
    record "/var/lib/systemd/linger/$user"
    say "enabled lingering for $user (flag file in the scratch root)"
else
    say "systemd is not running: enable lingering for $user once it is (loginctl enable-linger $user)"
fi

if [ "$enable" = 1 ] && [ "$live_systemd" = 1 ]; then
    systemctl daemon-reload
    systemctl enable --now openclaw-token-sync.timer
    say "enabled openclaw-token-sync.timer"
else
    say "not enabling the timer (scratch root, --no-enable, or systemd not running); then: systemctl daemon-reload && systemctl enable --now openclaw-token-sync.timer"
fi
