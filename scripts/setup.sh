#!/usr/bin/env bash
# Installs what is missing, and nothing else: Debian's QIIME 2 2022.11 packages, a venv that sees them, torch (CPU),
# transformers, the microformer-mgm weights and q2-mgm itself (editable). Safe to run again; fast when all is there.
# usage: setup.sh [test]   (`test` adds Chromium, which the tests use to render visualizations)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
# python3-statsmodels (0.13.5): the cross-study meta-analysis (q2_mgm.core.meta_analysis)
APT_PACKAGES="qiime q2cli q2-types q2-feature-table q2-sample-classifier q2-taxa q2-metadata q2templates python3-venv
  python3-statsmodels"
TORCH_VERSION=2.13.0
MGM_WEIGHTS="microformer-mgm==0.5.8"
# q2galaxy of the 2022.11 release (Galaxy tool generation and driver): not on PyPI, kept in ../shared
Q2GALAXY=../shared/vendor/qiime2-2024.10/q2galaxy-2022.11.1.tar.gz
STAMP=$VENV/.q2-mgm-setup

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
PY_MINOR=$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')
# The torch wheel kept on this kind of machine is for Python 3.11; with another Python (Debian 13: 3.13), Debian's own
# python3-torch is CPU-only and avoids pip pulling a multi-GB CUDA build.
if [ "$PY_MINOR" != 11 ]; then APT_PACKAGES="$APT_PACKAGES python3-torch"; fi
if [ "${1:-}" = test ]; then APT_PACKAGES="$APT_PACKAGES chromium"; fi

missing=$(for p in $APT_PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "[setup] installing Debian packages:" $missing
  $SUDO apt-get update -qq
  candidate() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p'; }  # sed reads it all: no SIGPIPE
  unavailable=$(for p in $missing; do case "$(candidate "$p")" in ""|"(none)") echo "$p";; esac; done)
  if [ -n "$unavailable" ]; then
    # Debian 13 (trixie) dropped QIIME 2: there is nothing to install, and mixing in bookworm's would break python3
    echo "[setup] $(. /etc/os-release && echo "$PRETTY_NAME") has no package for:" $unavailable >&2
    echo "[setup] q2-mgm runs on Debian's QIIME 2 2022.11, which Debian 12 (bookworm) ships and Debian 13 no longer" \
      "does. Use a Debian 12 machine, or a Debian 12 container: docker run -it -v \"\$PWD\":/q2-mgm debian:bookworm" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt setup.py ] && [ "$STAMP" -nt scripts/setup.sh ] \
   && { [ ! -f "$Q2GALAXY" ] || [ -f .venv-galaxy-lint/.q2-mgm-setup ]; }; then exit 0; fi

[ -x $VENV/bin/python ] || /usr/bin/python3 -m venv --system-site-packages $VENV
PIP="$VENV/bin/python -m pip"
if [ "$PY_MINOR" = 11 ]; then $PIP install -q "torch==$TORCH_VERSION"; fi
# transformers 5 pulls click 8.5, which breaks q2cli 2022.11: stay below 5 and keep Debian's click.
$PIP install -q "transformers>=4.46,<5" "accelerate>=0.26" "hypothesis>=6" "pytest>=7"
# microformer-mgm's pins clash with ours; only its files (weights, vocabulary) are used, never its code.
$PIP install -q --no-deps "$MGM_WEIGHTS"
$PIP install -q --no-deps --no-build-isolation -e .
if [ -f "$Q2GALAXY" ]; then
  # its dependencies (qiime2, click, lxml) are Debian's
  $PIP install -q --no-deps --no-build-isolation "$Q2GALAXY"
  bash scripts/setup-galaxy-lint.sh
fi

# q2cli from this venv, with its own config dir (scripts/qiime-wrapper.sh says why)
install -m 0755 scripts/qiime-wrapper.sh $VENV/bin/qiime
$VENV/bin/qiime dev refresh-cache >/dev/null
touch "$STAMP"
echo "[setup] ready: $VENV/bin/qiime mgm --help"
