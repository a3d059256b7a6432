#!/usr/bin/env bash
# The system parts of the `hdf5` feature: the HDF5 C library that the
# hdf5-metno crate links (Debian's libhdf5-dev, found through pkg-config)
# and h5py (Debian's python3-h5py), the outside reader tests/hdf5.rs runs.
#
#   bash scripts/hdf5.sh install   install what is missing (root; apt-get)
#   bash scripts/hdf5.sh python    print a Python interpreter that imports h5py
#
# Debian installs h5py for /usr/bin/python3, which may not be the python3
# first on PATH (pyenv): `python` tries both.
set -euo pipefail

die() { echo "hdf5.sh: $*" >&2; exit 1; }

have_lib() { pkg-config --exists hdf5 2>/dev/null; }

h5py_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import h5py' >/dev/null 2>&1; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

install() {
  local -a need=()
  have_lib || need+=(libhdf5-dev pkg-config)
  h5py_python >/dev/null || need+=(python3-h5py)
  if ((${#need[@]} == 0)); then
    echo "hdf5.sh: libhdf5 $(pkg-config --modversion hdf5) and h5py already present"
    return 0
  fi
  [[ $(id -u) -eq 0 ]] || die "installing ${need[*]} needs root"
  echo "hdf5.sh: installing ${need[*]}"
  local log
  log=$(mktemp)
  if ! {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  } >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "apt-get failed installing ${need[*]} (full log: $log)"
  fi
  have_lib || die "libhdf5-dev installed but pkg-config does not find hdf5"
  h5py_python >/dev/null || die "python3-h5py installed but no python3 imports h5py"
  echo "hdf5.sh: libhdf5 $(pkg-config --modversion hdf5), h5py for $(h5py_python)"
}

case "${1:-}" in
  install) install ;;
  python) h5py_python || die "no python3 on this machine imports h5py (bash scripts/hdf5.sh install)" ;;
  *) die "usage: hdf5.sh install|python" ;;
esac
