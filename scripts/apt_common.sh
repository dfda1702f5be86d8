# Shared by scripts/lab_setup.sh and scripts/browser_setup.sh (sourced, not run).
# Callers define say() and the array PACKAGES first.

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# fills the array `missing` with the PACKAGES not installed
find_missing() {
  missing=()
  for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
  done
}

# apt-get update + install of `missing` (log in /tmp/$1.apt.log); exits 1 on failure
install_missing() {
  local log="/tmp/$1.apt.log"
  say "missing: ${missing[*]}"
  say "apt-get update"
  apt-get update -qq
  say "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 || {
    tail -30 "$log" >&2
    say "apt-get install failed (log above, full log $log)"
    exit 1
  }
  local still=()
  for p in "${missing[@]}"; do
    installed "$p" || still+=("$p")
  done
  if [ "${#still[@]}" -ne 0 ]; then
    say "still missing after install: ${still[*]}"
    exit 1
  fi
}
