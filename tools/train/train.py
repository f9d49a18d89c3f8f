"""Train, export and make the goldens of one bundled tiny model.

  python3 tools/train/train.py --model transformer --time         # measure the uncontended step time
  python3 tools/train/train.py --model transformer --steps 1234   # train, export to models/transformer/

See tools/train/README.md for the step counts of the bundled models.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (REPO, WINDOW, batches, count_params, load_data, lr_at, param_groups, q4_roundtrip,  # noqa: E402
                    read_safetensors, score, write_safetensors)
from models import build, configs, init_weights  # noqa: E402

SEED = 1337
BATCH = 32
THREADS = 2
PEAK_LR = 2e-3
WEIGHT_DECAY = 0.1
BUDGET_S = 600.0

GOLDEN_START = 4096            # offset of the golden window in the validation ids
GOLDEN_NEW = 64                # greedy tokens
PROMPTS = ['ROMEO:\n', 'JULIET:\nO ', 'First Citizen:\n', 'KING RICHARD III:\n', 'To be, or not ', 'MENENIUS:\nWhat ']


def setup():
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)


def make_model(name, vocab):
    cfg = configs(vocab)[name]
    model = build(name, cfg)
    init_weights(model, SEED)
    return cfg, model


def active_params(name, cfg, total):
    if name != 'moe':
        return total
    D, I, E, K, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_local_experts'], cfg['num_experts_per_tok'], cfg['num_hidden_layers']
    return total - L * (E - K) * 3 * D * I


def train_step(model, opt, x, y, aux_coef):
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    aux = model.aux_loss()
    total = loss + aux_coef * aux if aux is not None else loss
    opt.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def make_opt(model):
    return torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=PEAK_LR, betas=(0.9, 0.95), eps=1e-8)


def cpu_busy(seconds=2.0):
    """Fraction of all CPUs busy over `seconds` (from /proc/stat), to wait for a quiet machine."""
    def snap():
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit=0.1, max_wait=900):
    """Blocks until the machine is nearly idle (so a step time is measured uncontended), or max_wait."""
    start = time.time()
    while time.time() - start < max_wait:
        busy = cpu_busy()
        if busy < limit:
            return busy
        print(f'  waiting for a quiet machine ({100 * busy:.0f}% busy)', flush=True)
        time.sleep(8)
    return cpu_busy()


def measure(name):
    """Step time: 3 warm-up steps, then the mean of 10 timed ones (same work as training), on a quiet machine."""
    busy = wait_quiet()
    vocab, train_ids, _, _ = load_data()
    cfg, model = make_model(name, vocab)
    opt = make_opt(model)
    aux_coef = cfg.get('router_aux_loss_coef', 0.0)
    times = []
    for x, y in batches(train_ids, 13, BATCH, WINDOW, SEED + 1):
        t0 = time.perf_counter()
        train_step(model, opt, x, y, aux_coef)
        times.append(time.perf_counter() - t0)
    dt = sum(times[3:]) / 10
    print(json.dumps({'model': name, 'step_s': round(dt, 4), 'min_step_s': round(min(times[3:]), 4),
                      'steps_for_budget': round(BUDGET_S / dt), 'busy_before': round(busy, 3), 'busy_after': round(cpu_busy(), 3)}))


@torch.no_grad()
def greedy(model, ids, n):
    """Greedy continuation by full forward passes; also the smallest top-1/top-2 gap relative to the largest |logit|."""
    ids = list(ids)
    out, min_rel_gap, min_gap = [], float('inf'), float('inf')
    for _ in range(n):
        logits = model(torch.tensor([ids]))[0, -1]
        top = logits.topk(2)
        gap = (top.values[0] - top.values[1]).item()
        rel = gap / logits.abs().max().item()
        min_gap, min_rel_gap = min(min_gap, gap), min(min_rel_gap, rel)
        nxt = int(top.indices[0])
        out.append(nxt)
        ids.append(nxt)
    return out, min_gap, min_rel_gap


def f32(v):
    return float(torch.tensor(v, dtype=torch.float32).item())


def export(name, cfg, model, vocab, val_ids, out_dir, record):
    os.makedirs(out_dir, exist_ok=True)
    state = {k: v for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out_dir, 'model.safetensors'), state, {'format': 'pt'})

    def dump(file, obj):
        with open(os.path.join(out_dir, file), 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write('\n')

    dump('config.json', cfg)
    dump('generation_config.json', {'bos_token_id': vocab.bos_id, 'eos_token_id': vocab.eos_id})
    dump('tokenizer.json', vocab.tokenizer_json())
    dump('tokenizer_config.json', vocab.tokenizer_config(cfg.get('max_position_embeddings', 4096)))

    # Goldens from the weights exactly as stored.
    stored = read_safetensors(os.path.join(out_dir, 'model.safetensors'))
    variants = {'': stored}
    if name == 'moe':
        # Tessera keeps a mixture's experts 4-bit even in its f32 mode (src/models/loader/weights.ts
        # experts()): a second golden with exactly those experts, everything else f32.
        variants['_experts_q4'] = {k: (q4_roundtrip(v) if '.experts.' in k else v) for k, v in stored.items()}
    models = {}
    for suffix, weights in variants.items():
        m = build(name, cfg)
        m.load_state_dict(weights, strict=True)
        m.eval()
        models[suffix] = m
    window = val_ids[GOLDEN_START:GOLDEN_START + WINDOW]
    golden = {'window': {'split': 'validation', 'start': GOLDEN_START, 'length': WINDOW, 'ids': window.tolist()}}
    for suffix, m in models.items():
        with torch.no_grad():
            logits = m(torch.from_numpy(window)[None])[0]
            lp = torch.log_softmax(logits.double()[:-1], dim=-1)
            golden['window']['loss' + suffix] = -lp.gather(-1, torch.from_numpy(window[1:])[:, None]).mean().item()
            golden['window']['logits' + suffix] = [[f32(v) for v in row] for row in logits.tolist()]
    for prompt in PROMPTS:
        p_ids = vocab.encode(prompt).tolist()
        runs = {}
        for suffix, m in models.items():
            toks, gap, rel = greedy(m, p_ids, GOLDEN_NEW)
            print(f'  prompt {prompt!r}{suffix}: min top-1/top-2 gap {gap:.4g} ({rel:.3g} of the largest |logit|)')
            runs[suffix] = {'ids': toks, 'text': vocab.decode(toks), 'min_top2_gap': gap, 'min_top2_gap_relative': rel}
        if all(r['min_top2_gap_relative'] >= 1e-3 for r in runs.values()):
            for suffix, r in runs.items():
                golden['greedy' + suffix] = {'prompt': prompt, 'prompt_ids': p_ids, 'new_tokens': GOLDEN_NEW, **r}
            break
    else:
        raise SystemExit('every prompt has a near-tie along its greedy path')
    dump('golden.json', golden)
    dump('training.json', record)


def train(name, steps, out_dir):
    vocab, train_ids, val_ids, _ = load_data()
    cfg, model = make_model(name, vocab)
    total = count_params(model)
    print(f'{name}: {total} parameters ({active_params(name, cfg, total)} active), {steps} steps')
    opt = make_opt(model)
    aux_coef = cfg.get('router_aux_loss_coef', 0.0)
    warmup = max(1, min(200, steps // 10))
    losses = []
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(batches(train_ids, steps, BATCH, WINDOW, SEED + 1)):
        lr = lr_at(step, steps, PEAK_LR, warmup)
        for g in opt.param_groups:
            g['lr'] = lr
        losses.append(train_step(model, opt, x, y, aux_coef))
        if step % 100 == 0 or step == steps - 1:
            print(f'  step {step:5d}  lr {lr:.2e}  loss {losses[-1]:.4f}  {time.perf_counter() - t0:7.1f}s', flush=True)
    wall = time.perf_counter() - t0
    val, count = score(model, val_ids)
    tail = losses[-100:]
    record = {
        'model': name, 'model_type': cfg['model_type'],
        'params_total': total, 'params_active': active_params(name, cfg, total),
        'steps': steps, 'step_time_s': None, 'wall_time_s': round(wall, 1),
        'seed': SEED, 'threads': THREADS, 'batch': BATCH, 'seq_len': WINDOW,
        'optimizer': {'name': 'AdamW', 'peak_lr': PEAK_LR, 'betas': [0.9, 0.95], 'weight_decay': WEIGHT_DECAY,
                      'warmup_steps': warmup, 'schedule': 'linear warmup, cosine to 0.1 x peak', 'grad_clip': 1.0,
                      'router_aux_loss_coef': aux_coef or None},
        'torch_version': torch.__version__,
        'train_loss_last100': sum(tail) / len(tail),
        'val_loss': val, 'val_tokens_predicted': count,
        'data': 'data/tinyshakespeare.txt, first 90% of characters for training, last 10% held out',
    }
    print(f'{name}: val loss {val:.4f} nats/char over {count} tokens; wall {wall:.1f}s')
    return cfg, model, vocab, val_ids, record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True, choices=['transformer', 'mamba', 'retnet', 'moe'])
    ap.add_argument('--time', action='store_true', help='measure the step time and print the step count for the budget')
    ap.add_argument('--steps', type=int)
    ap.add_argument('--step-time', type=float, help='the measured step time to record in training.json')
    ap.add_argument('--out', help='output folder (default models/<model>)')
    a = ap.parse_args()
    setup()
    if a.time:
        measure(a.model)
        return
    if not a.steps:
        ap.error('--steps is required')
    out = a.out or os.path.join(REPO, 'models', a.model)
    cfg, model, vocab, val_ids, record = train(a.model, a.steps, out)
    record['step_time_s'] = a.step_time
    export(a.model, cfg, model, vocab, val_ids, out, record)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
