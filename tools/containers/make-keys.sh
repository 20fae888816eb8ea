#!/bin/sh
# SPDX-License-Identifier: MIT
# genapi-make-keys DIR ROLE:NAME...: the CurveZMQ keys of a containerised system
# (docs/security.md, docs/operations.md "Containers"), made with genapi-ctl keygen in DIR:
# the broker's own (DIR/broker, DIR/broker_secret) and one per peer in DIR/peers, whose public
# halves the broker admits. ROLE is gateway, operator or worker; a worker NAME is also the one
# service it may register. Keys already there are kept, so running it again only adds what is
# missing. The compose file's keygen service runs it on the shared keys volume.
set -eu
dir="${1:?usage: genapi-make-keys DIR ROLE:NAME...}"
shift
umask 077
mkdir -p "$dir/peers"
if [ ! -f "$dir/broker_secret" ]; then
    genapi-ctl keygen --role broker --out "$dir/broker" >/dev/null
    echo "made $dir/broker"
fi
for peer in "$@"; do
    role="${peer%%:*}"
    name="${peer#*:}"
    if [ "$role" = "$peer" ] || [ -z "$name" ]; then
        echo "genapi-make-keys: $peer: expected ROLE:NAME" >&2
        exit 2
    fi
    [ -f "$dir/peers/${name}_secret" ] && continue
    if [ "$role" = worker ]; then
        genapi-ctl keygen --role worker --name "$name" --services "$name" --out "$dir/peers/$name" >/dev/null
    else
        genapi-ctl keygen --role "$role" --name "$name" --out "$dir/peers/$name" >/dev/null
    fi
    echo "made $dir/peers/$name"
done
