#!/usr/bin/env bash
# The system packages the test suite uses for real, installed when missing.
# `make test` runs this first; it is quiet when nothing is missing.
#
#   gdal-bin          gdalinfo / ogrinfo: tests read category names, RATs and
#                     layer_styles the way GDAL's own tools show them
#   python3-qgis      PyQGIS (QGIS 3.22 on Debian 12) for tests/test_qgis.py, run by
#                     the system Python /usr/bin/python3 with QT_QPA_PLATFORM=offscreen
#   chromium          headless browser for tests/report/test_report.py (loads report.html,
#   fonts-liberation  screenshots it); the fonts are the ones Chromium maps its default
#                     sans/serif/monospace to (a recommendation apt would otherwise skip)
#
# Installed with apt-get (Debian, Ubuntu) and --no-install-recommends: the recommended
# packages are desktop services (systemd, udev, avahi, modemmanager, gnome-keyring …)
# that headless QGIS and Chromium do not use; scripts/check-fresh-root.sh runs the whole
# suite in a clean Debian root installed this way.
# As root it installs directly, otherwise through `sudo -n` (never asks for a password).
# When it cannot install, it prints the exact command to run and exits 1.
set -euo pipefail

missing=()
if ! command -v gdalinfo >/dev/null 2>&1 || ! command -v ogrinfo >/dev/null 2>&1; then
  missing+=(gdal-bin)
fi
if ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
  missing+=(python3-qgis)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  missing+=(chromium)
fi
if command -v dpkg-query >/dev/null 2>&1 &&
  [[ "$(dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null)" != "install ok installed" ]]; then
  missing+=(fonts-liberation)
fi

((${#missing[@]})) || exit 0

apt_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
say() { printf 'install-system-deps: %s\n' "$*" >&2; }

if ! command -v apt-get >/dev/null 2>&1; then
  say "the tests need system packages this script installs only with apt-get (Debian/Ubuntu)."
  say "missing: ${missing[*]} (Debian names). Install the equivalents with your package manager:"
  say "  GDAL command-line tools (gdalinfo, ogrinfo), PyQGIS 3.x importable by /usr/bin/python3,"
  say "  and Chromium on PATH as 'chromium' or 'chromium-browser'; then run 'make test' again."
  exit 1
fi

if ((EUID == 0)); then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  say "missing system packages: ${missing[*]}"
  say "installing them needs root (or sudo without a password prompt). Run:"
  say "  sudo apt-get update && sudo $apt_cmd"
  say "then 'make test' again."
  exit 1
fi

say "installing ${missing[*]} with apt-get (one-time, a few minutes)"
export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600
  -o Dpkg::Use-Pty=0)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${apt[@]}" update >"$log" 2>&1 ||
  ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 </dev/null; then
  tail -n 30 "$log" >&2
  say "apt-get failed (output above). Fix that, or run yourself:"
  say "  sudo apt-get update && sudo $apt_cmd"
  exit 1
fi

# Installed is not enough: check what the tests will use.
/usr/bin/python3 -c "import qgis.core" ||
  { say "python3-qgis is installed but /usr/bin/python3 cannot import qgis.core"; exit 1; }
for exe in gdalinfo ogrinfo; do
  command -v "$exe" >/dev/null || { say "$exe is not on PATH after installing gdal-bin"; exit 1; }
done
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
  { say "chromium is not on PATH after installing it"; exit 1; }
say "done: ${missing[*]}"
