import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { attnPrefill, attnPrefillThreads, attnPrefillTile, attnPrefillWorkgroups } from '../../src/kernels/attn_prefill';
import { attention } from '../../src/reference/attention';
import { Gpu } from '../../src/runtime/gpu';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// Scores in f32 (dot products over Dh <= 256, then exp2) and f32 running sums over
// up to 2048 keys: the worst error seen is 2.7e-6 (T 2048), with outputs ~ N(0, 1).
// atol covers outputs that average out near 0; rtol 1e-5 is the softmax-in-f32 bound.
const TOL = { atol: 1e-5, rtol: 1e-5 };
const EXTRA = 3; // cache rows past the valid ones, filled with NaN: reading one poisons the output
// Both forms run every case; attnPrefill takes the adapter's (tunings.ts).
const FORMS: [string, typeof attnPrefill][] = [['workgroup', attnPrefillWorkgroups], ['thread', attnPrefillThreads]];

interface Case { T: number; pos0: number; H: number; Hkv: number; Dh: number; scale?: number }

/** A cache of maxT = pos0 + T + EXTRA rows: valid rows random, the rest NaN. */
function cache(seed: number, c: Case): { host: Float32Array; maxT: number } {
  const maxT = c.pos0 + c.T + EXTRA;
  const row = c.Hkv * c.Dh;
  const host = new Float32Array(maxT * row).fill(NaN);
  host.set(randn(seed, (c.pos0 + c.T) * row));
  return { host, maxT };
}

async function runCase(g: Gpu, c: Case, seed: number, forms = FORMS): Promise<void> {
  for (const [form, prefill] of forms) await runForm(g, c, seed, form, prefill);
}

async function runForm(g: Gpu, c: Case, seed: number, form: string, prefill: typeof attnPrefill): Promise<void> {
  const q = randn(seed, c.T * c.H * c.Dh, 2); // scale 2: peaked softmaxes, so the max subtraction matters
  const k = cache(seed + 1, c);
  const v = cache(seed + 2, c);
  const tq = g.upload(q, [c.T, c.H, c.Dh], { label: 'q' });
  const tk = g.upload(k.host, [k.maxT, c.Hkv, c.Dh], { label: 'k' });
  const tv = g.upload(v.host, [v.maxT, c.Hkv, c.Dh], { label: 'v' });
  const out = poisoned(g, [c.T, c.H, c.Dh]);
  const rec = new Recorder(g);
  prefill(rec, tq, tk, tv, out, { pos0: c.pos0, scale: c.scale });
  const got = await rec.submitAndRead(out);
  const want = attention(q, k.host, v.host, { ...c, S: k.maxT, scale: c.scale ?? 1 / Math.sqrt(c.Dh) });
  expectClose(got, want, TOL, `attn_prefill (${form}) T ${c.T} pos0 ${c.pos0} H ${c.H}/${c.Hkv} Dh ${c.Dh}`);
  [tq, tk, tv, out].forEach((t) => t.dispose());
}

