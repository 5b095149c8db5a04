#!/usr/bin/env bash
# Build (once) the Debian trixie chroot holding the real GIMP 3.0 that tests/test_gimp.py drives.
#
#   sudo bash tests/gimp_chroot.sh            # builds it, or does nothing if it is already there
#
# GIMP 3 is not in Debian 12, so the tests run trixie's gimp-console-3.0 in a
# chroot that shares the host's network (the worker runs on the host, on
# loopback) and process ids (the worker watches GIMP's pid). The chroot lives
# outside git, in $TEXTPROMPTIR_GIMP_CHROOT (default
# /var/cache/textpromptir-gimp-chroot); a marker file says it is complete, so
# an interrupted build is started again from scratch. Every mount is made in a
# private mount namespace (unshare), so none outlives the build, even on
# failure. Needs root, debootstrap (installed here if missing) and the network.
set -euo pipefail

CHROOT="${TEXTPROMPTIR_GIMP_CHROOT:-/var/cache/textpromptir-gimp-chroot}"
MARKER="$CHROOT/.textpromptir-gimp-chroot"
VERSION="1 trixie gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4"
PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 gir1.2-gegl-0.4)

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$VERSION" ] && [ -x "$CHROOT/usr/bin/gimp-console-3.0" ]; then
    echo "GIMP chroot ready: $CHROOT"
    exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

# The host's Debian mirror (deb822 sources first, then the classic list), else the public one.
mirror="$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n1 || true)"
if [ -z "$mirror" ]; then
    mirror="$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"
# A security mirror is no Debian archive.
case "$mirror" in *security*) mirror="http://deb.debian.org/debian" ;; esac

if ! command -v debootstrap >/dev/null; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q debootstrap >/dev/null
fi

partial="$CHROOT.partial"
$sudo rm -rf --one-file-system "$partial"
$sudo mkdir -p "$(dirname "$CHROOT")"
started=$(date +%s)
echo "Building the GIMP chroot in $CHROOT from $mirror (a few minutes, about 1.3 GB)"

# One private mount namespace for the whole build: proc, dev and dev/pts vanish with it.
$sudo unshare --mount --propagation private -- bash -euo pipefail -c '
    partial="$1" mirror="$2"; shift 2
    debootstrap --variant=minbase trixie "$partial" "$mirror" >"$partial.log" 2>&1 \
        || { tail -n 30 "$partial.log"; exit 1; }
    mount -t proc proc "$partial/proc"
    mount --bind /dev "$partial/dev"
    mount --bind /dev/pts "$partial/dev/pts"
    cp /etc/resolv.conf "$partial/etc/resolv.conf"
    chroot "$partial" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive chroot "$partial" apt-get install -y -q --no-install-recommends "$@" >/dev/null
    chroot "$partial" apt-get clean
    chroot "$partial" fc-cache -s >/dev/null 2>&1 || true
' build "$partial" "$mirror" "${PACKAGES[@]}"

$sudo rm -f "$partial.log"
$sudo rm -rf "$partial/var/lib/apt/lists/"*
echo "$VERSION" | $sudo tee "$partial/.textpromptir-gimp-chroot" >/dev/null
$sudo rm -rf --one-file-system "$CHROOT"
$sudo mv "$partial" "$CHROOT"
echo "GIMP chroot ready: $CHROOT ($(( $(date +%s) - started )) s, $($sudo du -sh --one-file-system "$CHROOT" | cut -f1))"
