#!/usr/bin/env bash
# Installs the Debian packages moesim needs, only those missing. Runs apt-get as
# root, or through sudo when not root. Quiet and quick when nothing is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config zlib1g-dev libjansson-dev libglpk-dev libcmocka-dev
      libopenmpi-dev openmpi-bin libopenblas-dev python3-numpy clang libclang-rt-dev)
# chromium is needed only by the HTML report test; install with MOESIM_WITH_CHROMIUM=1
[[ "${MOESIM_WITH_CHROMIUM:-1}" == 1 ]] && pkgs+=(chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
