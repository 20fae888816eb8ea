#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the Debian bookworm base image the Dockerfile starts from, on a host that has no
# registry to pull it from: debootstrap (minbase) from the host's own apt mirror, imported into
# podman and tagged docker.io/library/debian:bookworm and :bookworm-slim, so `FROM debian:bookworm`
# builds unchanged. Does nothing when the image is already there (podman's store keeps it).
# Needs podman and debootstrap, and root for debootstrap (sudo when not root; the image then goes
# to the calling user's podman store) (docs/operations.md, "Containers").
#   tools/containers/base-image.sh [MIRROR]
set -euo pipefail
image=docker.io/library/debian:bookworm
if podman image exists "$image"; then
    echo "base-image: $image is already there"
    exit 0
fi
mirror="${1:-}"
if [ -z "$mirror" ]; then
    # The first bookworm mirror the host's apt uses (deb822 or one-line sources).
    mirror="$(grep -rhoE 'https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
              grep -v security | head -1 | tr -d ' ' || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
root="$(mktemp -d -t genapi-rootfs.XXXXXX)"
trap '$sudo rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror"
$sudo debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
# What a registry's debian image also has: no apt caches, no downloaded lists.
$sudo sh -c 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' _ "$root"
$sudo tar -C "$root" -c . | podman import --quiet - localhost/debian:bookworm >/dev/null
podman tag localhost/debian:bookworm "$image" docker.io/library/debian:bookworm-slim
echo "base-image: $image made"
