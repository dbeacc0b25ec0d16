"""A LLaMA-family causal LM in plain PyTorch: the reference jtune is checked and benchmarked against.

It follows Hugging Face's LlamaForCausalLM (and Qwen2's q/k/v bias, Qwen3's per-head q/k norm) op for op, with
the same parameter names, so that its state_dict is a Hugging Face checkpoint:
  RMSNorm   y = w * x * rsqrt(mean(x^2) + eps), computed in float32
  RoPE      rotate-half pairing (i, i + hd/2), inv_freq_i = theta^(-2i/hd), Llama 3 scaling of inv_freq optional
  attention grouped-query (kv heads repeated), scores q.k / sqrt(hd), causal mask, softmax in float32
  MLP       down(silu(gate(x)) * up(x))
  head      lm_head, or the embedding matrix when tied
  loss      mean cross-entropy over the targets that are not negative (-100 and any other negative ignored)
Targets are given per position (already shifted), as jtune's CausalLM takes them.

Used by src-test/src/test/python/make_llama_fixtures.py and bench/torch_llama_train.py. Needs only torch.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Config:
    dim: int
    hidden_dim: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_seq: int
    rope_theta: float = 10000.0
    # Llama 3 rope scaling as (factor, low_freq_factor, high_freq_factor, original_max_position), or None
    rope_scaling: tuple = None
    norm_eps: float = 1e-5
    tied: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False


def wide(dtype):
    """The type norms, softmax and the loss compute in: float32, or float64 for a float64 model."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def inv_freq(c: Config, dtype=torch.float32) -> torch.Tensor:
    """theta^(-2i/hd) for i < hd/2, with Hugging Face's "llama3" scaling when configured."""
    f = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).to(dtype) / c.head_dim))
    if c.rope_scaling is None:
        return f
    factor, low, high, old_len = c.rope_scaling
    low_wavelen = old_len / low
    high_wavelen = old_len / high
    wavelen = 2 * math.pi / f
    scaled = torch.where(wavelen > low_wavelen, f / factor, f)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_tables(c: Config, seq: int, dtype=torch.float32):
    """cos and sin (seq, hd), each half repeated, for positions 0..seq-1."""
    freqs = torch.outer(torch.arange(seq, dtype=dtype), inv_freq(c, dtype))
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(wide(dtype))
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Attention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.dim, c.heads * c.head_dim, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=c.qkv_bias)
        self.o_proj = nn.Linear(c.heads * c.head_dim, c.dim, bias=False)
        if c.qk_norm:
            self.q_norm = RMSNorm(c.head_dim, c.norm_eps)
            self.k_norm = RMSNorm(c.head_dim, c.norm_eps)

    def forward(self, x, cos, sin, mask):
        c = self.c
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, c.heads, c.head_dim)
        k = self.k_proj(x).view(b, t, c.kv_heads, c.head_dim)
        v = self.v_proj(x).view(b, t, c.kv_heads, c.head_dim)
        if c.qk_norm:
            q = self.q_norm(q)
            k = self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (b, heads, t, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = c.heads // c.kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * c.head_dim ** -0.5 + mask
        p = F.softmax(scores, dim=-1, dtype=wide(q.dtype)).to(q.dtype)
        o = torch.matmul(p, v).transpose(1, 2).reshape(b, t, c.heads * c.head_dim)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.gate_proj = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.up_proj = nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.down_proj = nn.Linear(c.hidden_dim, c.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.input_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.dim, c.norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.dim, c.norm_eps)


class LlamaForCausalLM(nn.Module):
    """Parameter names as Hugging Face's: model.embed_tokens.weight, model.layers.0.self_attn.q_proj.weight, ..."""

    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.model = Body(c)
        if not c.tied:
            self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)

    def logits(self, tokens):
        """(b, t) int64 tokens -> (b, t, vocab) logits."""
        t = tokens.shape[1]
        dtype = self.model.embed_tokens.weight.dtype
        cos, sin = (u.to(tokens.device) for u in rope_tables(self.c, t, dtype))  # on the model's device
        mask = torch.full((t, t), float("-inf"), dtype=dtype, device=tokens.device).triu(1)
        x = self.model.embed_tokens(tokens)
        for block in self.model.layers:
            x = block(x, cos, sin, mask)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.c.tied else self.lm_head.weight
        return F.linear(x, head)

    def forward(self, tokens, targets):
        """Mean cross-entropy over the non-negative targets, and the logits."""
        logits = self.logits(tokens)
        flat = targets.reshape(-1)
        flat = torch.where(flat < 0, torch.full_like(flat, -100), flat)
        loss = F.cross_entropy(logits.reshape(-1, self.c.vocab).to(wide(logits.dtype)), flat, ignore_index=-100)
        return loss, logits


def param_groups(model: nn.Module, weight_decay: float):
    """jtune's Parameter.decay convention: decay on the 2-D weights (linear and embedding), none on norms and biases."""
    decay = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() != 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
