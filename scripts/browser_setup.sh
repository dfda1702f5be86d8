#!/usr/bin/env bash
# A headless browser for the HTML report's browser tests (tests/test_report.py): Debian's
# `chromium`, plus fonts so screenshots have readable text. Idempotent: installs with apt only
# what is missing (one `apt-get update` first, only when something is missing) and says what it did.
#
#   chromium             headless page load (--dump-dom: the report's script ran, no console error)
#                        and the screenshot out/report.png
#   fonts-dejavu-core    glyphs for the report (sans + the arrows/check marks of the ladders)
#   fonts-liberation     metric-compatible Arial/Helvetica for system-ui fallbacks
#
# Run as root (CI is root). Without root and with packages missing it says what to run and exits 0;
# the browser tests then skip with that reason (and fail when CI is set).
set -euo pipefail

PACKAGES=(
  chromium
  fonts-dejavu-core
  fonts-liberation
)

say() { echo "browser_setup: $*"; }

# shellcheck source=scripts/apt_common.sh
. "$(dirname "$0")/apt_common.sh"

if ! command -v dpkg-query >/dev/null 2>&1; then
  if command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
    say "not a Debian/Ubuntu system, but a Chromium/Chrome is on PATH; nothing to do"
  else
    say "not a Debian/Ubuntu system (no dpkg): install Chromium by hand (tests look for chromium)"
  fi
  exit 0
fi

find_missing

if [ "${#missing[@]}" -eq 0 ]; then
  say "all browser packages present (${PACKAGES[*]}): $(chromium --version 2>/dev/null || echo chromium)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "MISSING: ${missing[*]}"
  say "not root: cannot install them. Run:  sudo bash scripts/browser_setup.sh"
  say "(until then the report's browser tests skip with this reason; with CI set they fail)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
install_missing browser_setup
say "installed: ${missing[*]}: $(chromium --version 2>/dev/null || echo chromium)"
