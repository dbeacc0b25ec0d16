#!/usr/bin/python3
"""Writes the fixture that QuantizerFixtureTest checks jtune's quantizers against.

An independent implementation, from the formulas of shared/reference/quantization-methods.md (sections 0, 8.1,
8.2), of:
  RTN   min-max grid per row or per group of columns, GPTQ's variant (range widened to include 0, an all-zero
        range becomes [-1, 1]); asymmetric: s = (hi - lo) / maxq, z = round(-lo / s); symmetric: a = max(-lo, hi),
        s = 2a / maxq, z = 2^(b-1); q = clamp(round(w / s) + z, 0, maxq); all in float32 with torch's
        round-half-to-even. bf16 scales: s is rounded to bf16 (nearest even) before z and q are computed.
  NF4   bitsandbytes: absmax per block of a row, x = w * (1 / absmax) in float32, code = number of float32
        midpoints (a + b) / 2 of the code book strictly below x (a tie goes to the lower code); an all-zero block
        gets code 7. Double quantization: offset = mean(absmax) (float64, rounded to float32); absmax - offset in
        runs of 256 with scale max |.|, code = nearest entry of bitsandbytes' signed dynamic map (built here with
        torch.linspace as create_dynamic_map does), the lower one on a tie.
  GPTQ  textbook, unbatched: dead columns (H_jj = 0) get H_jj = 1 and zero weights; optional act-order (descending
        diag H, stable); H += percdamp * mean(diag H) * I; U = cholesky(inv(H)) transposed (numpy), so inv(H) =
        U^T U; column by column q = quant(w_i), err = (w_i - q) / U_ii, later columns -= err * U[i, later]; per
        channel grids from the original weights, dynamic group grids from the updated weights at each group start,
        with act-order static group grids from the original weights (dead columns zeroed). float64 except the
        grids and codes, which are float32 as above. loss = sum (w - q)^2 / U_ii^2 / 2.
It writes methods/src/test/resources/fixtures/quant-fixtures.json:
  {"rtn": [case...], "nf4": [case...], "gptq": {"h": H, "cases": [case...]}, "lorc": [case...]}, each case with its
  inputs (w, row-major; the GPTQ cases share one (64, 64) Hessian h with a dead column) and expected outputs (codes, scales/zeros or absmax and the double-quantization arrays, GPTQ's loss).
The inputs include round-half ties for RTN and NF4 values exactly on a midpoint. For LoRC: Gaussian matrices e
(64x64, 48x80, 80x48) and their singular values from LAPACK (numpy.linalg.svd in float64).

Run: /usr/bin/python3 methods/src/test/python/make_quant_fixtures.py   (Debian's python3-numpy and python3-torch)
"""
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "fixtures", "quant-fixtures.json")
F32 = np.float32

NF4 = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=F32)
NF4_MID = ((NF4[:-1] + NF4[1:]) / F32(2)).astype(F32)


def bf16(x):
    """float32 -> nearest-even bfloat16, back as float32."""
    return torch.tensor(np.asarray(x, dtype=F32)).to(torch.bfloat16).to(torch.float32).numpy()


def grid(values, bits, sym, bf16_scale):
    """Min-max grid (scale, zero) of float32 values, GPTQ's variant, in float32."""
    maxq = F32(2 ** bits - 1)
    lo = min(F32(values.min()), F32(0))
    hi = max(F32(values.max()), F32(0))
    if sym:
        a = max(-lo, hi)
        if a == 0:
            a = F32(1)
        s = F32(F32(2) * a) / maxq
        s = bf16(s) if bf16_scale else s
        return F32(s), F32(2 ** (bits - 1))
    if lo == 0 and hi == 0:
        lo, hi = F32(-1), F32(1)
    s = F32(hi - lo) / maxq
    s = F32(bf16(s)) if bf16_scale else F32(s)
    z = torch.round(torch.tensor(F32(-lo) / s)).item()
    return s, F32(min(max(z, 0), maxq)) + F32(0)  # clamped to [0, maxq]; + 0 turns round's -0 into 0


def codes(values, s, z, bits):
    x = torch.tensor(np.asarray(values, dtype=F32))
    q = torch.clamp(torch.round(x / torch.tensor(s)) + torch.tensor(z), 0, 2 ** bits - 1)
    return q.numpy().astype(np.int64)


def rtn(w, bits, group, sym, bf16_scale):
    rows, cols = w.shape
    width = cols if group == 0 else group
    groups = -(-cols // width)
    q = np.zeros((rows, cols), np.int64)
    sc = np.zeros((rows, groups), F32)
    ze = np.zeros((rows, groups), F32)
    for i in range(rows):
        for g in range(groups):
            sl = slice(g * width, min(cols, (g + 1) * width))
            s, z = grid(w[i, sl], bits, sym, bf16_scale)
            sc[i, g], ze[i, g] = s, z
            q[i, sl] = codes(w[i, sl], s, z, bits)
    return q, sc, ze


def dynamic_map():
    """bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)."""
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2 ** i + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0, 1.0]
    data.sort()
    return torch.tensor(data, dtype=torch.float32).numpy()


