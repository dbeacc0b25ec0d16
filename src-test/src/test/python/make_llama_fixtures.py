#!/usr/bin/python3
"""Writes the PyTorch fixtures that LlamaVsPyTorchTest checks jtune against.

For each variant it builds a tiny LLaMA-family model (torch_llama.py, Hugging Face semantics) with fixed seeded
float32 weights and a fixed batch of 2 x 8 tokens with ignored targets, and writes
src-test/src/test/resources/fixtures/llama-<variant>.safetensors holding:
  <hf name>          every initial weight (model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, ...)
  tokens, targets    int32 (B, T); a negative target is ignored
  logits             float32 (B*T, V);  loss: float32 scalar, the mean cross-entropy
  grad.<hf name>     the gradient of the loss for every parameter
  losses             float32 (10): the loss before each of 10 AdamW steps on the same batch
  final.<hf name>    every weight after those 10 steps
The config and the optimizer's settings are strings in "__metadata__" (Hugging Face config key names).
AdamW: torch.optim.AdamW(lr 1e-2, betas (0.9, 0.95), eps 1e-8), weight decay 0.1 on the 2-D weights only.

The weights are not Hugging Face's N(0, 0.02) init but O(1)-activation ones (linear N(0, 1/in), embeddings
N(0, 1), norm weights 1 + N(0, 0.1^2), biases N(0, 0.1^2)), so that attention is far from uniform and every
norm and bias weight matters. Deterministic: single-threaded torch, seeded generators, a hand-written
safetensors writer; re-running it rewrites the same bytes (with the same torch build). It also prints how far
these float32 results lie from a float64 run of the same model, the scale of rounding the tolerances must admit.

Run: /usr/bin/python3 src-test/src/test/python/make_llama_fixtures.py   (Debian's python3-torch)
"""
import json
import os
import struct
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama as tl  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "fixtures")
BATCH, SEQ, STEPS = 2, 8, 10
LR, BETAS, EPS, WEIGHT_DECAY = 1e-2, (0.9, 0.95), 1e-8, 0.1

VARIANTS = {
    # grouped-query attention (4 heads share 2 kv heads), untied head
    "gqa": tl.Config(dim=16, hidden_dim=24, layers=2, heads=4, kv_heads=2, head_dim=4, vocab=40, max_seq=16),
    # multi-head attention, head tied to the embedding, eps 1e-6
    "tied": tl.Config(dim=16, hidden_dim=24, layers=2, heads=4, kv_heads=4, head_dim=4, vocab=40, max_seq=16,
                      norm_eps=1e-6, tied=True),
    # Qwen2: q/k/v bias, GQA. Theta 100, not Qwen2's 1e6: at 1e6 the second frequency barely turns in 8
    # positions, so the k bias's gradient there is nearly zero (softmax ignores a shift common to a row) and
    # mostly rounding, which AdamW's normalisation turns into lr-sized steps that no tolerance can follow.
    "qwen2": tl.Config(dim=16, hidden_dim=24, layers=2, heads=4, kv_heads=2, head_dim=4, vocab=40, max_seq=16,
                       rope_theta=100.0, norm_eps=1e-6, qkv_bias=True),
    # Qwen3: per-head q/k RMSNorm before RoPE, head dim 8 so that heads * head_dim (32) != dim (16), tied
    "qwen3": tl.Config(dim=16, hidden_dim=24, layers=2, heads=4, kv_heads=2, head_dim=8, vocab=40, max_seq=16,
                       rope_theta=1e6, norm_eps=1e-6, tied=True, qk_norm=True),
    # Llama 3 rope scaling; theta 100 and original length 32 put the 4 frequencies in all three bands
    # (wavelengths 6.3 < 8: kept; 19.9: smoothed; 62.8, 199 > 32: divided by 4); one kv head for 2 heads
    "llama3": tl.Config(dim=16, hidden_dim=24, layers=2, heads=2, kv_heads=1, head_dim=8, vocab=40, max_seq=16,
                        rope_theta=100.0, rope_scaling=(4.0, 1.0, 4.0, 32)),
}


