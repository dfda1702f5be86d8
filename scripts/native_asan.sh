#!/usr/bin/env bash
# The C extension (mysqlwire/capture/_walk.c + _walk_ng.c + _walk_lane.c) under AddressSanitizer + UBSan: builds it with
# the sanitizers into a throw-away copy of the checkout, then runs the tests that drive it
# (tests/test_native_walk.py, test_native_linktypes.py, test_capture_reader.py, test_perf_lanes.py) and a mutation
# fuzz of captures through the dissector (scripts/native_fuzz.py). Not part of the suite
# (slow); run it after changing _walk.c:  bash scripts/native_asan.sh
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$src/mysqlwire" "$src/tests" "$src/captures" "$src/benchmarks" "$src/scripts" "$work/"
rm -f "$work"/mysqlwire/capture/_walk*.so
inc="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
ext="$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
  -I"$inc" "$work/mysqlwire/capture/_walk.c" "$work/mysqlwire/capture/_walk_ng.c" "$work/mysqlwire/capture/_walk_lane.c" -o "$work/mysqlwire/capture/_walk$ext"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$work"
export MYSQLWIRE_SHARED="${MYSQLWIRE_SHARED:-$src/../shared}"
cd "$work"
python3 -c 'import mysqlwire.capture.native as n; assert n.NATIVE, "the sanitized build did not load"'
python3 -m pytest -q -p no:cacheprovider tests/test_native_walk.py tests/test_native_linktypes.py tests/test_capture_reader.py \
  tests/test_perf_lanes.py
python3 benchmarks/make_capture.py -n 40 -o "$work/fuzz.pcap" >/dev/null
python3 scripts/native_fuzz.py 1 "$work/fuzz.pcap" captures/lab-samples/*.pcap*
python3 scripts/native_fuzz.py 2 "$work/fuzz.pcap"
# the same traffic behind other link headers and over IPv6 (tests/test_native_linktypes.py)
python3 - "$work/fuzz.pcap" <<'PY'
import sys
from pathlib import Path

from tests.test_native_linktypes import relink

from mysqlwire.capture.reader import open_capture
from tests.test_capture_reader import epb, idb, shb

src = Path(sys.argv[1])
for kind, v6 in [("sll2", False), ("null-be", True), ("qinq", True), ("eth", True), ("ipv6", True)]:
    src.with_name(f"fuzz-{kind}-{int(v6)}.pcap").write_bytes(relink(src.read_bytes(), kind, v6))
# and as pcapng (Enhanced Packet Blocks: the native pcapng loop and decoder)
frames = list(open_capture(str(src)).records())
blob = shb() + idb("<", 1, tsresol=9)
blob += b"".join(epb("<", 0, round(ts * 1e9), data) for ts, _lt, data, _i in frames)
src.with_name("fuzz-ng.pcapng").write_bytes(blob)
PY
python3 scripts/native_fuzz.py 3 "$work"/fuzz-*.pcap "$work"/fuzz-ng.pcapng
echo "native_asan: no sanitizer report"
