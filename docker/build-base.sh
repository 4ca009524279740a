#!/bin/sh
# Build the local base image llmfleet-base:bookworm (a Debian 12 minbase root
# file system, debootstrap + docker import) for machines that reach no image
# registry. With a registry, skip this and build with
#   --build-arg BASE_IMAGE=debian:bookworm-slim
#
#   docker/build-base.sh [IMAGE]          (default llmfleet-base:bookworm)
#
# The mirror is read at run time from this machine's apt configuration
# (/etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources): the
# first enabled `deb` entry for bookworm/main. BASE_MIRROR overrides it. The
# image's own /etc/apt/sources.list gets the machine's bookworm, -updates and
# -security entries, so apt-get inside the image uses the same mirrors.
# Idempotent: does nothing when the image exists (BASE_REBUILD=1 rebuilds).
# Needs root, debootstrap and a running Docker engine.
set -eu

IMAGE=${1:-llmfleet-base:bookworm}
SUITE=bookworm
DOCKER=${DOCKER:-docker}

if [ "${BASE_REBUILD:-0}" != 1 ] && $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build-base: $IMAGE exists"
    exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
    echo "build-base: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || { echo "build-base: must run as root (debootstrap)" >&2; exit 1; }

# Every enabled `deb` entry of the apt configuration, one "URI SUITE COMPONENTS"
# line each, in apt's own order. Handles the one-line format (with [options])
# and the deb822 .sources format.
apt_entries() {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '
            { sub(/#.*/, "") }
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                uri = $i; suite = $(i + 1); comps = ""
                for (j = i + 2; j <= NF; j++) comps = comps " " $j
                if (uri != "" && suite != "") print uri, suite comps
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn][Oo]/)
                    for (u = 1; u <= nu; u++)
                        for (s = 1; s <= ns; s++) print uris[u], suites[s], comps
                types = ""; enabled = "yes"; nu = 0; ns = 0; comps = ""; key = ""
            }
            BEGIN { enabled = "yes" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0
                if (line ~ /^[ \t]/) { val = line }         # continuation line
                else {
                    key = tolower(substr(line, 1, index(line, ":") - 1))
                    val = substr(line, index(line, ":") + 1)
                }
                n = split(val, w, /[ \t]+/)
                for (k = 1; k <= n; k++) {
                    if (w[k] == "") continue
                    if (key == "types")      types = types " " w[k]
                    else if (key == "uris")  uris[++nu] = w[k]
                    else if (key == "suites") suites[++ns] = w[k]
                    else if (key == "components") comps = comps " " w[k]
                    else if (key == "enabled") enabled = w[k]
                }
            }
            END { flush() }' "$f"
    done
}

entries=$(apt_entries | awk '$2 ~ /^bookworm(-updates|-security|\/updates)?$/ && / main( |$)/')
MIRROR=${BASE_MIRROR:-$(printf '%s\n' "$entries" | awk '$2 == "bookworm" { print $1; exit }')}
if [ -z "$MIRROR" ]; then
    echo "build-base: no 'deb ... bookworm main' entry in the apt configuration;" \
         "set BASE_MIRROR=<Debian mirror URL>" >&2
    exit 1
fi

DIR=$(mktemp -d /tmp/llmfleet-base.XXXXXX)
trap 'rm -rf "$DIR"' EXIT INT TERM

echo "build-base: debootstrap --variant=minbase $SUITE from $MIRROR"
start=$(date +%s)
debootstrap --variant=minbase "$SUITE" "$DIR/root" "$MIRROR" > "$DIR.log" 2>&1 || {
    echo "build-base: debootstrap failed; last lines of its log ($DIR.log):" >&2
    tail -n 20 "$DIR.log" >&2
    exit 1
}
rm -f "$DIR.log"

# apt sources inside the image: the machine's bookworm entries (main only).
{
    printf '%s\n' "$entries" | awk '{ print "deb " $1 " " $2 " main" }'
    [ -n "${BASE_MIRROR:-}" ] && echo "deb $BASE_MIRROR $SUITE main"
} | awk '!seen[$0]++' > "$DIR/root/etc/apt/sources.list"

# Small and reproducible-ish: no package caches, no apt lists, no logs, and
# the same apt settings the official slim images use.
rm -rf "$DIR"/root/var/cache/apt/archives/*.deb "$DIR"/root/var/cache/apt/*.bin \
       "$DIR"/root/var/lib/apt/lists/* "$DIR"/root/var/log/*.log \
       "$DIR"/root/var/log/apt/* "$DIR"/root/tmp/* 2>/dev/null || true
cat > "$DIR/root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'APT::Install-Recommends "false";' > "$DIR/root/etc/apt/apt.conf.d/docker-no-recommends"
# As the official slim images: no documentation, manual pages or translations,
# now and for every package installed later (copyright files stay).
cat > "$DIR/root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
find "$DIR/root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$DIR/root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$DIR"/root/usr/share/man/* "$DIR"/root/usr/share/info/* "$DIR"/root/usr/share/lintian/*
find "$DIR/root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
: > "$DIR/root/etc/hostname"
# Remove the build host's name resolution: the engine provides its own.
rm -f "$DIR/root/etc/resolv.conf" "$DIR/root/etc/hosts"

old=$($DOCKER image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || :)
tar --numeric-owner -C "$DIR/root" -c . |
    $DOCKER import --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --message "debootstrap --variant=minbase $SUITE" - "$IMAGE" >/dev/null
# A rebuild leaves the previous image untagged: remove it unless in use.
if [ -n "$old" ] && [ "$old" != "$($DOCKER image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    $DOCKER rmi "$old" >/dev/null 2>&1 || :
fi
echo "build-base: $IMAGE built in $(( $(date +%s) - start )) s" \
     "($($DOCKER image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
