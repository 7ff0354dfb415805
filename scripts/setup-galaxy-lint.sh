#!/usr/bin/env bash
# .venv-galaxy-lint: Galaxy's tool linter (galaxy-tool-util, the library `planemo lint` runs, with the EDAM ontology
# its general linter reads) in a venv of its own, apart from either QIIME 2 lane's pins. The Galaxy tests lint the
# tools q2galaxy writes with it. Fast when installed; both lanes' set-up scripts call it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-galaxy-lint
GALAXY_TOOL_UTIL="galaxy-tool-util[edam]==26.1.2 galaxy-util==26.1.2"
STAMP=$VENV/.q2-mgm-setup
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$0" ]; then exit 0; fi
[ -x $VENV/bin/python ] || /usr/bin/python3 -m venv $VENV
# shellcheck disable=SC2086
$VENV/bin/python -m pip install -q $GALAXY_TOOL_UTIL 2>&1 | { grep -v "is neither a file nor a directory" || true; }
$VENV/bin/python -c "import galaxy.tool_util.lint, edam_ontology"
touch "$STAMP"
