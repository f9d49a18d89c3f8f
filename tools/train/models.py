"""The four architectures in plain PyTorch, computing what the Hugging Face /
flash-linear-attention classes compute, with their checkpoint tensor names
(the module tree is named so that state_dict() gives those names directly):

  transformer  LlamaForCausalLM   (transformers models/llama/modeling_llama.py)
  mamba        MambaForCausalLM   (transformers models/mamba/modeling_mamba.py, MambaMixer.slow_forward)
  retnet       RetNetForCausalLM  (fla models/retnet, layers/multiscale_retention.py)
  moe          MixtralForCausalLM (transformers models/mixtral/modeling_mixtral.py)

Written from those files' semantics (and this repository's float64
references in src/reference/), not copied. Everything runs in float32.
Glossary: B batch, T tokens, D hidden, H heads, Dh head dim, Dk/Dv RetNet
key/value head dims, Di Mamba inner channels, N state size, Kc conv kernel,
R dt rank, E experts, K experts per token, V vocab.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * w (LlamaRMSNorm, MambaRMSNorm, fla RMSNorm)."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_cos_sin(T, dim, theta):
    """cos, sin (T, dim) of the rotate_half layout: inv_freq[i] = theta^(-2i/dim), emb = cat(angles, angles)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = torch.outer(torch.arange(T).float(), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    """x (..., T, dim) with cos/sin (T, dim)."""
    return x * cos + rotate_half(x) * sin


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)): LlamaMLP and fla's GatedMLP (split layout)."""

    def __init__(self, D, I):
        super().__init__()
        self.gate_proj = nn.Linear(D, I, bias=False)
        self.up_proj = nn.Linear(D, I, bias=False)
        self.down_proj = nn.Linear(I, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def causal_mask(T):
    return torch.ones(T, T, dtype=torch.bool).tril()


# ---------------------------------------------------------------------------
# Llama (and Mixtral's attention)

class LlamaAttention(nn.Module):
    def __init__(self, D, H, Hkv, Dh):
        super().__init__()
        self.H, self.Hkv, self.Dh = H, Hkv, Dh
        self.q_proj = nn.Linear(D, H * Dh, bias=False)
        self.k_proj = nn.Linear(D, Hkv * Dh, bias=False)
        self.v_proj = nn.Linear(D, Hkv * Dh, bias=False)
        self.o_proj = nn.Linear(H * Dh, D, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.Dh).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.Hkv, self.Dh).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.Hkv, self.Dh).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.Hkv != self.H:  # query head h reads KV head h // (H / Hkv)
            k = k.repeat_interleave(self.H // self.Hkv, dim=1)
            v = v.repeat_interleave(self.H // self.Hkv, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.Dh)
        att = att.masked_fill(~mask, float('-inf')).softmax(dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, self.H * self.Dh)
        return self.o_proj(o)


class MixtralExpert(nn.Module):
    """w2(silu(w1 x) * w3 x): w1 gate, w3 up, w2 down."""

    def __init__(self, D, I):
        super().__init__()
        self.w1 = nn.Linear(D, I, bias=False)
        self.w2 = nn.Linear(I, D, bias=False)
        self.w3 = nn.Linear(D, I, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MixtralSparseMoeBlock(nn.Module):
    """p = softmax(gate(x)) over E; the top K, renormalised to sum 1; sum_k w_k Expert_k(x)."""

    def __init__(self, D, I, E, K):
        super().__init__()
        self.E, self.K = E, K
        self.gate = nn.Linear(D, E, bias=False)
        self.experts = nn.ModuleList([MixtralExpert(D, I) for _ in range(E)])
        self.last_logits = None

    def forward(self, x):
        B, T, D = x.shape
        flat = x.reshape(-1, D)
        logits = self.gate(flat)
        self.last_logits = logits
        probs = logits.softmax(dim=-1)
        w, ids = probs.topk(self.K, dim=-1)
        w = w / w.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e in range(self.E):
            rows, slot = (ids == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            y = self.experts[e](flat[rows]) * w[rows, slot, None]
            out = out.index_add(0, rows, y)
        return out.view(B, T, D)


def load_balancing_loss(logits_per_layer, E, K):
    """Mixtral's auxiliary loss (transformers load_balancing_loss_func, no padding mask):
    E * sum_e (fraction of the top-K slots routed to e) * (mean router probability of e)."""
    logits = torch.cat(logits_per_layer, dim=0)
    probs = logits.softmax(dim=-1)
    _, ids = probs.topk(K, dim=-1)
    mask = F.one_hot(ids, E).float()               # (tokens, K, E)
    tokens_per_expert = mask.mean(dim=0)           # (K, E)
    prob_per_expert = probs.mean(dim=0)            # (E)
    return (tokens_per_expert * prob_per_expert[None]).sum() * E


class LlamaLayer(nn.Module):
    def __init__(self, cfg, moe):
        super().__init__()
        D = cfg['hidden_size']
        H = cfg['num_attention_heads']
        Hkv = cfg.get('num_key_value_heads', H)
        Dh = cfg.get('head_dim', D // H)
        eps = cfg['rms_norm_eps']
        self.input_layernorm = RMSNorm(D, eps)
        self.self_attn = LlamaAttention(D, H, Hkv, Dh)
        self.post_attention_layernorm = RMSNorm(D, eps)
        if moe:
            self.block_sparse_moe = MixtralSparseMoeBlock(D, cfg['intermediate_size'], cfg['num_local_experts'], cfg['num_experts_per_tok'])
        else:
            self.mlp = GatedMLP(D, cfg['intermediate_size'])
        self.moe = moe

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        ffn = self.block_sparse_moe if self.moe else self.mlp
        return h + ffn(self.post_attention_layernorm(h))


class LlamaForCausalLM(nn.Module):
    """LlamaForCausalLM, or MixtralForCausalLM when cfg['model_type'] == 'mixtral'."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.moe = cfg['model_type'] == 'mixtral'
        D = cfg['hidden_size']
        self.Dh = cfg.get('head_dim', D // cfg['num_attention_heads'])
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg['vocab_size'], D)
        self.model.layers = nn.ModuleList([LlamaLayer(cfg, self.moe) for _ in range(cfg['num_hidden_layers'])])
        self.model.norm = RMSNorm(D, cfg['rms_norm_eps'])
        assert cfg['tie_word_embeddings']  # the head is the embedding

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = rope_cos_sin(T, self.Dh, self.cfg['rope_theta'])
        mask = causal_mask(T)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.model.norm(x) @ self.model.embed_tokens.weight.T

    def aux_loss(self):
        if not self.moe:
            return None
        logits = [l.block_sparse_moe.last_logits for l in self.model.layers]
        return load_balancing_loss(logits, self.cfg['num_local_experts'], self.cfg['num_experts_per_tok'])

    def residual_outputs(self):
        """The projections that write into the residual stream (scaled at init)."""
        for l in self.model.layers:
            yield l.self_attn.o_proj.weight
            if self.moe:
                for e in l.block_sparse_moe.experts:
                    yield e.w2.weight
            else:
                yield l.mlp.down_proj.weight

    def n_residual_branches(self):
        return 2 * len(self.model.layers)


# ---------------------------------------------------------------------------
# Mamba

class SelectiveScan(torch.autograd.Function):
    """The selective scan of Mamba-1 without the D skip and the gate, time-major:
        a_t = exp(dt_t A),  h_t = a_t * h_{t-1} + (dt_t u_t) B_t,  y_t = h_t C_t
    for dt, dtu = dt*u (T, B, Di), A (Di, N), Bm, Cm (T, B, N); h_{-1} = 0.
    Forward is the serial recurrence, one small (B, Di, N) step at a time (it stays in
    cache); backward the reverse recurrence g_t = C_t dy_t + a_{t+1} g_{t+1}, from which
    d(dtu) = g B, dB = dtu g, and through a_t = exp(dt A): d(dt A) = g h_{t-1} a_t.
    Exact (no chunking, no log-space tricks), and several times faster on CPU than
    letting autograd record the (T, B, Di, N) tensors of the plain form."""

    @staticmethod
    def forward(ctx, dt, dtu, A, Bm, Cm):
        T, B, Di = dt.shape
        N = A.shape[1]
        hs = torch.empty(T, B, Di, N)
        h = torch.zeros(B, Di, N)
        for t in range(T):
            a = torch.exp(dt[t].unsqueeze(-1) * A)
            torch.addcmul(dtu[t].unsqueeze(-1) * Bm[t].unsqueeze(1), a, h, out=hs[t])
            h = hs[t]
        y = torch.bmm(hs.view(T * B, Di, N), Cm.reshape(T * B, N, 1)).view(T, B, Di)
        ctx.save_for_backward(dt, dtu, A, Bm, Cm, hs)
        return y

    @staticmethod
    def backward(ctx, gy):
        dt, dtu, A, Bm, Cm, hs = ctx.saved_tensors
        T, B, Di = dt.shape
        N = A.shape[1]
        gy = gy.contiguous()
        gC = torch.bmm(gy.view(T * B, 1, Di), hs.view(T * B, Di, N)).view(T, B, N)
        gdt = torch.zeros(T, B, Di)
        gdtu = torch.empty(T, B, Di)
        gB = torch.empty(T, B, N)
        acc = torch.zeros(B, Di, N)  # sum_t d(dt_t A) * dt_t, summed over the batch at the end -> dA
        g = None
        a_next = None
        for t in range(T - 1, -1, -1):
            gyC = gy[t].unsqueeze(-1) * Cm[t].unsqueeze(1)
            g = gyC if a_next is None else torch.addcmul(gyC, a_next, g)
            a = torch.exp(dt[t].unsqueeze(-1) * A)
            torch.sum(g * Bm[t].unsqueeze(1), dim=-1, out=gdtu[t])
            torch.sum(g * dtu[t].unsqueeze(-1), dim=1, out=gB[t])
            if t > 0:
                q = g * hs[t - 1] * a
                gdt[t] = (q * A).sum(-1)
                acc.addcmul_(q, dt[t].unsqueeze(-1))
            a_next = a
        return gdt, gdtu, acc.sum(0), gB, gC


class MambaMixer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg['hidden_size']
        Di = cfg['intermediate_size']
        N = cfg['state_size']
        Kc = cfg['conv_kernel']
        R = cfg['time_step_rank']
        self.Di, self.N, self.R = Di, N, R
        self.in_proj = nn.Linear(D, 2 * Di, bias=cfg['use_bias'])
        self.conv1d = nn.Conv1d(Di, Di, Kc, groups=Di, padding=Kc - 1, bias=cfg['use_conv_bias'])
        self.x_proj = nn.Linear(Di, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, Di, bias=True)
        # S4D-real initialisation of A (A = -[1..N] per channel) and D = 1 (MambaMixer.__init__)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).expand(Di, N).contiguous())
        self.D = nn.Parameter(torch.ones(Di))
        self.out_proj = nn.Linear(Di, D, bias=cfg['use_bias'])

    def forward(self, x):
        B, T, _ = x.shape
        # 1. in_proj -> u, z
        u, z = self.in_proj(x).chunk(2, dim=-1)
        # 2. causal depthwise conv (left padding Kc-1, keep the first T outputs), SiLU
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :T]).transpose(1, 2)      # (B, T, Di)
        # 3. x_proj -> dt, B, C; 4. dt = softplus(dt_proj(dt))
        dt, Bm, Cm = self.x_proj(u).split([self.R, self.N, self.N], dim=-1)
        dt = F.softplus(self.dt_proj(dt))                                          # (B, T, Di)
        # 5-6. the selective scan, time-major so each step is contiguous
        A = -torch.exp(self.A_log)                                                 # (Di, N)
        dt_t, u_t = dt.transpose(0, 1), u.transpose(0, 1)                          # (T, B, Di)
        Bt, Ct = Bm.transpose(0, 1), Cm.transpose(0, 1)                            # (T, B, N)
        y = SelectiveScan.apply(dt_t.contiguous(), (dt_t * u_t).contiguous(), A, Bt.contiguous(), Ct.contiguous()).transpose(0, 1)  # (B, T, Di)
        y = y + u * self.D
        # 7. gate and out_proj
        return self.out_proj(y * F.silu(z))


class MambaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg['hidden_size'], cfg['layer_norm_epsilon'])
        self.mixer = MambaMixer(cfg)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class MambaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D = cfg['hidden_size']
        self.backbone = nn.Module()
        self.backbone.embeddings = nn.Embedding(cfg['vocab_size'], D)
        self.backbone.layers = nn.ModuleList([MambaBlock(cfg) for _ in range(cfg['num_hidden_layers'])])
        self.backbone.norm_f = RMSNorm(D, cfg['layer_norm_epsilon'])
        assert cfg['tie_word_embeddings']

    def forward(self, ids):
        x = self.backbone.embeddings(ids)
        for layer in self.backbone.layers:
            x = layer(x)
        return self.backbone.norm_f(x) @ self.backbone.embeddings.weight.T

    def aux_loss(self):
        return None

    def residual_outputs(self):
        for l in self.backbone.layers:
            yield l.mixer.out_proj.weight

    def n_residual_branches(self):
        return len(self.backbone.layers)

    @torch.no_grad()
    def init_special(self, gen):
        """dt_proj as MambaPreTrainedModel._init_weights ('random' scheme, dt in [dt_min, dt_max] log-uniform)."""
        c = self.cfg
        for l in self.backbone.layers:
            m = l.mixer
            std = c['time_step_rank'] ** -0.5 * c['time_step_scale']
            m.dt_proj.weight.uniform_(-std, std, generator=gen)
            dt = torch.exp(torch.rand(m.Di, generator=gen) * (math.log(c['time_step_max']) - math.log(c['time_step_min'])) + math.log(c['time_step_min']))
            dt = dt.clamp(min=c['time_step_floor'])
            m.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus


# ---------------------------------------------------------------------------
# RetNet (fla)

def retnet_log_decays(H):
    """log gamma_h, gamma_h = 1 - 2^(-5-h), in float32 (fla/ops/retention)."""
    return torch.log(1 - torch.pow(2.0, -5.0 - torch.arange(H, dtype=torch.float32)))


class MultiScaleRetention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg['hidden_size']
        H = cfg['num_heads']
        self.H = H
        self.Dk = int(D * cfg['expand_k']) // H
        self.Dv = int(D * cfg['expand_v']) // H
        self.q_proj = nn.Linear(D, H * self.Dk, bias=False)
        self.k_proj = nn.Linear(D, H * self.Dk, bias=False)
        self.v_proj = nn.Linear(D, H * self.Dv, bias=False)
        self.g_proj = nn.Linear(D, H * self.Dv, bias=False)
        self.o_proj = nn.Linear(H * self.Dv, D, bias=False)
        self.g_norm_swish_gate = RMSNorm(self.Dv, cfg['norm_eps'])

    def forward(self, x, cos, sin, decay):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.Dk).transpose(1, 2)     # (B, H, T, Dk)
        k = self.k_proj(x).view(B, T, self.H, self.Dk).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.H, self.Dv).transpose(1, 2)     # (B, H, T, Dv)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # parallel form: O = ((scale Q) K^T ⊙ Dmask) V, Dmask[h, n, m] = gamma_h^(n-m) for n >= m
        o = (((q * self.Dk ** -0.5) @ k.transpose(-1, -2)) * decay) @ v
        o = o.transpose(1, 2)                                              # (B, T, H, Dv)
        g = self.g_proj(x).view(B, T, self.H, self.Dv)
        o = self.g_norm_swish_gate(o) * F.silu(g)                           # per-head RMSNorm * swish(g)
        return self.o_proj(o.reshape(B, T, self.H * self.Dv))


class RetNetBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg['hidden_size']
        self.attn_norm = RMSNorm(D, cfg['norm_eps'])
        self.attn = MultiScaleRetention(cfg)
        self.mlp_norm = RMSNorm(D, cfg['norm_eps'])
        self.mlp = GatedMLP(D, cfg['intermediate_size'])

    def forward(self, x, cos, sin, decay):
        h = x + self.attn(self.attn_norm(x), cos, sin, decay)
        return h + self.mlp(self.mlp_norm(h))


class RetNetForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D = cfg['hidden_size']
        self.H = cfg['num_heads']
        self.Dk = int(D * cfg['expand_k']) // self.H
        self.model = nn.Module()
        self.model.embeddings = nn.Embedding(cfg['vocab_size'], D)
        self.model.layers = nn.ModuleList([RetNetBlock(cfg) for _ in range(cfg['num_hidden_layers'])])
        self.model.norm = RMSNorm(D, cfg['norm_eps'])
        assert cfg['tie_word_embeddings']

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = rope_cos_sin(T, self.Dk, 10000.0)  # fla's RotaryEmbedding(dim=Dk), base 10000
        n = torch.arange(T)
        dist = (n[:, None] - n[None, :]).float()
        decay = torch.exp(dist[None] * retnet_log_decays(self.H)[:, None, None]) * causal_mask(T)[None]  # (H, T, T)
        x = self.model.embeddings(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, decay)
        return self.model.norm(x) @ self.model.embeddings.weight.T

    def aux_loss(self):
        return None

    def residual_outputs(self):
        for l in self.model.layers:
            yield l.attn.o_proj.weight
            yield l.mlp.down_proj.weight

    def n_residual_branches(self):
        return 2 * len(self.model.layers)


# ---------------------------------------------------------------------------
# The four bundled configurations (config.json as real checkpoints of each model_type write it)

def configs(vocab):
    common = {'bos_token_id': vocab.bos_id, 'eos_token_id': vocab.eos_id, 'vocab_size': vocab.size, 'torch_dtype': 'float32', 'tie_word_embeddings': True}
    llama = {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama',
        'attention_bias': False, 'attention_dropout': 0.0, 'head_dim': 32, 'hidden_act': 'silu', 'hidden_size': 128,
        'initializer_range': 0.02, 'intermediate_size': 384, 'max_position_embeddings': 4096, 'mlp_bias': False,
        'num_attention_heads': 4, 'num_hidden_layers': 4, 'num_key_value_heads': 4, 'pretraining_tp': 1,
        'rms_norm_eps': 1e-05, 'rope_scaling': None, 'rope_theta': 10000.0, 'use_cache': True, **common,
    }
    mamba = {
        'architectures': ['MambaForCausalLM'], 'model_type': 'mamba',
        'conv_kernel': 4, 'expand': 2, 'fused_add_norm': True, 'hidden_act': 'silu', 'hidden_size': 128,
        'initializer_range': 0.02, 'intermediate_size': 256, 'layer_norm_epsilon': 1e-05, 'n_layer': 7,
        'num_hidden_layers': 7, 'rescale_prenorm_residual': False, 'residual_in_fp32': True, 'state_size': 16,
        'time_step_floor': 0.0001, 'time_step_init_scheme': 'random', 'time_step_max': 0.1, 'time_step_min': 0.001,
        'time_step_rank': 8, 'time_step_scale': 1.0, 'use_bias': False, 'use_cache': True, 'use_conv_bias': True, **common,
    }
    retnet = {
        'architectures': ['RetNetForCausalLM'], 'model_type': 'retnet',
        'attn': None, 'attn_mode': 'chunk', 'conv_size': 4, 'elementwise_affine': True, 'expand_k': 1, 'expand_v': 2,
        'feature_map': None, 'fuse_cross_entropy': True, 'fuse_norm': True, 'hidden_act': 'swish', 'hidden_ratio': 2,
        'hidden_size': 128, 'initializer_range': 0.02, 'intermediate_size': 256, 'max_position_embeddings': 4096,
        'norm_eps': 1e-06, 'num_heads': 4, 'num_hidden_layers': 4, 'num_kv_heads': None, 'use_cache': True,
        'use_output_gate': True, 'use_short_conv': False, **common,
    }
    mixtral = {
        'architectures': ['MixtralForCausalLM'], 'model_type': 'mixtral',
        'attention_dropout': 0.0, 'head_dim': 32, 'hidden_act': 'silu', 'hidden_size': 128, 'initializer_range': 0.02,
        'intermediate_size': 192, 'max_position_embeddings': 4096, 'num_attention_heads': 4, 'num_experts_per_tok': 2,
        'num_hidden_layers': 4, 'num_key_value_heads': 4, 'num_local_experts': 4, 'output_router_logits': False,
        'rms_norm_eps': 1e-05, 'rope_theta': 10000.0, 'router_aux_loss_coef': 0.02, 'router_jitter_noise': 0.0,
        'sliding_window': None, 'use_cache': True, **common,
    }
    return {'transformer': llama, 'mamba': mamba, 'retnet': retnet, 'moe': mixtral}


def build(name, cfg):
    return {'transformer': LlamaForCausalLM, 'moe': LlamaForCausalLM, 'mamba': MambaForCausalLM, 'retnet': RetNetForCausalLM}[name](cfg)


@torch.no_grad()
def init_weights(model, seed):
    """One initialisation for all four: N(0, 0.02) for embeddings and linear weights,
    the projections that write into the residual stream N(0, 0.02 / sqrt(branches)),
    norms 1; Mamba's conv keeps PyTorch's default and its A, D and dt_proj their own."""
    gen = torch.Generator().manual_seed(seed)
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Embedding)):
            mod.weight.normal_(0.0, 0.02, generator=gen)
            if getattr(mod, 'bias', None) is not None:
                mod.bias.zero_()
        elif isinstance(mod, nn.Conv1d):
            bound = 1 / math.sqrt(mod.weight.shape[1] * mod.weight.shape[2])  # kaiming-uniform(a=sqrt(5)) bound
            mod.weight.uniform_(-bound, bound, generator=gen)
            if mod.bias is not None:
                mod.bias.uniform_(-bound, bound, generator=gen)
    scale = 0.02 / math.sqrt(model.n_residual_branches())
    for w in model.residual_outputs():
        w.normal_(0.0, scale, generator=gen)
    if hasattr(model, 'init_special'):
        model.init_special(gen)
