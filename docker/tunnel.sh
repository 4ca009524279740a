#!/bin/sh
# tunnel.sh — the entrypoint of the `tunnel` image: stunnel between the
# workers (plain Redis protocol on the project network) and a Redis that
# speaks TLS. Debian's hiredis 0.14 has no TLS, so TLS is a tunnel's job.
#
#   TUNNEL_MODE=client  accept plain on TUNNEL_ACCEPT, connect with TLS to
#                       TUNNEL_CONNECT, verifying its certificate against
#                       /tls/ca.pem for the name TUNNEL_VERIFY_NAME
#   TUNNEL_MODE=server  accept TLS on TUNNEL_ACCEPT (/tls/server.pem and
#                       /tls/server.key), connect plain to TUNNEL_CONNECT
#
# The configuration is written to a temporary file from these variables
# only; nothing secret is in the image.
set -eu
: "${TUNNEL_MODE:?set TUNNEL_MODE to client or server}"
: "${TUNNEL_ACCEPT:?set TUNNEL_ACCEPT (HOST:PORT to listen on)}"
: "${TUNNEL_CONNECT:?set TUNNEL_CONNECT (HOST:PORT to forward to)}"
conf=$(mktemp)
{
    echo "foreground = yes"
    echo "pid ="
    echo "[redis]"
    echo "accept = $TUNNEL_ACCEPT"
    echo "connect = $TUNNEL_CONNECT"
    case "$TUNNEL_MODE" in
    client)
        : "${TUNNEL_VERIFY_NAME:?set TUNNEL_VERIFY_NAME (the name in the server certificate)}"
        echo "client = yes"
        echo "verifyChain = yes"
        echo "CAfile = /tls/ca.pem"
        echo "checkHost = $TUNNEL_VERIFY_NAME" ;;
    server)
        echo "cert = /tls/server.pem"
        echo "key = /tls/server.key" ;;
    *)
        echo "tunnel.sh: TUNNEL_MODE must be client or server, got \"$TUNNEL_MODE\"" >&2
        exit 2 ;;
    esac
} > "$conf"
exec stunnel4 "$conf"
