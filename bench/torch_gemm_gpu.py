#!/usr/bin/env python3
"""PyTorch's half of bench/gpu's GEMM table: torch.matmul on the GPU, timed as jtune's `bench gemm` times it.

For each product (dtype f32 or bf16, m, n, k, layout nn/nt/tn) allocates A and B with uniform values in [-1, 1)
and C = A·B (f32 products in full precision: TF32 off, PyTorch's default; bf16 products give bf16 C, as
torch.matmul does), warms up for at least 3 runs and about 3 seconds, then times `repeat` runs one by one, each
followed by torch.cuda.synchronize(), and prints one JSON line per product with the median and best milliseconds
and TFLOP/s (2·m·n·k per product).

Usage: python3 bench/torch_gemm_gpu.py [--repeat 20] DTYPE:M:N:K:LAYOUT ...
"""
import argparse
import json
import statistics
import time

import torch


def measure(dtype, m, n, k, layout, repeat):
    t = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    g = torch.Generator(device="cuda").manual_seed(1)
    a = torch.rand((k, m) if layout == "tn" else (m, k), generator=g, device="cuda", dtype=torch.float32) * 2 - 1
    b = torch.rand((n, k) if layout == "nt" else (k, n), generator=g, device="cuda", dtype=torch.float32) * 2 - 1
    a, b = a.to(t), b.to(t)
    op_a = a.t() if layout == "tn" else a
    op_b = b.t() if layout == "nt" else b
    flops = 2.0 * m * n * k
    until = time.perf_counter() + 3
    i = 0
    while i < 3 or (time.perf_counter() < until and flops * i < 1e13):
        torch.matmul(op_a, op_b)
        i += 1
    torch.cuda.synchronize()
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.matmul(op_a, op_b)
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    median = statistics.median(ms)
    return {"engine": f"torch {torch.__version__}", "device": torch.cuda.get_device_name(), "dtype": dtype, "m": m,
            "n": n, "k": k, "layout": layout, "median_ms": median, "best_ms": min(ms),
            "tflops_median": flops / (median * 1e9), "tflops_best": flops / (min(ms) * 1e9)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("products", nargs="+", help="DTYPE:M:N:K:LAYOUT, e.g. bf16:4096:4096:4096:nn")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    for p in a.products:
        dtype, m, n, k, layout = p.split(":")
        print(json.dumps(measure(dtype, int(m), int(n), int(k), layout, a.repeat)), flush=True)


if __name__ == "__main__":
    main()
