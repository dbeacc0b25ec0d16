#!/usr/bin/python3
"""PyTorch's half of bench/train-vs-torch: full training of a LLaMA with AdamW on random tokens, timed per step.

The model is src-test/src/test/python/torch_llama.py (Hugging Face LlamaForCausalLM semantics, the same code the
test fixtures come from), in float32 on the CPU, or with --device cuda on the GPU (full-precision f32 products:
TF32 off, PyTorch's default), eager attention. Hugging Face init (N(0, 0.02), norms 1);
AdamW lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on the 2-D weights. A step is zero_grad, forward,
backward and optimizer step. Prints one JSON object: the median and each step's tokens/s over the measured steps,
the peak RSS of this process (getrusage), the parameter count and the settings.

Usage: /usr/bin/python3 bench/torch_llama_train.py [--preset llama60m] [--seq 256] [--batch 4] [--threads 2]
                                                   [--warmup 2] [--steps 5] [--seed 0] [--device cpu|cuda]
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src-test", "src", "test", "python"))
import torch_llama as tl  # noqa: E402

PRESETS = {
    # GaLore/ReLoRA's LLaMA-60M: untied, eps 1e-6
    "llama60m": tl.Config(dim=512, hidden_dim=1376, layers=8, heads=8, kv_heads=8, head_dim=64, vocab=32000,
                          max_seq=1024, norm_eps=1e-6),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="llama60m", choices=sorted(PRESETS))
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be at least 1 and --warmup at least 0")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gpu = a.device == "cuda"
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    c = PRESETS[a.preset]
    model = tl.LlamaForCausalLM(c)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    model.to(a.device)
    opt = torch.optim.AdamW(tl.param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(a.seed + 1)
    tokens = torch.randint(0, c.vocab, (a.batch, a.seq + 1), generator=g)
    inputs, targets = tokens[:, :-1].contiguous().to(a.device), tokens[:, 1:].contiguous().to(a.device)

    rates, losses = [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = model(inputs, targets)
        loss.backward()
        opt.step()
        if gpu:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        losses.append(loss.item())
        if step >= a.warmup:
            rates.append(a.batch * a.seq / seconds)
        print(f"torch step {step + 1}/{a.warmup + a.steps}{' (warm-up)' if step < a.warmup else ''}: "
              f"loss {losses[-1]:.4f}, {a.batch * a.seq / seconds:.1f} tokens/s", file=sys.stderr, flush=True)

    print(json.dumps({
        "engine": f"torch {torch.__version__}" + (f" on {torch.cuda.get_device_name()}" if gpu else ""),
        "preset": a.preset, "seq": a.seq, "batch": a.batch, "threads": a.threads,
        "warmup": a.warmup, "steps": a.steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_each": [round(r, 2) for r in rates],
        "losses": [round(v, 5) for v in losses],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **({"peak_gpu_bytes": torch.cuda.max_memory_allocated()} if gpu else {}),
    }))


if __name__ == "__main__":
    main()
