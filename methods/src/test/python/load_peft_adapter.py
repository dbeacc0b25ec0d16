#!/usr/bin/python3
"""Applies a LoRA adapter saved in Hugging Face PEFT's format to a model folder in plain PyTorch and writes the logits.

Usage: load_peft_adapter.py IDS MODEL ADAPTER OUT
  IDS      the token ids of one sequence, comma-separated ("1,403,407")
  MODEL    a Hugging Face model folder (config.json, model.safetensors), as `jtune export` writes it
  ADAPTER  a PEFT adapter folder: adapter_config.json and adapter_model.safetensors
  OUT      where the logits go: (len(IDS), vocab_size) little-endian float32, row-major

The peft package is not needed (nor installed here): this reads the two files as PeftModel.from_pretrained does for a
LoRA on a LlamaForCausalLM and applies PEFT's formula in evaluation mode (dropout off) to each adapted nn.Linear:
    y = x W^T (+ b) + scaling * (x A^T) B^T,   scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
with A = base_model.model.<module>.lora_A.weight (r, in) and B = base_model.model.<module>.lora_B.weight (out, r).
It checks what PEFT relies on: peft_type "LORA", no bias training, no fan_in_fan_out, no per-layer rank or alpha, no
DoRA, the "pt" format, every tensor named for a target module of the model with its shape, and no module of the model
matching target_modules without both tensors. The model itself is loaded by src-test's load_hf_export.py (strictly,
into torch_llama.py's LLaMA) and run in float32.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "src-test", "src", "test", "python"))
import load_hf_export as hf  # noqa: E402
import torch_llama as tl  # noqa: E402

PREFIX = "base_model.model."


class LoraLinear(nn.Module):
    """PEFT's LoRA layer in evaluation mode over a frozen nn.Linear."""

    def __init__(self, base, a, b, scaling):
        super().__init__()
        self.base = base
        self.a = a
        self.b = b
        self.scaling = scaling

    def forward(self, x):
        return self.base(x) + self.scaling * F.linear(F.linear(x, self.a), self.b)


def adapter(folder):
    with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as f:
        c = json.load(f)
    assert c["peft_type"] == "LORA", c["peft_type"]
    assert c.get("bias", "none") == "none" and not c.get("fan_in_fan_out", False) and not c.get("use_dora", False)
    assert not c.get("rank_pattern") and not c.get("alpha_pattern") and not c.get("modules_to_save")
    r = c["r"]
    scaling = c["lora_alpha"] / (math.sqrt(r) if c.get("use_rslora", False) else r)
    tensors, meta = hf.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    assert meta.get("format") == "pt", meta
    return c, scaling, tensors


def main():
    ids = [int(a) for a in sys.argv[1].split(",")]
    model_dir, adapter_dir, out = sys.argv[2:5]
    torch.set_num_threads(1)
    model = tl.LlamaForCausalLM(hf.config(model_dir))
    model.load_state_dict(hf.weights(model_dir), strict=True)
    c, scaling, tensors = adapter(adapter_dir)
    used = set()
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or name.split(".")[-1] not in c["target_modules"]:
            continue
        a, b = PREFIX + name + ".lora_A.weight", PREFIX + name + ".lora_B.weight"
        assert a in tensors and b in tensors, f"{name} matches target_modules but the adapter has no {a} and {b}"
        assert tensors[a].shape == (c["r"], module.in_features), (a, tensors[a].shape)
        assert tensors[b].shape == (module.out_features, c["r"]), (b, tensors[b].shape)
        parent, child = name.rsplit(".", 1)
        setattr(model.get_submodule(parent), child, LoraLinear(module, tensors[a], tensors[b], scaling))
        used.update((a, b))
    assert used == set(tensors), f"tensors for no module of the model: {sorted(set(tensors) - used)}"
    model.eval()
    with torch.no_grad():
        logits = model.logits(torch.tensor([ids], dtype=torch.int64))[0]
    logits.numpy().astype("<f4").tofile(out)
    print(f"{adapter_dir}: {len(used) // 2} adapted modules, r {c['r']}, scaling {scaling:.4f}; logits "
          f"{tuple(logits.shape)}, argmax {logits.argmax(-1).tolist()}")


if __name__ == "__main__":
    main()
