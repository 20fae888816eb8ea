#!/bin/bash
# SPDX-License-Identifier: MIT
# genapi-healthcheck PORT [PATH]: exits 0 when the admin listener on 127.0.0.1:PORT answers
# PATH (default /readyz) with 200, and 1 otherwise, printing the status line and the body. The
# container image's health check (docs/operations.md, "Containers"), made of bash's /dev/tcp so
# that the image needs no HTTP client. Gives up after 3 s.
set -u
port="${1:?usage: genapi-healthcheck PORT [PATH]}"
path="${2:-/readyz}"
reply="$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    # The whole request in one write (dd gathers it): bash writes line by line. The genapi
    # listener waits for the whole head (common/ga_httpd.c); one write spares other servers.
    # (No apostrophe in this comment: the script is one single-quoted bash -c argument.)
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" |
        dd bs=4096 count=1 iflag=fullblock status=none >&3 || exit 1
    cat <&3' _ "$port" "$path" 2>/dev/null)" || { echo "no answer on 127.0.0.1:$port$path"; exit 1; }
status="$(printf '%s\n' "$reply" | head -1 | tr -d '\r')"
body="$(printf '%s\n' "$reply" | sed '1,/^\r\{0,1\}$/d')"
echo "$status: $body"
case "$status" in
    "HTTP/1."?" 200 "*) exit 0 ;;
    *) exit 1 ;;
esac
