#!/usr/bin/env bash
# Installs what the tests need that Cargo does not bring: the Python OPC UA peer (asyncua,
# in a venv), Debian's Chromium for the browser test (and a CJK font for its screenshots),
# npm when missing (the web view's chart library), and Debian's InfluxDB 1.x and
# VictoriaMetrics, the real servers of the InfluxDB historian tests (v1 and v2 write paths).
# Idempotent; quick when all is there.
# Prints the environment the tests read, as `export` lines, on stdout.
set -euo pipefail

cache="${PHARMATWIN_CACHE:-$HOME/.cache}"
venv="$cache/pharmatwin-venv"

log() { echo "[test-deps] $*" >&2; }

if ! "$venv/bin/python" -c 'import asyncua' 2>/dev/null; then
  log "creating Python venv with asyncua in $venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'asyncua>=1.1' >&2
fi

apt_updated=0
need_apt() {
  local pkg="$1"
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    if [ "$apt_updated" = 0 ]; then
      log "apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      apt_updated=1
    fi
    log "installing $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >&2
  fi
}
need_apt chromium
need_apt curl
need_apt openssl
need_apt influxdb
need_apt victoria-metrics
# The web view's chart library comes from npm: dashboards/build.rs runs `npm ci`.
command -v npm >/dev/null 2>&1 || need_apt npm
# Chinese glyphs, so the page's bilingual labels show in the browser tests' screenshots.
need_apt fonts-wqy-microhei

echo "export PHARMATWIN_PYTHON=$venv/bin/python"
echo "export PHARMATWIN_CHROMIUM=$(command -v chromium)"
echo "export PHARMATWIN_INFLUXD=$(command -v influxd)"
echo "export PHARMATWIN_VICTORIA=$(command -v victoria-metrics)"
