#!/usr/bin/env bash
# Python klepto (the original) in a virtual environment of its own,
# target/python-klepto, for tests/cli_python.rs, which builds archives with
# it for `klepto import-python` to read.
#
#   bash scripts/python-klepto.sh install   create it (PyPI: klepto, sqlalchemy)
#   bash scripts/python-klepto.sh python    print its interpreter, if it works
#
# On Debian, `python3 -m venv` needs the python3-venv package: installed
# with apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$PWD/target/python-klepto"

die() { echo "python-klepto.sh: $*" >&2; exit 1; }

works() { "$venv/bin/python" -c 'import klepto, sqlalchemy' >/dev/null 2>&1; }

install() {
  if works; then
    echo "python-klepto.sh: klepto $("$venv/bin/python" -c 'import klepto; print(klepto.__version__)') ready in $venv"
    return 0
  fi
  local py
  py=$(command -v python3 || true)
  [[ -n $py ]] || py=/usr/bin/python3
  rm -rf "$venv"
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "python3 -m venv failed (install python3-venv)"
    echo "python-klepto.sh: installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv" || die "python3 -m venv failed after installing python3-venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check klepto sqlalchemy ||
    die "pip install klepto sqlalchemy failed"
  works || die "klepto installed but does not import"
  echo "python-klepto.sh: klepto $("$venv/bin/python" -c 'import klepto; print(klepto.__version__)') ready in $venv"
}

case "${1:-}" in
  install) install ;;
  python) works && echo "$venv/bin/python" ;;
  *) die "usage: python-klepto.sh install|python" ;;
esac
