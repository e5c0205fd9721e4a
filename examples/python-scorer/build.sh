#!/usr/bin/env bash
# Builds the Python scorer into a component: examples/python-scorer/scorer.wasm
# Needs componentize-py from PyPI: pip install componentize-py==0.25.1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/scorer.wasm}
cd "$here"
componentize-py -d wit/scheduler -w orch:scheduler/scorer-plugin componentize app -o "$out"
