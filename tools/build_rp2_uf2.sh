#!/usr/bin/env bash
# Rebuild the vendored MicroPython uf2 (host/picodaq/boards/images/RPI_PICO-v1.28.0.uf2)
# from the pinned source tree: MicroPython v1.28.0 with the submodules it pins
# (pico-sdk a1438dff 2.2.0, tinyusb aa0fc2e0, micropython-lib 8380c7bb, mbedtls
# 107ea89d), as a tgz whose top folder is micropython/.
#
#   tools/build_rp2_uf2.sh [--install-deps] SOURCES.tgz [OUT.uf2]
#
# Needs Debian's gcc-arm-none-eabi (12.2.1 made the vendored file),
# libnewlib-arm-none-eabi, cmake, make, a host gcc and python3; --install-deps
# apt-get installs them (as root). About 1.5 min on 2 cores. Not run in CI.
# OUT defaults to build/rp2-uf2/RPI_PICO-v1.28.0.uf2; the vendored file is never
# overwritten. The result is compared with the vendored sha256: with Debian 12's
# gcc-arm-none-eabi 12.2.1 and on the vendored file's build date (2026-12-05,
# in its banner) the rebuild was byte-identical; on another day the banner's
# date differs, so compare `firmware.bin` sizes (339,712 bytes) instead.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
install_deps=0
if [ "${1:-}" = "--install-deps" ]; then install_deps=1; shift; fi
src=${1:?usage: tools/build_rp2_uf2.sh [--install-deps] SOURCES.tgz [OUT.uf2]}
out=${2:-$here/build/rp2-uf2/RPI_PICO-v1.28.0.uf2}
src=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
vendored=$here/host/picodaq/boards/images/RPI_PICO-v1.28.0.uf2

if [ "$install_deps" = 1 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib cmake make gcc python3
fi
for tool in arm-none-eabi-gcc cmake make gcc python3; do
  command -v "$tool" >/dev/null || { echo "build_rp2_uf2: $tool is missing (try --install-deps)" >&2; exit 1; }
done

work=$here/build/rp2-uf2/src
rm -rf "$work"
mkdir -p "$work" "$(dirname "$out")"
tar xzf "$src" -C "$work"
mp=$work/micropython
[ -f "$mp/ports/rp2/Makefile" ] || { echo "build_rp2_uf2: $src holds no micropython/ports/rp2" >&2; exit 1; }

# the version banner comes from `git describe` when the tree is in a git checkout:
# keep git from finding an enclosing repository (this one, under build/), so the
# banner reads v1.28.0 as in the vendored build
export GIT_CEILING_DIRECTORIES=$work
jobs=$(nproc 2>/dev/null || echo 2)
make -C "$mp/mpy-cross" -j"$jobs"
# pico-sdk 2.x clones picotool at configure time unless told not to (offline here)
make -C "$mp/ports/rp2" BOARD=RPI_PICO CMAKE_ARGS=-DPICO_NO_PICOTOOL=1 -j"$jobs"
bin=$mp/ports/rp2/build-RPI_PICO/firmware.bin
[ -f "$bin" ] || { echo "build_rp2_uf2: no $bin after the build" >&2; exit 1; }

# firmware.bin -> uf2: 512-byte blocks of 256 payload bytes from 0x10000000,
# flags 0x2000 (family id present) with the RP2040 family 0xE48BFF56
python3 - "$bin" "$out" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
data += b"\0" * (-len(data) % 256)
n = len(data) // 256
with open(sys.argv[2], "wb") as f:
    for i in range(n):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * i, 256, i, n, 0xE48BFF56)
        f.write(head + data[256 * i:256 * i + 256] + b"\0" * 220 + struct.pack("<I", 0x0AB16F30))
PY

echo "firmware.bin: $(stat -c %s "$bin") bytes (the vendored uf2 came from 339,712)"
echo "uf2: $out, $(stat -c %s "$out") bytes"
sha256sum "$out" "$vendored"