describeGpu('attn_prefill', () => {
  const gpu = useGpu();
  const tile = (Dh: number) => attnPrefillTile(Dh, gpu().device.limits.maxComputeWorkgroupStorageSize);

  it.each<[string, Case]>([
    ['one token', { T: 1, pos0: 0, H: 4, Hkv: 2, Dh: 16 }],
    ['7 tokens', { T: 7, pos0: 0, H: 4, Hkv: 2, Dh: 64 }],
    ['64 tokens, MHA', { T: 64, pos0: 0, H: 2, Hkv: 2, Dh: 16 }],
    ['65 tokens, H 3 / Hkv 1', { T: 65, pos0: 0, H: 3, Hkv: 1, Dh: 16 }],
    ['continuation, pos0 > 0', { T: 5, pos0: 27, H: 4, Hkv: 2, Dh: 64 }],
    ['continuation of one token', { T: 1, pos0: 40, H: 3, Hkv: 1, Dh: 16 }],
    ['Dh 128', { T: 19, pos0: 6, H: 4, Hkv: 2, Dh: 128 }],
    ['Dh 256', { T: 9, pos0: 3, H: 2, Hkv: 1, Dh: 256 }],
    ['Dh 80 (not a power of 2), custom scale', { T: 11, pos0: 2, H: 2, Hkv: 2, Dh: 80, scale: 0.3 }],
    ['Dh 4 (key lanes split)', { T: 13, pos0: 1, H: 2, Hkv: 1, Dh: 4 }],
  ])('%s matches the float64 reference', async (_name, c) => {
    await runCase(gpu(), c, c.T * 1009 + c.pos0 * 31 + c.Dh * 7 + c.H);
  });

  // A tile holds BQ rows of one KV head, its (token, query head) pairs: T * H / Hkv rows.
  it.each([8, 16, 20, 64, 80, 128, 256])('Dh %i: rows and pos0 one off the tile sizes', async (Dh) => {
    const { BQ, BK } = tile(Dh);
    const cases: Case[] = [
      { T: BQ - 1, pos0: 0, H: 2, Hkv: 2, Dh },
      { T: BQ, pos0: BK, H: 2, Hkv: 2, Dh },
      { T: BQ + 1, pos0: BK + 1, H: 1, Hkv: 1, Dh },
      { T: BQ / 2 + 1, pos0: 2 * BK - 1, H: 4, Hkv: 2, Dh },
      { T: 2 * BQ + 1, pos0: BK - 1, H: 4, Hkv: 2, Dh },
    ];
    for (const [n, c] of cases.entries()) await runCase(gpu(), c, 5000 + Dh * 10 + n);
  });

  // Lane layouts the shapes above miss (BQ 32, BK 32 at 32 KiB; TR row lanes, KL key lanes of the PV phase):
  // Dh 8: two key lanes whose partial sums merge through workgroup memory;
  // Dh 12: DH4 = 3 does not divide the 128 threads, so 32 of them sit out the PV phase;
  // Dh 20: TR = 25 row lanes do not divide BQ = 32, so each thread has 2 rows and the 2nd is past the tile for most.
  it.each<[string, Case]>([
    ['Dh 8 (two key lanes), G 4, 5 tiles', { T: 37, pos0: 5, H: 4, Hkv: 1, Dh: 8 }],
    ['Dh 12 (DH4 does not divide the workgroup)', { T: 21, pos0: 4, H: 6, Hkv: 2, Dh: 12 }],
    ['Dh 20 (row lanes do not divide BQ)', { T: 17, pos0: 33, H: 2, Hkv: 1, Dh: 20 }],
  ])('%s matches the float64 reference', async (_name, c) => {
    await runCase(gpu(), c, 7000 + c.T * 1009 + c.pos0 * 31 + c.Dh * 7 + c.H);
  });

  // Grouped-query rows: row = t * G + g, so a tile boundary can fall inside a token's heads
  // (G not dividing BQ), and with G > BQ a token spans several tiles; several KV heads
  // (grid y > 0) and pos0 > 0 together.
  it.each<[string, Case]>([
    ['G 3, 2 KV heads, tile boundaries inside a token, pos0 > 0', { T: 23, pos0: 19, H: 6, Hkv: 2, Dh: 16 }],
    ['G 5, 3 KV heads, Dh 64', { T: 13, pos0: 50, H: 15, Hkv: 3, Dh: 64 }],
    ['G 40 > BQ: one token spans several tiles', { T: 3, pos0: 7, H: 40, Hkv: 1, Dh: 16 }],
    ['G 8, one token of a long context', { T: 1, pos0: 70, H: 16, Hkv: 2, Dh: 16 }],
  ])('%s matches the float64 reference', async (_name, c) => {
    await runCase(gpu(), c, 8000 + c.T * 1009 + c.pos0 * 31 + c.Dh * 7 + c.H);
  });

  it('2048 keys with tiny heads (Dh 16, H 2)', async () => {
    await runCase(gpu(), { T: 2048, pos0: 0, H: 2, Hkv: 1, Dh: 16 }, 777);
    await runCase(gpu(), { T: 33, pos0: 2015, H: 2, Hkv: 2, Dh: 16 }, 778);
  });

  it("under WebGPU's default limits (16 KiB of workgroup memory): smaller tiles, same results", async () => {
    const g = await Gpu.create({ limits: 'default' });
    try {
      expect(g.device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
      expect(attnPrefillTile(128, 16384)).not.toEqual(tile(128));
      await runCase(g, { T: 21, pos0: 9, H: 4, Hkv: 2, Dh: 128 }, 6001);
      await runCase(g, { T: 10, pos0: 3, H: 2, Hkv: 1, Dh: 256 }, 6002);
      // BQ 16 here: 6 row lanes, 3 rows per thread (the 3rd past the tile for 2 lanes), G 3 across tile boundaries
      await runCase(g, { T: 19, pos0: 30, H: 6, Hkv: 2, Dh: 80 }, 6003);
    } finally {
      g.destroy();
    }
  });

  it('rejects bad shapes, a cache too short for the context, and a disposed cache', () => {
    const g = gpu();
    const q = g.upload(randn(1, 3 * 4 * 16), [3, 4, 16], { label: 'q' });
    const k = g.empty([8, 2, 16], 'f32', 'k');
    const v = g.empty([8, 2, 16], 'f32', 'v');
    const out = g.empty([3, 4, 16], 'f32', 'out');
    const k32 = g.empty([8, 2, 32], 'f32', 'k32');
    const k3 = g.empty([8, 3, 16], 'f32', 'k3');
    const v3 = g.empty([8, 3, 16], 'f32', 'v3');
    const q6 = g.upload(randn(3, 3 * 4 * 6), [3, 4, 6], { label: 'q6' });
    const qi = g.empty([3, 4, 16], 'i32', 'qi');
    const o8 = g.empty([3, 4, 8], 'f32', 'o8');
    const k6 = g.empty([8, 2, 6], 'f32', 'k6');
    const o6 = g.empty([3, 4, 6], 'f32', 'o6');
    const rec = new Recorder(g);
    expect(() => attnPrefill(rec, q, k32, v, out, { pos0: 0 })).toThrow(/attn_prefill: kCache 'k32' \(8, 2, 32\) has head dim 32, but q 'q' \(3, 4, 16\) has Dh = 16/);
    expect(() => attnPrefill(rec, q, k3, v3, out, { pos0: 0 })).toThrow(/attn_prefill: q 'q' has H = 4 heads, not a multiple of the cache's Hkv = 3/);
    expect(() => attnPrefill(rec, q, k, v3, out, { pos0: 0 })).toThrow(/attn_prefill: vCache 'v3' has shape \(8, 3, 16\), expected \(8, 2, 16\)/);
    expect(() => attnPrefill(rec, q, k, v, out, { pos0: 6 })).toThrow(/attn_prefill: pos0 \+ T = 6 \+ 3 = 9 positions exceed the cache's context of 8/);
    expect(() => attnPrefill(rec, q, k, v, o8, { pos0: 0 })).toThrow(/attn_prefill: out 'o8' has shape \(3, 4, 8\), expected \(3, 4, 16\)/);
    expect(() => attnPrefill(rec, qi, k, v, out, { pos0: 0 })).toThrow(/attn_prefill: q 'qi' \(3, 4, 16\) must be f32 or f16, got i32/);
    expect(() => attnPrefill(rec, q, k, v, out, { pos0: -1 })).toThrow(/attn_prefill: pos0 must be a non-negative integer/);
    expect(() => attnPrefill(rec, q, k, v, out, { pos0: 0, scale: NaN })).toThrow(/attn_prefill: scale must be a positive finite number/);
    expect(() => attnPrefill(rec, q, k, v, q, { pos0: 0 })).toThrow(/attn_prefill: out 'q' shares a buffer with 'q'/);
    expect(() => attnPrefill(rec, q6, k6, k6, o6, { pos0: 0 })).toThrow(/attn_prefill: head dim Dh = 6 is not supported: it must be a multiple of 4, at most 256/);
    v.dispose();
    expect(() => attnPrefill(rec, q, k, v, out, { pos0: 0 })).toThrow(/attn_prefill: tensor 'v' \(8, 2, 16\) was disposed/);
    [q, k, out, k32, k3, v3, q6, qi, o8, k6, o6].forEach((t) => t.dispose());
  });
});
