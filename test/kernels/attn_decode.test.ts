import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { ATTN_DECODE_CHUNK, attnDecode, attnDecodeConfig, attnDecodeScratchShape, attnDecodeThreads, attnDecodeWorkgroups } from '../../src/kernels/attn_decode';
import { attnPrefill } from '../../src/kernels/attn_prefill';
import { attention } from '../../src/reference/attention';
import { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// Scores in f32 (dot products over Dh <= 256, then exp2), f32 sums within a chunk and
// an f32 log-sum-exp merge over up to 16 chunks: errors stay near 1e-6 of the output's
// scale (values ~ N(0, 1)). atol covers outputs that average out near 0; rtol 1e-5 is
// the softmax-in-f32 bound.
const TOL = { atol: 1e-5, rtol: 1e-5 };
const EXTRA = 3; // cache rows past len, filled with NaN: reading one poisons the output
const CHUNK = ATTN_DECODE_CHUNK;
// Both forms run every case; attnDecode takes the adapter's (tunings.ts).
const FORMS: [string, typeof attnDecode][] = [['workgroup', attnDecodeWorkgroups], ['thread', attnDecodeThreads]];

interface Case { len: number; H: number; Hkv: number; Dh: number; scale?: number; rank2?: boolean }

/** A cache of maxT = len + EXTRA rows: the first `valid` rows random, the rest NaN. */
function cache(seed: number, maxT: number, valid: number, Hkv: number, Dh: number): Float32Array {
  const host = new Float32Array(maxT * Hkv * Dh).fill(NaN);
  host.set(randn(seed, valid * Hkv * Dh));
  return host;
}

/** The partials workspace for a cache of maxT rows, NaN-poisoned so stale or unwritten records show. */
const scratchFor = (g: Gpu, maxT: number, H: number, Dh: number): Tensor => poisoned(g, attnDecodeScratchShape(maxT, H, Dh), 'attn.scratch', 'f32', 'scratch');

async function runCase(g: Gpu, c: Case, seed: number, forms = FORMS): Promise<void> {
  for (const [form, decode] of forms) await runForm(g, c, seed, form, decode);
}

async function runForm(g: Gpu, c: Case, seed: number, form: string, decode: typeof attnDecode): Promise<void> {
  const maxT = c.len + EXTRA;
  const qShape = c.rank2 ? [c.H, c.Dh] : [1, c.H, c.Dh];
  const q = randn(seed, c.H * c.Dh, 2); // scale 2: peaked softmaxes, so the max subtraction matters
  const k = cache(seed + 1, maxT, c.len, c.Hkv, c.Dh);
  const v = cache(seed + 2, maxT, c.len, c.Hkv, c.Dh);
  const tq = g.upload(q, qShape, { label: 'q' });
  const tk = g.upload(k, [maxT, c.Hkv, c.Dh], { label: 'k' });
  const tv = g.upload(v, [maxT, c.Hkv, c.Dh], { label: 'v' });
  const scratch = scratchFor(g, maxT, c.H, c.Dh);
  const out = poisoned(g, qShape);
  const rec = new Recorder(g);
  decode(rec, tq, tk, tv, out, { len: c.len, scale: c.scale }, scratch);
  const got = await rec.submitAndRead(out);
  const want = attention(q, k, v, { T: 1, S: maxT, pos0: c.len - 1, H: c.H, Hkv: c.Hkv, Dh: c.Dh, scale: c.scale ?? 1 / Math.sqrt(c.Dh) });
  expectClose(got, want, TOL, `attn_decode (${form}) len ${c.len} H ${c.H}/${c.Hkv} Dh ${c.Dh}`);
  [tq, tk, tv, scratch, out].forEach((t) => t.dispose());
}

describeGpu('attn_decode', () => {
  const gpu = useGpu();

  it.each<[string, Case]>([
    ['len 1', { len: 1, H: 4, Hkv: 2, Dh: 16 }],
    ['len chunk-1', { len: CHUNK - 1, H: 4, Hkv: 2, Dh: 64 }],
    ['len chunk, MHA, q (H, Dh)', { len: CHUNK, H: 4, Hkv: 4, Dh: 16, rank2: true }],
    ['len chunk+1, H 3 / Hkv 1', { len: CHUNK + 1, H: 3, Hkv: 1, Dh: 128 }],
    ['len 3*chunk+5', { len: 3 * CHUNK + 5, H: 4, Hkv: 2, Dh: 64 }],
    ['len 7, Dh 128', { len: 7, H: 4, Hkv: 2, Dh: 128 }],
    ['Dh 256', { len: CHUNK + 70, H: 2, Hkv: 1, Dh: 256 }],
    ['Dh 80 (not a power of 2), custom scale', { len: 2 * CHUNK + 3, H: 2, Hkv: 2, Dh: 80, scale: 0.3 }],
    ['Dh 4, one head (key lanes split)', { len: CHUNK + 9, H: 1, Hkv: 1, Dh: 4 }],
    ['18 query heads per KV head (two head groups)', { len: 2 * CHUNK + 1, H: 18, Hkv: 1, Dh: 16 }],
  ])('%s matches the float64 reference', async (_name, c) => {
    await runCase(gpu(), c, c.len * 1013 + c.Dh * 7 + c.H);
  });

  // Head groups and lane layouts the shapes above miss (configs at 32 KiB: GB heads per workgroup,
  // TR row lanes, KL key lanes of the PV phase):
  it.each<[string, Case]>([
    // G 17 goes 9 + 8: the second group has a head slot past G; and 2 KV heads of 2 groups each (grid y = 4)
    ['G 17 in uneven head groups, 2 KV heads', { len: CHUNK + 40, H: 34, Hkv: 2, Dh: 16 }],
    // G 40: three groups 14 + 14 + 12, 4 score rows per thread
    ['G 40 in three head groups, one chunk', { len: 70, H: 40, Hkv: 1, Dh: 16 }],
    // G 3, Dh 16: TR 3, KL 10 key lanes on 120 of the 128 threads
    ['G 3, Dh 16 (key lanes do not fill the workgroup)', { len: 2 * CHUNK + 31, H: 6, Hkv: 2, Dh: 16 }],
    // Dh 12, one head: KL 42 on 126 threads, DH4 = 3
    ['Dh 12, one head per KV head (42 key lanes)', { len: 100, H: 2, Hkv: 2, Dh: 12 }],
    // Dh 80, G 8: TR 6, 2 rows per thread, the 2nd past GB for most
    ['Dh 80, G 8 (row lanes do not divide the heads)', { len: CHUNK + 5, H: 8, Hkv: 1, Dh: 80 }],
    // Dh 256, G 3: TR 2, RPT 2 with the 4th row slot empty; 16-key tiles
    ['Dh 256, G 3', { len: 2 * CHUNK + 1, H: 3, Hkv: 1, Dh: 256 }],
    // chunk ends on a tile boundary: the last chunk full, or exactly one tile
    ['len 2*chunk (the last chunk full)', { len: 2 * CHUNK, H: 4, Hkv: 2, Dh: 32 }],
    ['len chunk+32 (the last chunk one full tile)', { len: CHUNK + 32, H: 4, Hkv: 2, Dh: 32 }],
    ['two chunks merged into q (H, Dh)', { len: CHUNK + 3, H: 4, Hkv: 1, Dh: 16, rank2: true }],
  ])('%s matches the float64 reference', async (_name, c) => {
    await runCase(gpu(), c, 9000 + c.len * 1013 + c.Dh * 7 + c.H);
  });

  // The forms must differ in what they run, or the cases above check one form twice: the
  // thread form is attn_decode_threads.ts's two passes, the workgroup form attn_decode itself;
  // both merge several chunks with attn_decode_combine. Checked on the dispatches recorded.
  it.each([
    ['workgroup', attnDecodeWorkgroups, ['attn_decode'], ['attn_decode', 'attn_decode_combine']],
    ['thread', attnDecodeThreads, ['attn_decode_scores', 'attn_decode_values'], ['attn_decode_scores', 'attn_decode_values', 'attn_decode_combine']],
  ] as const)('the %s form records its own kernels, one chunk and several', async (_form, decode, oneChunk, chunks) => {
    const g = gpu();
    for (const [len, want] of [[CHUNK, oneChunk], [CHUNK + 1, chunks]] as const) {
      const [H, Hkv, Dh, maxT] = [4, 2, 16, len + EXTRA];
      const tq = g.upload(randn(len, H * Dh), [1, H, Dh], { label: 'q' });
      const tk = g.upload(cache(len + 1, maxT, len, Hkv, Dh), [maxT, Hkv, Dh], { label: 'k' });
      const tv = g.upload(cache(len + 2, maxT, len, Hkv, Dh), [maxT, Hkv, Dh], { label: 'v' });
      const scratch = scratchFor(g, maxT, H, Dh);
      const out = poisoned(g, [1, H, Dh]);
      const rec = new Recorder(g);
      decode(rec, tq, tk, tv, out, { len }, scratch);
      const { times } = await rec.submitProfiled();
      expect(times.map((t) => t.op), `len ${len}`).toEqual(want);
      [tq, tk, tv, scratch, out].forEach((t) => t.dispose());
    }
  });

  it('2048 keys with tiny heads (Dh 16, H 2)', async () => {
    await runCase(gpu(), { len: 2048, H: 2, Hkv: 1, Dh: 16 }, 4242);
    await runCase(gpu(), { len: 2048 - 1, H: 2, Hkv: 2, Dh: 16 }, 4243);
  });

  it.each(FORMS)('two layers in one recorder share one scratch (%s)', async (_form, decode) => {
    const g = gpu();
    const [H, Hkv, Dh, maxT] = [4, 2, 16, 3 * CHUNK + 8];
    const scratch = scratchFor(g, maxT, H, Dh);
    const rec = new Recorder(g);
    const layers = [3 * CHUNK + 5, 2 * CHUNK + 1].map((len, L) => {
      const q = randn(900 + L, H * Dh, 2);
      const k = cache(910 + L, maxT, len, Hkv, Dh);
      const v = cache(920 + L, maxT, len, Hkv, Dh);
      const t = {
        q: g.upload(q, [1, H, Dh], { label: `L${L}.q` }),
        k: g.upload(k, [maxT, Hkv, Dh], { label: `L${L}.k` }),
        v: g.upload(v, [maxT, Hkv, Dh], { label: `L${L}.v` }),
        out: poisoned(g, [1, H, Dh], `L${L}.out`),
      };
      decode(rec, t.q, t.k, t.v, t.out, { len }, scratch);
      return { t, want: attention(q, k, v, { T: 1, S: maxT, pos0: len - 1, H, Hkv, Dh, scale: 1 / Math.sqrt(Dh) }) };
    });
    await rec.submit();
    for (const [L, { t, want }] of layers.entries()) {
      expectClose(await g.read(t.out), want, TOL, `attn_decode layer ${L}`);
      Object.values(t).forEach((x) => x.dispose());
    }
    scratch.dispose();
  });

  // Prefill of N tokens and a decode of the last one see the same keys: their last
  // rows agree to f32 rounding of two summation orders (same tolerance as above).
  it.each(FORMS.flatMap(([form, decode]) => [1, CHUNK - 1, CHUNK + 1, 2 * CHUNK + 33].map((N) => [N, form, decode] as const)))('prefill of %i tokens agrees with decoding the last one (%s)', async (N, _form, decode) => {
    const g = gpu();
    const [H, Hkv, Dh] = [4, 2, 32];
    const maxT = N + EXTRA;
    const q = randn(3000 + N, N * H * Dh, 2);
    const tq = g.upload(q, [N, H, Dh], { label: 'q' });
    const tqLast = g.upload(q.subarray((N - 1) * H * Dh), [1, H, Dh], { label: 'q.last' });
    const tk = g.upload(cache(3100 + N, maxT, N, Hkv, Dh), [maxT, Hkv, Dh], { label: 'k' });
    const tv = g.upload(cache(3200 + N, maxT, N, Hkv, Dh), [maxT, Hkv, Dh], { label: 'v' });
    const scratch = scratchFor(g, maxT, H, Dh);
    const outP = poisoned(g, [N, H, Dh], 'out.prefill');
    const outD = poisoned(g, [1, H, Dh], 'out.decode');
    const rec = new Recorder(g);
    attnPrefill(rec, tq, tk, tv, outP, { pos0: 0 });
    decode(rec, tqLast, tk, tv, outD, { len: N }, scratch);
    await rec.submit();
    const prefillLast = (await g.read(outP)).subarray((N - 1) * H * Dh);
    const decoded = await g.read(outD);
    expect(decoded.every(Number.isFinite)).toBe(true);
    expectClose(decoded, prefillLast, TOL, `decode vs prefill, N ${N}`);
    [tq, tqLast, tk, tv, scratch, outP, outD].forEach((t) => t.dispose());
  });

  it("under WebGPU's default limits (16 KiB of workgroup memory): smaller tiles, same results", async () => {
    const g = await Gpu.create({ limits: 'default' });
    try {
      expect(g.device.limits.maxComputeWorkgroupStorageSize).toBe(16384);
      expect(attnDecodeConfig(8, 128, 16384)).not.toEqual(attnDecodeConfig(8, 128, gpu().device.limits.maxComputeWorkgroupStorageSize));
      await runCase(g, { len: 2 * CHUNK + 17, H: 8, Hkv: 1, Dh: 128 }, 6101);
      await runCase(g, { len: CHUNK + 2, H: 2, Hkv: 1, Dh: 256 }, 6102);
      // memory, not the 16-head cap, splits G 16 at Dh 256 here: groups of 6 + 6 + 4
      expect(attnDecodeConfig(16, 256, 16384).groups).toBe(3);
      await runCase(g, { len: CHUNK + 9, H: 32, Hkv: 2, Dh: 256 }, 6103);
    } finally {
      g.destroy();
    }
  });

  it('rejects bad shapes, a len past the context, a short scratch and a disposed cache', () => {
    const g = gpu();
    const maxT = 2 * CHUNK;
    const q = g.upload(randn(1, 4 * 16), [1, 4, 16], { label: 'q' });
    const k = g.empty([maxT, 2, 16], 'f32', 'k');
    const v = g.empty([maxT, 2, 16], 'f32', 'v');
    const out = g.empty([1, 4, 16], 'f32', 'out');
    const scratch = g.empty(attnDecodeScratchShape(maxT, 4, 16), 'f32', 'scratch');
    const small = g.empty(attnDecodeScratchShape(CHUNK, 4, 16), 'f32', 'small');
    const k32 = g.empty([maxT, 2, 32], 'f32', 'k32');
    const k3 = g.empty([maxT, 3, 16], 'f32', 'k3');
    const v3 = g.empty([maxT, 3, 16], 'f32', 'v3');
    const q2 = g.empty([2, 4, 16], 'f32', 'q2');
    const o8 = g.empty([1, 4, 8], 'f32', 'o8');
    const rec = new Recorder(g);
    const ok = { len: 5 };
    expect(() => attnDecode(rec, q, k32, v, out, ok, scratch)).toThrow(/attn_decode: kCache 'k32' \(256, 2, 32\) has head dim 32, but q 'q' \(1, 4, 16\) has Dh = 16/);
    expect(() => attnDecode(rec, q, k3, v3, out, ok, scratch)).toThrow(/attn_decode: q 'q' has H = 4 heads, not a multiple of the cache's Hkv = 3/);
    expect(() => attnDecode(rec, q, k, v3, out, ok, scratch)).toThrow(/attn_decode: vCache 'v3' has shape \(256, 3, 16\), expected \(256, 2, 16\)/);
    expect(() => attnDecode(rec, q, k, v, out, { len: maxT + 1 }, scratch)).toThrow(/attn_decode: len = 257 keys exceed the cache's context of 256/);
    expect(() => attnDecode(rec, q, k, v, out, { len: 0 }, scratch)).toThrow(/attn_decode: len must be a positive integer/);
    expect(() => attnDecode(rec, q, k, v, out, { len: CHUNK + 1 }, small)).toThrow(/attn_decode: scratch 'small' \(4, 1, 146\) f32 must be f32 \(H, chunks, Dh \+ 2 \+ 128\) = \(4, 2, 146\) or more chunks for len = 129; size it with attnDecodeScratchShape/);
    expect(() => attnDecode(rec, q2, k, v, out, ok, scratch)).toThrow(/attn_decode: q 'q2' has shape \(2, 4, 16\), expected \(1, H, Dh\) or \(H, Dh\)/);
    expect(() => attnDecode(rec, q, k, v, o8, ok, scratch)).toThrow(/attn_decode: out 'o8' has shape \(1, 4, 8\), expected \(1, 4, 16\)/);
    expect(() => attnDecode(rec, q, k, v, out, { len: 5, scale: -1 }, scratch)).toThrow(/attn_decode: scale must be a positive finite number/);
    k.dispose();
    expect(() => attnDecode(rec, q, k, v, out, ok, scratch)).toThrow(/attn_decode: tensor 'k' \(256, 2, 16\) was disposed/);
    [q, v, out, scratch, small, k32, k3, v3, q2, o8].forEach((t) => t.dispose());
  });
});
