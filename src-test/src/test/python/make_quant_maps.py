#!/usr/bin/python3
"""Writes the code books that QuantMapsTest checks jtune.engine.tensor.DynamicMap and Nf4 against.

  dynamic_signed  bitsandbytes' signed 8-bit dynamic map, built as create_dynamic_map(signed=True) is described in
                  shared/reference/quantization-methods.md 8.1: for i = 0..6, the 2^i midpoints of 2^i + 1 points
                  from torch.linspace(0.1, 1, 2^i + 1, dtype=float32), each scaled by 10^(i-6) (a float32 tensor
                  times a Python float) and mirrored; then 0 and 1.0; sorted; as float32.
  nf4             the 16 NF4 values as bitsandbytes hard-codes them (the reference lists them), as float32, and the
                  15 decision midpoints (a + b) / 2 computed in float32.
Each value is written as float.hex of the float32 value, so the test compares bits.

Run: /usr/bin/python3 src-test/src/test/python/make_quant_maps.py   (Debian's python3-torch)
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "engine", "src", "test",
                   "resources", "fixtures", "quant-maps.json")

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def dynamic_signed():
    parts = []
    for i in range(7):
        edges = torch.linspace(0.1, 1.0, 2 ** i + 1, dtype=torch.float32)
        means = (edges[:-1] + edges[1:]) / 2.0
        scale = 10.0 ** (i - 6)
        parts.append(scale * means)
        parts.append(-scale * means)
    parts.append(torch.tensor([0.0, 1.0], dtype=torch.float32))
    values, _ = torch.sort(torch.cat(parts).to(torch.float32))
    assert values.numel() == 256
    return values


def hexes(t):
    return [float(v).hex() for v in t.to(torch.float32).tolist()]


def main():
    nf4 = torch.tensor(NF4, dtype=torch.float32)
    mids = (nf4[:-1] + nf4[1:]) / 2.0
    doc = {"dynamic_signed": hexes(dynamic_signed()), "nf4": hexes(nf4), "nf4_midpoints": hexes(mids)}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
