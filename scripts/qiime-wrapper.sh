#!/usr/bin/env bash
# .venv*/bin/qiime, which setup.sh and setup-qiime2-2024.10.sh install: q2cli from the venv it sits in, with that
# venv's own config dir (q2cli's cache belongs to one interpreter and one release), unless Q2_MGM_XDG_CONFIG_HOME
# names another.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export XDG_CONFIG_HOME="${Q2_MGM_XDG_CONFIG_HOME:-$here/../.config}"
exec "$here/python" -m q2cli "$@"
