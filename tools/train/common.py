"""Data, tokenizer, safetensors writer and scoring shared by the four trainers.

Everything here is deterministic: the same file and seed give the same ids,
the same batches and the same bytes on disk.
"""

import json
import math
import os
import struct

import numpy as np
import torch

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
DATA = os.path.join(REPO, 'data', 'tinyshakespeare.txt')

BOS = '<s>'
EOS = '</s>'
WINDOW = 128  # training sequence length, scoring window and golden window


# ---------------------------------------------------------------------------
# Character vocabulary

class CharVocab:
    """The sorted characters of the whole file (ids 0..C-1), then <s> (C) and </s> (C+1)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.bos_id = len(self.chars)
        self.eos_id = len(self.chars) + 1
        self.size = len(self.chars) + 2

    def encode(self, text):
        return np.array([self.stoi[c] for c in text], dtype=np.int64)

    def decode(self, ids):
        return ''.join(self.chars[i] for i in ids if i < len(self.chars))

    def tokenizer_json(self):
        """A tokenizer.json the Rust tokenizers and Tokenizers.js both load: a BPE
        model whose vocabulary is the single characters and which has no merges,
        so every character is its own token; no normalizer, pre-tokenizer or
        post-processor (encode adds no BOS); the Fuse decoder joins the pieces."""
        vocab = {c: i for i, c in enumerate(self.chars)}
        vocab[BOS] = self.bos_id
        vocab[EOS] = self.eos_id
        added = [
            {'id': i, 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}
            for i, t in ((self.bos_id, BOS), (self.eos_id, EOS))
        ]
        return {
            'version': '1.0',
            'truncation': None,
            'padding': None,
            'added_tokens': added,
            'normalizer': None,
            'pre_tokenizer': None,
            'post_processor': None,
            'decoder': {'type': 'Fuse'},
            'model': {
                'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
                'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                'vocab': vocab, 'merges': [],
            },
        }

    def tokenizer_config(self, max_length):
        return {
            'add_bos_token': False,
            'add_eos_token': False,
            'added_tokens_decoder': {
                str(i): {'content': t, 'lstrip': False, 'normalized': False, 'rstrip': False, 'single_word': False, 'special': True}
                for i, t in ((self.bos_id, BOS), (self.eos_id, EOS))
            },
            'bos_token': BOS,
            'eos_token': EOS,
            # A play's dialogue, which is what the models saw: "ROLE:\n" then the speech and a blank line.
            'chat_template': CHAT_TEMPLATE,
            'clean_up_tokenization_spaces': False,
            'model_max_length': max_length,
            'tokenizer_class': 'PreTrainedTokenizerFast',
        }


# Chat messages as the speeches of a play (the role's name in capitals), then the assistant's turn.
CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] | upper }}:\n{{ message['content'] }}\n\n{% endfor %}"
                 "{% if add_generation_prompt %}ASSISTANT:\n{% endif %}")


def load_data():
    """(vocab, train ids, validation ids): the file split by character, first 90% for training."""
    with open(DATA, encoding='utf-8') as f:
        text = f.read()
    vocab = CharVocab(text)
    n_train = int(len(text) * 0.9)
    return vocab, vocab.encode(text[:n_train]), vocab.encode(text[n_train:]), text


# ---------------------------------------------------------------------------
# safetensors, written by hand (https://github.com/huggingface/safetensors#format):
# u64 little-endian header length, the JSON header, then the raw little-endian data.

_DTYPES = {torch.float32: ('F32', np.dtype('<f4')), torch.float16: ('F16', np.dtype('<f2'))}


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor (f32 or f16), written in sorted name order."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, npdt = _DTYPES[t.dtype]
        data = t.numpy().astype(npdt, copy=False).tobytes()
        header[name] = {'dtype': code, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(',', ':'), sort_keys=False).encode('utf-8')
    raw += b' ' * ((8 - len(raw) % 8) % 8)  # align the data to 8 bytes, as the Rust writer does
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == '__metadata__':
                continue
            a, b = info['data_offsets']
            f.seek(base + a)
            npdt = {'F32': '<f4', 'F16': '<f2'}[info['dtype']]
            arr = np.frombuffer(f.read(b - a), dtype=npdt).reshape(info['shape'])
            out[name] = torch.from_numpy(arr.copy())
        return out


# ---------------------------------------------------------------------------
# Training helpers

def batches(train_ids, steps, batch, seq, seed):
    """Yields (x, y) int64 (batch, seq): random windows of the training ids, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(train_ids)
    hi = len(train_ids) - seq - 1
    for _ in range(steps):
        starts = torch.randint(0, hi + 1, (batch,), generator=g)
        idx = starts[:, None] + torch.arange(seq + 1)[None, :]
        w = data[idx]
        yield w[:, :-1], w[:, 1:]


def lr_at(step, steps, peak, warmup, floor=0.1):
    """Linear warmup to `peak`, then cosine down to floor * peak at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def param_groups(model, weight_decay):
    """Weight decay on the 2-D weight matrices only (not embeddings, norms, biases, A_log, D, conv)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim == 2 and name.endswith('.weight') and 'embed' not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]


@torch.no_grad()
def score(model, ids, window=WINDOW, batch=32):
    """Mean NLL (nats per token) as the runtime's scorer computes it: the ids cut into
    consecutive non-overlapping windows of `window` tokens, each scored from its own
    start; every window predicts its tokens 1..len-1."""
    model.eval()
    data = torch.from_numpy(ids)
    n_full = len(ids) // window
    nll = 0.0
    count = 0
    for i in range(0, n_full, batch):
        w = data[i * window:min(n_full, i + batch) * window].view(-1, window)
        logits = model(w).double()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        nll -= lp.gather(-1, w[:, 1:, None]).sum().item()
        count += w.shape[0] * (window - 1)
    rest = data[n_full * window:]
    if len(rest) >= 2:
        logits = model(rest[None]).double()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        nll -= lp.gather(-1, rest[None, 1:, None]).sum().item()
        count += len(rest) - 1
    model.train()
    return nll / count, count


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def q4_roundtrip(w, group=32):
    """W (rows, cols) through Tessera's 4-bit format and back (src/runtime/q4.ts quantizeQ4 /
    dequantizeQ4, ported): per group of `group` values along a row, d = (max - min) / 15 and
    m = min, both rounded to f16 (via f32), codes round((w - m) / d) (half up) clamped to 0..15;
    the value is m + code * d. Returned as float32."""
    a = w.detach().double().numpy()
    rows, cols = a.shape
    out = np.empty_like(a)
    for g0 in range(0, cols, group):
        blk = a[:, g0:g0 + group]
        lo = blk.min(axis=1, keepdims=True)
        hi = blk.max(axis=1, keepdims=True)
        d = ((hi - lo) / 15).astype(np.float32).astype(np.float16).astype(np.float64)
        m = lo.astype(np.float32).astype(np.float16).astype(np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            q = np.where(d > 0, np.clip(np.floor((blk - m) / d + 0.5), 0, 15), 0)
        out[:, g0:g0 + group] = m + q * d
    return torch.from_numpy(out.astype(np.float32))