def nf4(w, block, double_quant):
    rows, cols = w.shape
    blocks = -(-cols // block)
    q = np.zeros((rows, cols), np.int64)
    absmax = np.zeros((rows, blocks), F32)
    for i in range(rows):
        for b in range(blocks):
            sl = slice(b * block, min(cols, (b + 1) * block))
            a = F32(np.abs(w[i, sl]).max())
            absmax[i, b] = a
            if a == 0:
                q[i, sl] = 7
            else:
                x = (w[i, sl] * (F32(1) / a)).astype(F32)
                q[i, sl] = (x[:, None] > NF4_MID[None, :]).sum(axis=1)
    out = {"codes": q, "absmax": absmax}
    if double_quant:
        flat = absmax.reshape(-1)
        offset = F32(flat.astype(np.float64).mean())
        centred = (flat - offset).astype(F32)
        dmap = dynamic_map()
        n_runs = -(-flat.size // 256)
        aq = np.zeros(flat.size, np.int64)
        ascale = np.zeros(n_runs, F32)
        for r in range(n_runs):
            sl = slice(r * 256, min(flat.size, (r + 1) * 256))
            s = F32(np.abs(centred[sl]).max())
            ascale[r] = s
            x = (centred[sl] * (F32(1) / s if s != 0 else F32(0))).astype(F32)
            aq[sl] = np.argmin(np.abs(x[:, None] - dmap[None, :]), axis=1)
        out.update(absmax_codes=aq, absmax_scales=ascale, absmax_offset=offset)
    return out


def gptq(w, h, bits, group, sym, act_order, percdamp, bf16_scale):
    rows, cols = w.shape
    width = cols if group == 0 else group
    groups = -(-cols // width)
    H = h.copy()
    W = w.astype(np.float64)
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    channel = [grid(w[i], bits, sym, bf16_scale) for i in range(rows)]
    W[:, dead] = 0
    static = [[grid(W[i, g * width:min(cols, (g + 1) * width)].astype(F32), bits, sym, bf16_scale)
               for g in range(groups)] for i in range(rows)]
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(cols)
    H = H + percdamp * np.mean(np.diag(H)) * np.eye(cols)
    Hp = H[perm][:, perm]
    U = np.linalg.cholesky(np.linalg.inv(Hp)).T
    Wp = W[:, perm].copy()
    q = np.zeros((rows, cols), np.int64)
    sc = np.zeros((rows, groups), F32)
    ze = np.zeros((rows, groups), F32)
    current = [None] * rows
    loss = 0.0
    for i in range(cols):
        j = perm[i]
        for r in range(rows):
            if group == 0:
                s, z = channel[r]
                sc[r, 0], ze[r, 0] = s, z
            elif act_order:
                s, z = static[r][j // width]
                sc[r, j // width], ze[r, j // width] = s, z
            else:
                if i % width == 0:
                    current[r] = grid(Wp[r, i:min(cols, i + width)].astype(F32), bits, sym, bf16_scale)
                    sc[r, i // width], ze[r, i // width] = current[r]
                s, z = current[r]
            c = codes([F32(Wp[r, i])], s, z, bits)[0]
            q[r, j] = c
            deq = float(F32(s * F32(c - z)))
            diff = Wp[r, i] - deq
            loss += diff * diff / U[i, i] ** 2 / 2
            Wp[r, i + 1:] -= (diff / U[i, i]) * U[i, i + 1:]
    return q, sc, ze, loss


def tie_row(cols, bits, sym, group, rng):
    """A row whose every group holds both grid ends and otherwise values exactly half-way between grid points."""
    maxq = 2 ** bits - 1
    width = cols if group == 0 else group
    if sym:
        # a = maxq: s = 2, z = 2^(b-1); odd integers are ties
        row = (2 * rng.integers(-maxq // 2, maxq // 2, cols) + 1).astype(F32)
        for g in range(0, cols, width):
            row[g], row[g + 1] = -maxq, maxq
    else:
        # lo = 0, hi = maxq: s = 1, z = 0; k + 0.5 are ties
        row = (rng.integers(0, maxq, cols) + 0.5).astype(F32)
        for g in range(0, cols, width):
            row[g], row[g + 1] = 0, maxq
    return row


def rtn_cases(rng):
    cases = []
    rows, cols = 6, 80
    configs = []
    for bits in (2, 3, 4, 8):
        configs += [(bits, 0, False, "f32"), (bits, 32, False, "f32"), (bits, 64, True, "f32")]
    configs += [(4, 32, False, "bf16"), (3, 0, True, "bf16")]
    for bits, group, sym, st in configs:
        w = rng.standard_normal((rows, cols)).astype(F32) * F32(0.05)
        w[0] = 0
        w[1] = np.abs(w[1])
        w[2] = -np.abs(w[2])
        w[3] = tie_row(cols, bits, sym, group, rng)
        q, sc, ze = rtn(w, bits, group, sym, st == "bf16")
        cases.append(dict(rows=rows, cols=cols, bits=bits, group=group, sym=sym, scale_type=st, w=w, codes=q,
                          scales=sc, zeros=ze))
    return cases


def nf4_cases(rng):
    cases = []
    # ties and the reference's worked example (section 10) in blocks whose absmax is exactly 1 or 1.8
    w = (rng.standard_normal((6, 128)) * 0.1).astype(F32)
    w[0, :64] = 0
    w[0, :4] = [0.5, -0.2, 1.0, 0.0]
    w[0, 64:68] = [0.9, -0.3, 0.02, -1.8]
    w[0, 68:] = np.clip(w[0, 68:], -1.8, 1.8)
    w[1, 0] = 1.0
    w[1, 1:16] = NF4_MID
    w[1, 16:31] = -NF4_MID
    w[1, 31:46] = np.nextafter(NF4_MID, F32(2))
    w[1, 46:61] = np.nextafter(NF4_MID, F32(-2))
    w[1, 61:64] = [-1.0, 0.0, -0.0]
    w[1, 64] = -1.0
    w[1, 65:80] = NF4_MID
    w[2, 64:] = 0
    cases.append(dict(rows=6, cols=128, block=64, double_quant=False, w=w, **nf4(w, 64, False)))
    w = (rng.standard_normal((3, 200)) * 0.3).astype(F32)
    cases.append(dict(rows=3, cols=200, block=128, double_quant=False, w=w, **nf4(w, 128, False)))
    w = (rng.standard_normal((40, 224)) * np.exp(rng.standard_normal((40, 1)))).astype(F32)
    w[5, :32] = 0
    cases.append(dict(rows=40, cols=224, block=32, double_quant=True, w=w, **nf4(w, 32, True)))
    return cases


def gptq_cases(rng):
    cases = []
    rows, cols, n = 8, 64, 256
    mix = rng.standard_normal((cols, cols)) * np.exp(-np.arange(cols) / 16.0)[:, None]
    x = rng.standard_normal((n, cols)) @ mix + 0.3 * rng.standard_normal((n, cols))
    x[:, 5] = 0
    h = 2.0 / n * x.T @ x
    configs = [
        # bits, group, sym, act_order, percdamp, java block size, scale type
        (4, 0, False, False, 0.01, 128, "f32"),
        (3, 32, False, False, 0.01, 128, "f32"),
        (3, 32, False, False, 0.01, 16, "f32"),
        (4, 32, False, False, 0.01, 24, "f32"),
        (2, 0, False, True, 0.01, 128, "f32"),
        (4, 32, False, True, 0.01, 40, "f32"),
        (4, 32, True, False, 0.01, 128, "f32"),
        (8, 0, False, False, 0.1, 128, "f32"),
        (3, 64, False, False, 0.01, 128, "bf16"),
    ]
    for bits, group, sym, act, damp, block, st in configs:
        w = (rng.standard_normal((rows, cols)) * 0.05).astype(F32)
        q, sc, ze, loss = gptq(w, h, bits, group, sym, act, damp, st == "bf16")
        rq, rs, rz = rtn(w, bits, group, sym, st == "bf16")
        err_g = w - dequant(q, sc, ze, group)
        err_r = w - dequant(rq, rs, rz, group)
        print(f"gptq int{bits} g{group} sym={sym} act={act}: tr(EHE^T) gptq {np.einsum('ij,jk,ik', err_g, h, err_g):.6g}"
              f"  rtn {np.einsum('ij,jk,ik', err_r, h, err_r):.6g}")
        cases.append(dict(rows=rows, cols=cols, bits=bits, group=group, sym=sym, act_order=act, percdamp=damp,
                          block=block, scale_type=st, w=w, codes=q, scales=sc, zeros=ze, loss=loss))
    return {"h": h, "cases": cases}


def lorc_cases(rng):
    """Matrices for the low-rank factors, with their singular values (LAPACK, float64 of the float32 values)."""
    cases = []
    for rows, cols in ((64, 64), (48, 80), (80, 48)):
        e = rng.standard_normal((rows, cols)).astype(F32)
        sigma = np.linalg.svd(e.astype(np.float64), compute_uv=False)
        cases.append(dict(rows=rows, cols=cols, e=e, sigma=sigma))
    return cases


def dequant(q, sc, ze, group):
    cols = q.shape[1]
    width = cols if group == 0 else group
    g = np.arange(cols) // width
    return (sc[:, g] * (q - ze[:, g]).astype(F32)).astype(F32)


def short(x):
    """A float32 as the Python float of its shortest decimal form, checked to come back to the same float32 through
    float64 (what a reader parsing the JSON number as a double and narrowing it gets)."""
    v = float(str(x))
    return v if F32(v) == x or np.isnan(x) else float(x)


def plain(v):
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.reshape(-1)]
    if isinstance(v, np.float32):
        return short(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(20240605)
    fixture = {"rtn": rtn_cases(rng), "nf4": nf4_cases(rng), "gptq": gptq_cases(rng), "lorc": lorc_cases(rng)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(plain(fixture), f, separators=(",", ":"))
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
