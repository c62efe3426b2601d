#!/usr/bin/env bash
# Run the README's test command, `CI=true make test`, on a fresh machine: a clean Debian
# bookworm root built here with mmdebstrap, holding only what a fresh machine of the kind
# this project is developed and tested on has:
#
#   python3 (3.11), python3-venv, python3-pip, python3-dev, gcc, make, git, ca-certificates
#
# and NOT gdal-bin, python3-qgis or chromium: `make test` has to install those itself
# (scripts/install-system-deps.sh), which is what this checks.
#
# Such a machine also has a pip configuration that serves the large wheels (torch) from
# local disk instead of downloading gigabytes: /etc/xdg/pip (constraints torch<=2.14.1),
# /etc/pip.conf, /root/.config/pip/pip.conf (find-links /opt/wheels, extra-index-url
# file:///opt/pypi/simple file:///opt/pypi-more/simple) and the PIP_* environment
# variables. They are copied into the root, and /opt/wheels, /opt/pypi and /opt/pypi-more
# are bind-mounted read-only, so `pip install torch==2.14.1` inside finds the same local
# wheels as on a fresh machine of this kind. The host's local certificate authorities
# (/usr/local/share/ca-certificates) are trusted in the root too, as on such a machine.
# Where the host has none of these, pip in the root simply uses PyPI.
#
# The repository's committed HEAD is cloned into the root (uncommitted changes are not
# tested), with a copy of ../shared beside the clone, as CI has it. /proc, /sys, /dev
# (with /dev/pts) and a fresh /dev/shm are mounted; `make test` runs as root with CI=true
# and no stdin, in its own network namespace (own loopback and ports; outbound traffic
# through slirp4netns). The log is teed to $log; at the end the pytest summary line, the wall time and
# the exit code are printed, and everything mounted is unmounted (also on error or ^C).
#
# Usage (as root, with network access to the Debian mirror and PyPI):
#   bash scripts/check-fresh-root.sh            # ~30 min on 2 cores
# Environment: FRESH_ROOT_DIR (default /var/tmp/geoseg-fresh-root, wiped first and kept
# afterwards for inspection), DEBIAN_MIRROR (default http://deb.debian.org/debian),
# SHARED_DIR (default ../shared next to this repository).
set -euo pipefail

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
base=${FRESH_ROOT_DIR:-/var/tmp/geoseg-fresh-root}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
shared=${SHARED_DIR:-$(dirname "$repo")/shared}
root=$base/root
log=$base/make-test.log
packages=python3,python3-venv,python3-pip,python3-dev,gcc,make,git,ca-certificates

say() { printf '[check-fresh-root %(%H:%M:%S)T] %s\n' -1 "$*"; }

((EUID == 0)) || { echo "check-fresh-root: run as root (it builds a root and chroots)" >&2; exit 1; }

mounts_under() { awk -v r="$1" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo; }
unmount_all() {
  # everything mounted at or under $base, deepest first (a few passes: stacked mounts)
  local mnt pass
  for pass in 1 2 3; do
    mounts_under "$base" | sort -r | while read -r mnt; do
      umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done
    [[ -z $(mounts_under "$base") ]] && return 0
  done
  echo "check-fresh-root: still mounted under $base:" $(mounts_under "$base") >&2
  return 1
}
slirp_pid=
trap '[[ -z $slirp_pid ]] || kill "$slirp_pid" 2>/dev/null; unmount_all' EXIT
trap "exit 130" INT
trap "exit 143" TERM

