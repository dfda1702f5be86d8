#!/usr/bin/env bash
# The project's one test command (README "Run the tests"; .ci/run calls it verbatim).
# On a fresh Debian/Ubuntu machine it installs what the suite needs:
#   system: mariadb-server, mariadb-client, tcpdump, tshark, libmariadb-dev, gcc, chromium (apt, as root)
#   python: this package with its [test] extra (pip)
# then runs ruff and the whole pytest suite (real MariaDB lab included).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/lab_setup.sh       # mariadb-server, clients' libraries, tcpdump, tshark
bash scripts/browser_setup.sh   # chromium for the HTML report's browser test

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

python3 -m ruff check mysqlwire tests benchmarks scripts
python3 -m ruff format --check mysqlwire tests benchmarks scripts
lint-imports                    # the layers (pyproject [tool.importlinter])
set +e
# both cores: the lab tests stay together on one worker (tests/conftest.py)
python3 -m pytest -q -n 2 --dist loadgroup "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
