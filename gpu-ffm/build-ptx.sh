#!/usr/bin/env bash
# Regenerates the PTX resources from the CUDA C sources: src/main/cuda/NAME.cu becomes
# src/main/resources/jtune/gpu/ptx/NAME.ptx (or DIR/NAME.ptx with a DIR argument, as the staleness test does).
# The PTX targets compute capability 8.0, the floor jtune supports (bf16 tensor cores, cp.async); the driver
# JIT-compiles it for the GPU at hand, 8.0 or newer. A source named NAME_sm90.cu targets sm_90a instead (Hopper's
# wgmma, which exists on compute capability 9.0 alone); the backend loads it only there. Its ".version" line is set to PTX ISA 8.0 (CUDA 12.0) in
# place of the newer one nvcc writes, so that drivers from CUDA 12.0 on accept it: the kernels use nothing newer,
# which ptxas confirms in the tests (it rejects an instruction the declared ISA lacks).
# nvcc is $NVCC, else the one on PATH, else /usr/local/cuda's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/src/main/resources/jtune/gpu/ptx}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$nvcc" ] || { echo "build-ptx: nvcc not found (set NVCC, or put CUDA's bin on PATH)" >&2; exit 1; }
mkdir -p "$out"
cd "$here/src/main/cuda"
pids=()
for cu in *.cu; do
    arch=compute_80
    case "$cu" in *_sm90.cu) arch=compute_90a ;; esac
    { "$nvcc" -ptx -arch=$arch -O3 -std=c++17 -o "$out/${cu%.cu}.ptx" "$cu" &&
          sed -i 's/^\.version [0-9.]*$/.version 8.0/' "$out/${cu%.cu}.ptx"; } &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
exit $status
