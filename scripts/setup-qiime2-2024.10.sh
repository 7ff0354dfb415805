#!/usr/bin/env bash
# The QIIME 2 2024.10 lane: .venv-qiime2-2024.10, a venv of /usr/bin/python3 WITHOUT system site packages, with
# QIIME 2 2024.10.0 built from the release's source archives in ../shared/vendor/qiime2-2024.10 (QIIME 2 is not on
# PyPI), its dependencies from PyPI under that folder's constraints.txt, torch (CPU, pinned), transformers <5, the
# microformer-mgm weights, q2galaxy 2024.10 and q2-mgm itself (editable); plus Galaxy's linter in its own venv.
# Safe to run again; fast when all is there. Exits 3 when ../shared/vendor/qiime2-2024.10 is absent.
# usage: setup-qiime2-2024.10.sh [test]   (`test` adds Chromium, which the tests use to render visualizations)
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=../shared/vendor/qiime2-2024.10
VENV=.venv-qiime2-2024.10
RELEASE=2024.10.0
TORCH_VERSION=2.13.0
MGM_WEIGHTS="microformer-mgm==0.5.8"
STAMP=$VENV/.q2-mgm-setup
# in dependency order; each from its release archive, without dependencies (those come from PyPI below)
Q2_PACKAGES="qiime2 q2cli q2templates q2-types q2-feature-table q2-metadata q2-taxa q2-sample-classifier q2galaxy"

if [ ! -d "$VENDOR" ]; then
  echo "[setup-2024.10] $VENDOR is absent: the QIIME 2 2024.10 lane is built from the source archives kept there" >&2
  exit 3
fi

APT_PACKAGES="python3-venv"
if [ "${1:-}" = test ]; then APT_PACKAGES="$APT_PACKAGES chromium"; fi
missing=$(for p in $APT_PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "[setup-2024.10] installing Debian packages:" $missing
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt setup.py ] && [ "$STAMP" -nt "$0" ] && [ "$STAMP" -nt "$VENDOR/constraints.txt" ] \
   && [ -f .venv-galaxy-lint/.q2-mgm-setup ]; then exit 0; fi

start=$SECONDS
echo "[setup-2024.10] building $VENV (QIIME 2 $RELEASE from $VENDOR)"
[ -x $VENV/bin/python ] || /usr/bin/python3 -m venv $VENV
pip_install() {  # quiet, without the notes about find-links locations that some machines' pip.conf name
  $VENV/bin/python -m pip install -q -c "$VENDOR/constraints.txt" "$@" 2>&1 \
    | { grep -v "is neither a file nor a directory" || true; }
}
# torch: exactly this version, never unpinned (an unpinned torch brings a multi-GB CUDA build); a machine that
# keeps the CPU wheel locally (pip's find-links) installs that one.
pip_install "setuptools<81" wheel "torch==$TORCH_VERSION"
# the framework's and the plugins' dependencies, as $VENDOR/README.md lists them, then q2-mgm's and the tests'.
# scikit-learn as the release ships it (1.4.2, which q2-sample-classifier 2024.10 is built against): newer ones
# (1.9.1 checked) place groups differently in StratifiedGroupKFold, so that a class held by a single group never
# lands in the first fold, the validation split (tests/core/test_training.py finds no seed that validates on it).
# parsl before 2024.9.9: QIIME 2 2024.10's default parallel config (`--parallel` without --parallel-config) gives its
# HighThroughputExecutor `max_workers`, which parsl 2024.9.9 removed (max_workers_per_node since)
# statsmodels 0.14.x for the cross-study meta-analysis (q2_mgm.core.meta_analysis; the Debian lane has 0.13.5):
# scikit-bio 0.6 needs >=0.14, and 0.15 (which pip would otherwise pick) postdates the release and adds formulaic.
pip_install pyyaml "decorator>=4,<5" "pandas<2.3" "tzlocal<3" python-dateutil bibtexparser "networkx==3.1" dill \
  psutil flufl.lock "parsl<2024.9.9" appdirs tomlkit lxml "scikit-bio>=0.6,<0.7" scipy numpy "biom-format>=2.1.16" \
  ijson h5py pyhmmer "click>=8.1,<8.2" joblib "scikit-learn==1.4.2" "statsmodels>=0.14,<0.15" seaborn fastcluster \
  matplotlib ipywidgets jinja2 "transformers>=4.46,<5" "accelerate>=0.26" safetensors "hypothesis>=6" "pytest>=7"
for p in $Q2_PACKAGES; do
  if $VENV/bin/python -m pip show "$p" 2>/dev/null | grep -qx "Version: $RELEASE"; then continue; fi
  pip_install --no-deps --no-build-isolation "$VENDOR/$p-$RELEASE.tar.gz"
done
# microformer-mgm's pins clash with ours; only its files (weights, vocabulary) are used, never its code.
pip_install --no-deps "$MGM_WEIGHTS"
pip_install --no-deps --no-build-isolation -e .
# every requirement met, but microformer-mgm's pins (installed without dependencies on purpose)
conflicts=$($VENV/bin/python -m pip check 2>&1 | grep -v -e "^microformer-mgm " -e "^No broken requirements" || true)
if [ -n "$conflicts" ]; then echo "[setup-2024.10] pip check: $conflicts" >&2; exit 1; fi

# q2cli from this venv, with its own config dir (scripts/qiime-wrapper.sh says why)
install -m 0755 scripts/qiime-wrapper.sh $VENV/bin/qiime
$VENV/bin/qiime dev refresh-cache >/dev/null 2>&1
bash scripts/setup-galaxy-lint.sh
touch "$STAMP"
echo "[setup-2024.10] ready in $((SECONDS - start)) s: $VENV/bin/qiime info"
