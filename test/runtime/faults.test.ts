// Faults of the device itself: buffer creation failing at each allocation of a
// load in turn, the device running out of memory, the device destroyed under a
// live model, and the process-wide device failing to open. After each, the
// ledger holds no byte the failure made, and a good model loads and generates
// the same text as before any failure.

import { afterEach, beforeAll, expect, it, vi } from 'vitest';
import { loadModel, type LM } from '../../src/lm';
import { Gpu } from '../../src/runtime/gpu';
import { DeviceLostError } from '../../src/runtime/errors';
import { describeGpu, useGpu } from '../helpers/gpu';
import { faultyGpu } from '../helpers/faults';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';

const FAMILIES = [
  ['transformer', tinyTransformer({ seed: 61, layers: 1 }).files],
  ['mamba', tinyMamba({ seed: 62, layers: 1 }).files],
] as const;
const OPTS = { weights: 'q4', maxContext: 64, prefillChunk: 16 } as const;

async function text(lm: LM): Promise<string> {
  let out = '';
  for await (const piece of lm.generate('the cat', { maxNewTokens: 6, temperature: 0.8, seed: 5 })) out += piece;
  return out;
}

describeGpu('device faults', () => {
  const gpu = useGpu();
  const expected = new Map<string, string>();

  beforeAll(async () => {
    for (const [name, files] of FAMILIES) {
      const lm = await loadModel(files, { ...OPTS, device: gpu() });
      expected.set(name, await text(lm));
      lm.dispose();
    }
  });

  afterEach(() => vi.restoreAllMocks());

  it.each(FAMILIES)('%s: createBuffer failing at each allocation of a load in turn leaves nothing in the ledger', async (name, files) => {
    // How many buffers a load makes.
    const probe = faultyGpu(gpu());
    (await loadModel(files, { ...OPTS, device: probe.gpu })).dispose();
    const loadBuffers = probe.created;
    expect(loadBuffers).toBeGreaterThan(15);
    for (let n = 1; n <= loadBuffers; n++) {
      const f = faultyGpu(gpu(), { throwAt: n });
      await expect(loadModel(files, { ...OPTS, device: f.gpu }), `allocation ${n}`).rejects.toThrow(`(injected at call ${n})`);
      expect(f.gpu.ledger.report(), `allocation ${n}`).toMatchObject({ total: 0, buffers: 0 });
    }
    // The device goes on: a good load generates what it did before any failure.
    const good = await loadModel(files, { ...OPTS, device: gpu() });
    expect(await text(good)).toBe(expected.get(name));
    good.dispose();
  });

  it.each(FAMILIES)('%s: out of memory at a buffer of the load is an Error with the sizes, and frees everything', async (name, files) => {
    for (const n of [1, 5, 12]) {
      const f = faultyGpu(gpu(), { oomAt: n });
      await expect(loadModel(files, { ...OPTS, device: f.gpu })).rejects.toThrow(/createBuffer '[\w.]+': the device ran out of memory for \d+ bytes, with \d+ bytes already allocated \(injected out-of-memory/);
      expect(f.gpu.ledger.report()).toMatchObject({ total: 0, buffers: 0 });
    }
    if (name !== 'transformer') return; // the generation loop is the same for every family
    // Out of memory for the first step's readback buffer: an Error at that step, and the model goes on.
    const probe = faultyGpu(gpu());
    (await loadModel(files, { ...OPTS, device: probe.gpu })).dispose();
    const f = faultyGpu(gpu(), { oomAt: probe.created + 1 });
    const lm = await loadModel(files, { ...OPTS, device: f.gpu });
    try {
      await expect(text(lm)).rejects.toThrow(/createBuffer 'prefill.readback': the device ran out of memory for 8 bytes/);
      expect(f.gpu.ledger.liveBuffers().map((b) => b.label)).not.toContain('prefill.readback');
      expect(await text(lm)).toBe(expected.get(name));
    } finally {
      lm.dispose();
    }
  });

  it('a device destroyed under a live model: every call says the device was lost, dispose frees all, the device is not reused', async () => {
    const own = await Gpu.create();
    const lm = await loadModel(FAMILIES[0][1], { ...OPTS, device: own });
    expect(await text(lm)).toBe(expected.get('transformer'));
    const snap = await lm.saveState();
    // Lost in the middle of a step: the pending readback says why, not an empty AbortError.
    const gen = lm.generate('the cat', { maxNewTokens: 4 });
    const step = gen.next();
    own.device.destroy();
    await expect(step).rejects.toThrow(DeviceLostError);
    await expect(step).rejects.toThrow(/the GPU device was lost \(destroyed: .*\); load the model again/);
    await expect(lm.logits([1, 2, 3])).rejects.toThrow(/logits: the GPU device was lost \(destroyed/);
    await expect(text(lm)).rejects.toThrow(/generate: the GPU device was lost/);
    await expect(lm.saveState()).rejects.toThrow(DeviceLostError);
    await expect(lm.restoreState(snap)).rejects.toThrow(DeviceLostError);
    expect(() => lm.reset()).toThrow(/reset: the GPU device was lost/);
    snap.dispose();
    lm.dispose();
    own.destroy();
    expect(own.ledger.report()).toMatchObject({ total: 0, buffers: 0 });
    await expect(loadModel(FAMILIES[0][1], { ...OPTS, device: own })).rejects.toThrow(/loadModel: the GPU device was lost/);
  });

  it('the shared device, once lost, is replaced by a fresh one at the next loadModel', async () => {
    const lm = await loadModel(FAMILIES[1][1], OPTS);
    const first = lm.model.gpu;
    expect(await text(lm)).toBe(expected.get('mamba'));
    first.device.destroy();
    await new Promise((r) => setTimeout(r, 10));
    await expect(text(lm)).rejects.toThrow(DeviceLostError);
    lm.dispose();
    expect(first.ledger.report().bytes).toMatchObject({ weights: 0, cache: 0, activations: 0 });
    const again = await loadModel(FAMILIES[1][1], OPTS);
    try {
      expect(again.model.gpu).not.toBe(first);
      expect(await text(again)).toBe(expected.get('mamba'));
    } finally {
      again.dispose();
    }
  });

  it('a device given to loadModel is the only one used; a shared device that fails to open is an Error, tried again next time', async () => {
    const create = vi.spyOn(Gpu, 'create');
    const lm = await loadModel(FAMILIES[0][1], { ...OPTS, device: gpu() });
    lm.dispose();
    expect(create).not.toHaveBeenCalled();
    // The shared device is lost, and a new one cannot be opened: a rejection of loadModel, never an unhandled one.
    const before = await loadModel(FAMILIES[0][1], OPTS);
    before.model.gpu.device.destroy();
    before.dispose();
    await new Promise((r) => setTimeout(r, 10));
    create.mockClear();
    create.mockRejectedValueOnce(new Error('no adapter (injected 1)')).mockRejectedValueOnce(new Error('no adapter (injected 2)'));
    await expect(loadModel(FAMILIES[0][1], OPTS)).rejects.toThrow('no adapter (injected 1)');
    await expect(loadModel(FAMILIES[0][1], OPTS)).rejects.toThrow('no adapter (injected 2)');
    const shared = await loadModel(FAMILIES[0][1], OPTS);
    expect(create).toHaveBeenCalledTimes(3);
    expect(shared.model.gpu.lost).toBe(null);
    shared.dispose();
  });
});
