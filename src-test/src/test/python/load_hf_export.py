#!/usr/bin/python3
"""Loads Hugging Face model folders (as `jtune export` writes them) in plain PyTorch and writes their logits.

Usage: load_hf_export.py IDS DIR [DIR ...]
  IDS  the token ids of one sequence, comma-separated ("1,403,407")
  DIR  a folder: config.json, and model.safetensors or model.safetensors.index.json with its shards. The logits
       of the sequence, shape (len(IDS), vocab_size), go to the file DIR.logits beside it (little-endian float32,
       row-major); a summary line per folder goes to stdout.

Independent of jtune's Java code: it reads config.json the way transformers' config classes do for the
architectures jtune writes (LlamaForCausalLM; Qwen2ForCausalLM = q/k/v bias; Qwen3ForCausalLM = per-head q/k
norm, head_dim default 128), parses the safetensors files with struct and numpy (the safetensors package is not
needed), checks what transformers checks before loading them (metadata "format" is "pt"; the index names every
tensor's shard), loads the tensors strictly into torch_llama.LlamaForCausalLM (every parameter present with its
shape, no tensor left over) and runs it in float32. Needs only torch and numpy (Debian's python3-torch).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama as tl  # noqa: E402

DTYPES = {"F32": np.float32, "F16": np.float16}


def config(folder):
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    arch = c["architectures"][0]
    assert arch in ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"), arch
    assert c.get("hidden_act", "silu") == "silu"
    heads = c["num_attention_heads"]
    kv_default = heads if arch == "LlamaForCausalLM" else 32
    head_dim = c.get("head_dim") or (128 if arch == "Qwen3ForCausalLM" else c["hidden_size"] // heads)
    scaling = c.get("rope_scaling")
    if scaling is not None:
        assert scaling.get("rope_type", scaling.get("type")) == "llama3", scaling
        scaling = (scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"],
                   scaling["original_max_position_embeddings"])
    return tl.Config(dim=c["hidden_size"], hidden_dim=c["intermediate_size"], layers=c["num_hidden_layers"],
                     heads=heads, kv_heads=c.get("num_key_value_heads") or kv_default, head_dim=head_dim,
                     vocab=c["vocab_size"], max_seq=c.get("max_position_embeddings", 2048),
                     rope_theta=c.get("rope_theta", 10000.0), rope_scaling=scaling,
                     norm_eps=c.get("rms_norm_eps", 1e-6), tied=c.get("tie_word_embeddings", False),
                     qkv_bias=arch == "Qwen2ForCausalLM", qk_norm=arch == "Qwen3ForCausalLM")


def read_safetensors(path):
    """name -> float32 torch tensor, and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        raw = body[begin:end]
        if e["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")).astype(np.float32)
        out[name] = torch.from_numpy(a.reshape(e["shape"]).copy())
    return out, meta


def weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        weight_map, files = None, ["model.safetensors"]
    state = {}
    for name in files:
        tensors, meta = read_safetensors(os.path.join(folder, name))
        assert meta.get("format") == "pt", f"{name}: metadata format {meta.get('format')!r}, transformers needs 'pt'"
        for t in tensors:
            assert weight_map is None or weight_map[t] == name, f"{t} is in {name}, the index says {weight_map[t]}"
        state.update(tensors)
    if weight_map is not None:
        assert set(weight_map) == set(state), "the index and the shards name different tensors"
    return state


def main():
    ids = [int(a) for a in sys.argv[1].split(",")]
    torch.set_num_threads(1)
    for folder in sys.argv[2:]:
        folder = folder.rstrip("/")
        model = tl.LlamaForCausalLM(config(folder))
        model.load_state_dict(weights(folder), strict=True)
        model.eval()
        with torch.no_grad():
            logits = model.logits(torch.tensor([ids], dtype=torch.int64))[0]
        logits.numpy().astype("<f4").tofile(folder + ".logits")
        print(f"{folder}: logits {tuple(logits.shape)}, argmax {logits.argmax(-1).tolist()}")


if __name__ == "__main__":
    main()
