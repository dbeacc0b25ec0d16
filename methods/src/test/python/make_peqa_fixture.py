#!/usr/bin/python3
"""Writes the PyTorch fixture that PeqaVsPyTorchTest checks jtune's PEQA against.

A tiny LLaMA (src-test's torch_llama.py: dim 32, MLP 80, 2 layers, 4 heads sharing 2 kv heads, vocabulary 48, untied
head) with seeded O(1)-activation float32 weights. For each variant every decoder-block linear layer (q, k, v, o,
gate, up, down) is quantized by round-to-nearest, written here from the definition (reference section 0, GPTQ's
min-max grid in float32):
  asymmetric: lo = min(min(w), 0), hi = max(max(w), 0) ([-1, 1] if both are 0); s = (hi - lo) / maxq;
              z = clamp(round(-lo / s), 0, maxq)
  symmetric:  a = max(-lo, hi) (1 if 0); s = 2a / maxq; z = 2^(bits-1)
  codes       q = clamp(round(w / s) + z, 0, maxq), round half to even (torch.round)
per group of `group` consecutive inputs of a row (the last one short when it does not divide), or per row (group 0).
The layer then computes y = x W^T with W = s (q - z), s one trainable parameter per group; everything else (codes,
zero points, embedding, norms, head) is frozen, so only the scales receive gradients (checked here: every other
parameter's grad stays None). For a fixed batch of 2 x 8 tokens with ignored targets it records the loss, the logits
and every scale's gradient, then the losses of 5 AdamW steps on the scales alone and the scales after them.

Variants (name: bits, group, symmetric): int4_g0 (4, per channel, asymmetric), int3_g32s (3, 32, symmetric; the MLP's
80 inputs make groups of 32, 32 and 16).

Output: methods/src/test/resources/fixtures/peqa-fixture.safetensors, a hand-written safetensors file holding
  <hf name>                         the f32 weights of the model before quantization
  tokens, targets                   int32 (2, 8); a negative target is ignored
  <variant>.codes.<layer>           u8 (out, in), one code per element, unpacked
  <variant>.scales.<layer>          f32 (out, groups); <variant>.zeros.<layer> f32 (out, groups)
  <variant>.logits, <variant>.loss  f32 (16, 48) and scalar, at the quantized (RTN) weights
  <variant>.grad.<layer>            f32 (out, groups), d loss / d scales
  <variant>.losses                  f32 (5), the loss before each AdamW step (lr 1e-3, betas 0.9/0.999, eps 1e-8,
                                    no weight decay)
  <variant>.final.<layer>           f32 (out, groups), the scales after the 5 steps
with the config and settings in "__metadata__". Deterministic (one thread, seeded generators). Also prints how far the
float32 gradients lie from a float64 run of the same quantized model.

Run: /usr/bin/python3 methods/src/test/python/make_peqa_fixture.py   (Debian's python3-torch)
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "src-test", "src", "test", "python"))
import torch_llama as tl  # noqa: E402

OUT = os.path.join(HERE, "..", "resources", "fixtures", "peqa-fixture.safetensors")
CONFIG = tl.Config(dim=32, hidden_dim=80, layers=2, heads=4, kv_heads=2, head_dim=8, vocab=48, max_seq=16)
VARIANTS = {"int4_g0": (4, 0, False), "int3_g32s": (3, 32, True)}
MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj"]
BATCH, SEQ, STEPS = 2, 8, 5
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


def rtn(w, bits, group, symmetric):
    """Codes (out, in) int64, scales and zeros (out, groups) float32 of the float32 matrix w."""
    rows, cols = w.shape
    width = cols if group == 0 else group
    maxq = 2 ** bits - 1
    codes = torch.zeros(rows, cols, dtype=torch.int64)
    groups = (cols + width - 1) // width
    scales = torch.zeros(rows, groups, dtype=torch.float32)
    zeros = torch.zeros(rows, groups, dtype=torch.float32)
    for k in range(groups):
        part = w[:, k * width:(k + 1) * width]
        lo = torch.clamp(part.min(dim=1).values, max=0.0)
        hi = torch.clamp(part.max(dim=1).values, min=0.0)
        if symmetric:
            a = torch.maximum(-lo, hi)
            a = torch.where(a == 0, torch.ones_like(a), a)
            s = (2.0 * a) / maxq
            z = torch.full_like(s, float(2 ** (bits - 1)))
        else:
            both = (lo == 0) & (hi == 0)
            lo = torch.where(both, -torch.ones_like(lo), lo)
            hi = torch.where(both, torch.ones_like(hi), hi)
            s = (hi - lo) / maxq
            z = torch.clamp(torch.round(-lo / s), 0, maxq)
        q = torch.clamp(torch.round(part / s[:, None]) + z[:, None], 0, maxq)
        codes[:, k * width:(k + 1) * width] = q.to(torch.int64)
        scales[:, k] = s
        zeros[:, k] = z
    return codes, scales, zeros


class PeqaLinear(nn.Module):
    """y = x W^T, W = s (q - z) per group; s is the only parameter."""

    def __init__(self, codes, scales, zeros, group):
        super().__init__()
        cols = codes.shape[1]
        self.width = cols if group == 0 else group
        self.register_buffer("q", codes.to(scales.dtype))
        self.register_buffer("z", zeros.clone())
        self.scales = nn.Parameter(scales.clone())

    def expand(self, t):
        return t.repeat_interleave(self.width, dim=1)[:, :self.q.shape[1]]

    def forward(self, x):
        return F.linear(x, self.expand(self.scales) * (self.q - self.expand(self.z)))


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("embed_tokens.weight"):
                p.copy_(noise)
            elif name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(noise / p.shape[1] ** 0.5)


def peqa_model(weights, bits, group, symmetric, dtype):
    """The model with every block linear replaced by a PeqaLinear; the quantization, by layer name."""
    model = tl.LlamaForCausalLM(CONFIG)
    model.load_state_dict(weights)
    quant = {}
    for i in range(CONFIG.layers):
        for m in MODULES:
            layer = f"model.layers.{i}.{m}"
            codes, scales, zeros = rtn(weights[layer + ".weight"], bits, group, symmetric)
            quant[layer] = (codes, scales, zeros)
            parent = model.get_submodule(layer.rsplit(".", 1)[0])
            setattr(parent, m.split(".")[1], PeqaLinear(codes, scales, zeros, group))
    model = model.to(dtype)
    for name, p in model.named_parameters():
        p.requires_grad_(name.endswith(".scales"))
    return model, quant


def run(model, tokens, targets):
    """Loss, logits and scale gradients at the quantized weights; then the losses of STEPS AdamW steps."""
    loss, logits = model(tokens, targets)
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == name.endswith(".scales"), f"{name}: gradient {p.grad is not None}"
    grads = {n[:-len(".scales")]: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    first = (loss.detach().clone(), logits.detach().reshape(-1, CONFIG.vocab).clone(), grads)
    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, betas=BETAS, eps=EPS,
                            weight_decay=0.0)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss, _ = model(tokens, targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    finals = {n[:-len(".scales")]: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return first, torch.tensor(losses, dtype=torch.float32), finals


def write_safetensors(path, tensors, meta):
    """tensors: (name, tensor) in file order; F32, I32 and U8, little-endian, C order, 8-byte aligned header."""
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        if t.dtype == torch.float32:
            dtype, fmt = "F32", "<%df"
        elif t.dtype == torch.int32:
            dtype, fmt = "I32", "<%di"
        elif t.dtype == torch.uint8:
            dtype, fmt = "U8", "<%dB"
        else:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
        values = t.reshape(-1).tolist()
        blob = struct.pack(fmt % len(values), *values)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    base = tl.LlamaForCausalLM(CONFIG)
    init_weights(base, seed=3000)
    weights = {n: p.detach().clone() for n, p in base.named_parameters()}
    g = torch.Generator().manual_seed(3001)
    tokens = torch.randint(0, CONFIG.vocab, (BATCH, SEQ), generator=g)
    targets = torch.randint(0, CONFIG.vocab, (BATCH, SEQ), generator=g)
    targets[0, 3] = -100
    targets[1, SEQ - 1] = -1

    tensors = list(weights.items()) + [("tokens", tokens.int()), ("targets", targets.int())]
    meta = {"format": "pt", "hidden_size": CONFIG.dim, "intermediate_size": CONFIG.hidden_dim,
            "num_hidden_layers": CONFIG.layers, "num_attention_heads": CONFIG.heads,
            "num_key_value_heads": CONFIG.kv_heads, "head_dim": CONFIG.head_dim, "vocab_size": CONFIG.vocab,
            "max_position_embeddings": CONFIG.max_seq, "rope_theta": CONFIG.rope_theta, "rms_norm_eps": CONFIG.norm_eps,
            "tie_word_embeddings": "false", "adamw.lr": LR, "adamw.beta1": BETAS[0], "adamw.beta2": BETAS[1],
            "adamw.eps": EPS, "adamw.steps": STEPS}
    for name, (bits, group, symmetric) in VARIANTS.items():
        meta[name] = json.dumps({"bits": bits, "group": group, "symmetric": symmetric})
        model, quant = peqa_model(weights, bits, group, symmetric, torch.float32)
        twin, _ = peqa_model(weights, bits, group, symmetric, torch.float64)
        (loss, logits, grads), losses, finals = run(model, tokens, targets)
        (loss64, logits64, grads64), _, _ = run(twin, tokens, targets)
        for layer, (codes, scales, zeros) in quant.items():
            tensors += [(f"{name}.codes.{layer}", codes.to(torch.uint8)), (f"{name}.scales.{layer}", scales),
                        (f"{name}.zeros.{layer}", zeros)]
        tensors += [(f"{name}.logits", logits), (f"{name}.loss", loss), (f"{name}.losses", losses)]
        tensors += [(f"{name}.grad.{layer}", gr) for layer, gr in grads.items()]
        tensors += [(f"{name}.final.{layer}", s) for layer, s in finals.items()]
        worst = max(rel(grads[n], grads64[n]) for n in grads)
        print(f"{name}: loss {loss.item():.6f} -> {losses[-1].item():.6f}; f32 vs f64: loss {rel(loss, loss64):.1e}, "
              f"logits {rel(logits, logits64):.1e}, worst scale gradient {worst:.1e}")
    write_safetensors(OUT, tensors, {k: str(v) for k, v in meta.items()})
    print(f"{os.path.relpath(OUT)}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