def metadata(c: tl.Config):
    m = {
        "format": "pt",
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads,
        "head_dim": c.head_dim,
        "vocab_size": c.vocab,
        "max_position_embeddings": c.max_seq,
        "rope_theta": c.rope_theta,
        "rms_norm_eps": c.norm_eps,
        "tie_word_embeddings": str(c.tied).lower(),
        "attention_bias": str(c.qkv_bias).lower(),
        "qk_norm": str(c.qk_norm).lower(),
        "adamw.lr": LR,
        "adamw.beta1": BETAS[0],
        "adamw.beta2": BETAS[1],
        "adamw.eps": EPS,
        "adamw.weight_decay": WEIGHT_DECAY,
        "adamw.steps": STEPS,
    }
    if c.rope_scaling is not None:
        factor, low, high, old_len = c.rope_scaling
        m.update({"rope_scaling.rope_type": "llama3", "rope_scaling.factor": factor,
                  "rope_scaling.low_freq_factor": low, "rope_scaling.high_freq_factor": high,
                  "rope_scaling.original_max_position_embeddings": old_len})
    return {k: str(v) for k, v in m.items()}


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("embed_tokens.weight"):
                p.copy_(noise)
            elif name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / p.shape[1] ** 0.5)


def batch(c: tl.Config, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, c.vocab, (BATCH, SEQ), generator=g)
    targets = torch.randint(0, c.vocab, (BATCH, SEQ), generator=g)
    targets[0, 3] = -100  # ignored in the middle of a sequence
    targets[1, 2] = -1  # any negative target is ignored
    targets[1, SEQ - 1] = -100  # the last position: its whole forward contributes nothing
    return tokens, targets


def run(model, tokens, targets):
    """Logits, loss and gradients at the current weights, then the losses of STEPS AdamW steps."""
    loss, logits = model(tokens, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    first = (loss.detach().clone(), logits.detach().reshape(-1, model.c.vocab).clone(), grads)
    model.zero_grad(set_to_none=True)
    opt = torch.optim.AdamW(tl.param_groups(model, WEIGHT_DECAY), lr=LR, betas=BETAS, eps=EPS)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss, _ = model(tokens, targets)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return first, torch.tensor(losses, dtype=loss.dtype)


def write_safetensors(path, tensors, meta):
    """tensors: (name, tensor) in file order; F32 and I32 only, little-endian, C order."""
    header = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        if t.dtype == torch.float32:
            dtype, fmt = "F32", "<%df"
        elif t.dtype in (torch.int32, torch.int64):
            dtype, fmt = "I32", "<%di"
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
    os.makedirs(OUT, exist_ok=True)
    for index, (variant, c) in enumerate(VARIANTS.items()):
        torch.manual_seed(0)
        model = tl.LlamaForCausalLM(c)
        init_weights(model, seed=1000 + index)
        tokens, targets = batch(c, seed=2000 + index)
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        twin = tl.LlamaForCausalLM(c).double()
        twin.load_state_dict(model.state_dict())

        (loss, logits, grads), losses = run(model, tokens, targets)
        (loss64, logits64, grads64), losses64 = run(twin, tokens, targets)

        tensors = list(initial.items())
        tensors += [("tokens", tokens.int()), ("targets", targets.int()), ("logits", logits), ("loss", loss)]
        tensors += [("grad." + n, g) for n, g in grads.items()]
        tensors += [("losses", losses)]
        tensors += [("final." + n, p.detach()) for n, p in model.named_parameters()]
        path = os.path.join(OUT, f"llama-{variant}.safetensors")
        write_safetensors(path, tensors, metadata(c))

        worst_grad = max(rel(grads[n], grads64[n]) for n in grads)
        finals64 = dict(twin.named_parameters())
        worst_final = max(rel(p.detach(), finals64[n].detach()) for n, p in model.named_parameters())
        print(f"{os.path.relpath(path)}: {os.path.getsize(path)} bytes, loss {loss.item():.6f} -> "
              f"{losses[-1].item():.6f}; f32 vs f64: logits {rel(logits, logits64):.1e}, "
              f"loss {rel(loss, loss64):.1e}, grads {worst_grad:.1e}, losses {rel(losses, losses64):.1e}, "
              f"final weights {worst_final:.1e}")


if __name__ == "__main__":
    main()