tools=()
command -v mmdebstrap >/dev/null || tools+=(mmdebstrap)
command -v slirp4netns >/dev/null || tools+=(slirp4netns)
if ((${#tools[@]})); then
  say "installing ${tools[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${tools[@]}" >/dev/null
fi

# never delete through a mount (the bind mounts share the host's filesystem)
unmount_all || exit 1
rm -rf --one-file-system "$base"
mkdir -p "$base"

say "building a clean Debian bookworm root in $root ($packages)"
t0=$SECONDS
mmdebstrap --mode=root --variant=apt --include="$packages" bookworm "$root" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security_mirror bookworm-security main" >"$base/mmdebstrap.log" 2>&1 ||
  { tail -n 30 "$base/mmdebstrap.log"; say "mmdebstrap failed"; exit 1; }
say "root built in $((SECONDS - t0)) s"

# What a container of this kind gets from its runtime: name resolution, hosts.
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"

# The machine's own certificate authorities (here: the workplace's egress proxy, through
# which PyPI is reached over TLS); without them pip in the root cannot verify PyPI.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi

# The machine's pip configuration and its local wheel stores (see the header).
for f in /etc/xdg/pip /etc/pip.conf /root/.config/pip; do
  if [[ -e $f ]]; then
    mkdir -p "$root$(dirname "$f")"
    cp -a "$f" "$root$f"
  fi
done
for d in /opt/wheels /opt/pypi /opt/pypi-more; do
  if [[ -d $d ]]; then
    mkdir -p "$root$d"
    mount --bind "$d" "$root$d"
    mount -o remount,bind,ro "$root$d"
  fi
done
pip_env=()
while IFS= read -r kv; do pip_env+=("$kv"); done < <(env | grep '^PIP_' || true)

# The committed HEAD, with ../shared beside it.
mkdir -p "$root/work"
git clone -q --no-hardlinks "$repo" "$root/work/geoseg"
head=$(git -C "$root/work/geoseg" log -1 --format='%h %s' | cut -c1-100)
say "cloned HEAD $head"
if [[ -d $shared ]]; then
  cp -a "$shared" "$root/work/shared"
else
  say "no $shared to copy beside the clone"
fi

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
# its own /dev/shm (POSIX shared memory and semaphores), not the host's
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"

say "before: $(chroot "$root" sh -c 'for c in gdalinfo ogrinfo chromium; do command -v $c >/dev/null && echo -n "$c " ; done; /usr/bin/python3 -c "import qgis.core" 2>/dev/null && echo -n "qgis "; /usr/bin/python3 --version')"
say "running CI=true make test in the root (log: $log)"
t0=$SECONDS
# Its own network namespace, as a fresh machine (or container) has: its own loopback, so
# the ports the tests listen on (Dask's scheduler and dashboard, 8786/8787, test servers)
# cannot collide with anything else running on this host. slirp4netns gives it the
# host's outbound network (Debian mirror, PyPI) through a user-mode NAT.
rm -f "$base/net.ready" "$base/ns.pid"
{
  unshare --net -- sh -c 'echo $$ > "$1"; until [ -e "$2" ]; do sleep 0.2; done; shift 2; exec "$@"' \
    sh "$base/ns.pid" "$base/net.ready" \
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${pip_env[@]}" \
    bash -c 'cd /work/geoseg && CI=true make test' </dev/null 2>&1 | tee "$log"
} &
job=$!
for _ in $(seq 100); do [[ -s $base/ns.pid ]] && break; sleep 0.1; done
ns_pid=$(cat "$base/ns.pid")
slirp4netns --configure --mtu=65520 --disable-host-loopback "$ns_pid" tap0 \
  >"$base/slirp4netns.log" 2>&1 &
slirp_pid=$!
for _ in $(seq 200); do  # until the namespace has its default route
  awk '$2 == "00000000" {found=1} END {exit !found}' "/proc/$ns_pid/net/route" 2>/dev/null && break
  sleep 0.1
done
awk '$2 == "00000000" {found=1} END {exit !found}' "/proc/$ns_pid/net/route" ||
  { say "slirp4netns did not set up the network (see $base/slirp4netns.log)"; kill "$ns_pid"; }
touch "$base/net.ready"
set +e
wait "$job"
rc=$?
set -e
kill "$slirp_pid" 2>/dev/null || true
wall=$((SECONDS - t0))

summary=$(grep -E '^=+ .*(passed|failed|error|skipped).* in [0-9.]+s' "$log" | tail -n 1 || true)
echo
say "HEAD:      $head"
say "summary:   ${summary:-"(no pytest summary line; see $log)"}"
say "wall time: $((wall / 60)) min $((wall % 60)) s for make test (set-up included)"
say "exit code: $rc"
exit "$rc"
