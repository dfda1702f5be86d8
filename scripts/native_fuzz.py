"""Random mutations of captures through the dissector (the native loop and
lanes when built): nothing may crash; run by scripts/native_asan.sh.

    python scripts/native_fuzz.py SEED CAPTURE...
"""

from __future__ import annotations

import io
import random
import sys

from mysqlwire.dissect import iter_connections
from mysqlwire.errors import CaptureError


def main(argv: list[str]) -> int:
    rnd = random.Random(int(argv[0]))
    sources = [open(p, "rb").read() for p in argv[1:]]  # noqa: SIM115
    done = 0
    for _ in range(300):
        data = bytearray(rnd.choice(sources))
        for _ in range(rnd.randrange(1, 40)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            data = data[: rnd.randrange(24, len(data))]
        try:
            for conn in iter_connections(io.BytesIO(bytes(data))):
                conn.to_record(with_packets=True)
            done += 1
        except CaptureError:
            pass
    print(f"native_fuzz: {done} mutated captures dissected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
