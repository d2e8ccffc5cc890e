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
# Every value is checked before anything is written (exit 2, naming the flag): --user of
# A-Za-z0-9._- and a user of this host (or --home and --uid in a --root), --secret-id of
# A-Za-z0-9/_+=.@:- (a name or ARN), --region like eu-west-1, --version-stage of A-Za-z0-9_.+=@-,
# --unit of A-Za-z0-9:_.@- (NAME or NAME.service), --binary and --home absolute paths of
# A-Za-z0-9/._+@:,=~-, --uid digits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root="" user="" secret_id="" region="" binary="" unit="" version_stage=""
home="" uid="" enable=1 uninstall=0 purge=0
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
# A refused value: exit 2, naming the flag and what is wrong (never echoing the value raw).
refuse() { echo "install.sh: $1: $2" >&2; exit 2; }
need() { [ $# -ge 2 ] || refuse "$1" "needs a value"; }
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

while [ $# -gt 0 ]; do
    case "$1" in
        --user) need "$@"; user=$2; shift 2 ;;
        --secret-id) need "$@"; secret_id=$2; shift 2 ;;
        --region) need "$@"; region=$2; shift 2 ;;
        --version-stage) need "$@"; version_stage=$2; shift 2 ;;
        --binary) need "$@"; binary=$2; shift 2 ;;
        --unit) need "$@"; unit=$2; shift 2 ;;
        --root)
            need "$@"
            [ -d "$2" ] || refuse --root "is not a directory"
            root=$(cd "$2" && pwd); shift 2 ;;
        --home) need "$@"; home=$2; shift 2 ;;
        --uid) need "$@"; uid=$2; shift 2 ;;
        --no-enable) enable=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage ;;
        *) printf 'install.sh: unknown argument %q\n' "$1" >&2; usage ;;
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
    rmdir "$root/etc/systemd/system/openclaw-token-sync.service.d" 2>/dev/null || true
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

# Every value this script writes (config.toml, the drop-in install.conf, the linger flag) is
# checked here, before anything is written.
[ -n "$user" ] || refuse --user "is required"
[ -n "$secret_id" ] || refuse --secret-id "is required"
check_user "$user" || refuse --user "$problem"
check_secret_id "$secret_id" || refuse --secret-id "$problem"
[ -z "$region" ] || check_region "$region" || refuse --region "$problem"
[ -z "$version_stage" ] || check_version_stage "$version_stage" || refuse --version-stage "$problem"
[ -z "$unit" ] || check_unit "$unit" || refuse --unit "$problem"
[ -z "$home" ] || check_path "$home" || refuse --home "$problem"
[ -z "$uid" ] || check_uid "$uid" || refuse --uid "$problem"
if [ -n "$binary" ]; then
    check_path "$binary" || refuse --binary "$problem"
    [ -f "$binary" ] || refuse --binary "is not a regular file"
    [ -x "$binary" ] || refuse --binary "is not executable"
fi
# The user must exist here, except in a scratch root given its home and uid.
if [ -z "$root" ] || [ -z "$home" ] || [ -z "$uid" ]; then
    passwd=$(getent passwd "$user") || refuse --user "is not a user on this host (getent passwd${root:+; or pass --home and --uid})"
    if [ -z "$home" ]; then
        home=$(printf '%s\n' "$passwd" | cut -d: -f6)
        check_path "$home" || refuse --user "has a home directory that cannot go in the unit: it $problem (pass --home)"
    fi
    if [ -z "$uid" ]; then
        uid=$(printf '%s\n' "$passwd" | cut -d: -f3)
        check_uid "$uid" || refuse --user "has a uid that $problem (pass --uid)"
    fi
fi
[ "$home" != / ] || refuse --home "is /: the whole system would be writable for the sync"
if [ -z "$binary" ]; then
    for candidate in "$here/openclaw-token-sync" "$here/../target/release/openclaw-token-sync"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ]; then binary=$candidate && break; fi
    done
    [ -n "$binary" ] || refuse --binary "not given, and no binary beside install.sh"
fi

mkdir -p "$(dirname "$manifest")"
: > "$manifest.new"
record() { echo "$1" >> "$manifest.new"; }

install -D -m 0755 "$binary" "$bin_path"; record /usr/local/bin/openclaw-token-sync
say "installed /usr/local/bin/openclaw-token-sync"

# Man pages and bash completion, generated by the binary itself (the units' Documentation=).
man_dir=$root/usr/local/share/man/man1
install -d -m 0755 "$man_dir"
pages=$(mktemp -d)
"$bin_path" man --out-dir "$pages"
for page in "$pages"/*.1; do
    install -m 0644 "$page" "$man_dir/"; record "/usr/local/share/man/man1/$(basename "$page")"
done
rm -rf "$pages"
completion_dir=$root/usr/local/share/bash-completion/completions
install -d -m 0755 "$completion_dir"
"$bin_path" completions bash > "$completion_dir/openclaw-token-sync"
chmod 0644 "$completion_dir/openclaw-token-sync"
record /usr/local/share/bash-completion/completions/openclaw-token-sync
say "installed man pages (man openclaw-token-sync) and bash completion"

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

install -d -m 0755 "$units" "$units/openclaw-token-sync.service.d"
# The units exactly as the Debian package ships them; what is particular to this host (the
# binary's place, the one home the sync may write) goes in a drop-in.
cp "$here/openclaw-token-sync.service" "$units/openclaw-token-sync.service"
cp "$here/openclaw-token-sync.timer" "$units/openclaw-token-sync.timer"
cat > "$units/openclaw-token-sync.service.d/install.conf" <<UNIT
# Written by install.sh for this host (a tarball install): the binary it installed, and only
# the gateway user's home and runtime directory (and the metrics directory) writable.
[Service]
ExecStart=
ExecStart=/usr/local/bin/openclaw-token-sync sync --config /etc/openclaw-token-sync/config.toml
ReadWritePaths=
ReadWritePaths=$home -/run/user/$uid -/var/lib/prometheus/node-exporter
UNIT
chmod 0644 "$units/openclaw-token-sync.service" "$units/openclaw-token-sync.timer" "$units/openclaw-token-sync.service.d/install.conf"
record /etc/systemd/system/openclaw-token-sync.service
record /etc/systemd/system/openclaw-token-sync.timer
record /etc/systemd/system/openclaw-token-sync.service.d/install.conf
say "installed openclaw-token-sync.service and .timer, drop-in install.conf (ReadWritePaths=$home /run/user/$uid)"

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
mv "$manifest.new" "$manifest"

if [ "$enable" = 1 ] && [ "$live_systemd" = 1 ]; then
    systemctl daemon-reload
    systemctl enable --now openclaw-token-sync.timer
    say "enabled openclaw-token-sync.timer"
else
    say "not enabling the timer (scratch root, --no-enable, or systemd not running); then: systemctl daemon-reload && systemctl enable --now openclaw-token-sync.timer"
fi
