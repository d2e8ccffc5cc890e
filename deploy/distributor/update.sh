#!/bin/sh
# SSM Distributor in-place update for openclaw-token-sync (AWS-ConfigureAWSPackage with
# installationType "In-place update"): installs the new .deb over the old one. The config the
# operator changed is kept, and the timer stays as it was (enabled or not); the next timer run
# uses the new binary.
set -eu
cd "$(dirname "$0")"
set -- openclaw-token-sync_*.deb
[ -f "$1" ] || { echo "openclaw-token-sync distributor: no openclaw-token-sync_*.deb beside this script" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$1"
echo "openclaw-token-sync distributor: updated to $1"
