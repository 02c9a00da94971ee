#!/usr/bin/env bash
# Installs every Debian package rumor needs to build, test, benchmark and run its main job,
# plus any package names given as arguments.
# python3-torch is a test dependency: the README's bring-your-own-model example (a module
# scripted with torch.jit in Python) is run by the test suite.
# Idempotent: when everything is present it only runs dpkg queries (well under a second).
set -euo pipefail

PACKAGES=(
  cmake g++ make ccache pkg-config git
  libtorch-dev libopenblas0-pthread
  libboost-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev doctest-dev libeigen3-dev
  zlib1g-dev libssl-dev
  clang-14 libclang-rt-14-dev clang-format
  dataset-fashion-mnist python3 python3-matplotlib python3-torch iperf3
  "$@"
)

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg-query prints "install ok installed" only for fully installed packages.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: error: apt-get not found; this script supports Debian 12 only." >&2
  echo "install-deps: install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: error: not root and no sudo; run as root: $0" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# A dpkg run that was interrupted (power loss, a killed apt) blocks every later install until
# `dpkg --configure -a` finishes it: detect that and recover, saying so.
if [[ -n "$(dpkg --audit 2>/dev/null)" ]] || compgen -G '/var/lib/dpkg/updates/[0-9]*' >/dev/null; then
  echo "install-deps: dpkg was left interrupted; running 'dpkg --configure -a' to finish it"
  "${SUDO[@]}" dpkg --configure -a ||
    { echo "install-deps: error: 'dpkg --configure -a' failed; fix dpkg by hand, then rerun $0" >&2; exit 1; }
fi
"${SUDO[@]}" apt-get update -qq || { echo "install-deps: error: apt-get update failed (network? apt sources?)" >&2; exit 1; }
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
  { echo "install-deps: error: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
echo "install-deps: done"
