import { expect, it } from 'vitest';
import { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { quantizeQ4, q4Bytes } from '../../src/runtime/q4';
import { copy } from '../../src/kernels/copy';
import { rmsnorm } from '../../src/kernels/rmsnorm';
import { describeGpu, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';

describeGpu('tensors and the memory ledger', () => {
  const gpu = useGpu();

  it('uploads and reads back every dtype exactly', async () => {
    const g = gpu();
    const f = randn(1, 37);
    const i = Int32Array.from({ length: 9 }, (_, k) => k * -7 + 3);
    const u = Uint32Array.from({ length: 5 }, (_, k) => 0xfffffff0 + k);
    const tf = g.upload(f, [37], { label: 'f' });
    const ti = g.upload(i, [3, 3], { label: 'i' });
    const tu = g.upload(u, [5], { label: 'u' });
    expect(await g.read(tf)).toEqual(f);
    expect(await g.read(ti)).toEqual(i);
    expect(await g.read(tu)).toEqual(u);
    [tf, ti, tu].forEach((t) => t.dispose());
  });

  it('counts bytes per category with peaks, and disposing returns to where it was', () => {
    const g = gpu();
    const before = g.ledger.report();
    const w = g.upload(new Float32Array(1000), [1000], { label: 'w', category: 'weights' });
    const c = g.empty([64, 8], 'f32', 'kv', 'cache');
    const q = g.uploadQ4(quantizeQ4(randn(2, 16 * 64), 16, 64, 32), 'q', 'weights');
    const mid = g.ledger.report();
    expect(mid.bytes.weights - before.bytes.weights).toBe(4000 + q.byteLength);
    expect(q.byteLength).toBeGreaterThanOrEqual(q4Bytes(16, 64, 32));
    expect(mid.bytes.cache - before.bytes.cache).toBe(64 * 8 * 4);
    expect(mid.buffers - before.buffers).toBe(3);
    w.dispose();
    c.dispose();
    q.dispose();
    q.dispose(); // twice is harmless
    const after = g.ledger.report();
    expect(after.bytes).toEqual(before.bytes);
    expect(after.total).toBe(before.total);
    expect(after.peak.weights).toBeGreaterThanOrEqual(4000 + q.byteLength);
    expect(after.peakTotal).toBeGreaterThanOrEqual(before.total + 4000 + 2048 + q.byteLength);
  });

  it('views share the buffer and own nothing', async () => {
    const g = gpu();
    const data = randn(3, 128);
    const t = g.upload(data, [2, 64], { label: 't' });
    const v = t.view([64], 64, 'row1');
    expect(Array.from(await g.read(v))).toEqual(Array.from(data.subarray(64)));
    v.dispose();
    expect(t.disposed).toBe(false);
    expect(() => t.view([65], 64)).toThrow(/view: \(65\) at element 64 does not fit in 't' \(2, 64\)/);
    t.dispose();
    expect(v.disposed).toBe(true);
  });

  it('refuses bad uploads and reuse after dispose, naming the tensor', async () => {
    const g = gpu();
    expect(() => g.upload(new Float32Array(5), [2, 3], { label: 'x' })).toThrow(/upload 'x': 5 values do not fill shape \(2, 3\)/);
    expect(() => g.upload(new Float32Array(6), [2, 3], { label: 'x', dtype: 'i32' })).toThrow(/Float32Array cannot be uploaded as i32/);
    expect(() => g.empty([0, 3], 'f32', 'z')).toThrow(/empty 'z': shape \(0, 3\)/);
    const t = g.upload(new Float32Array(4), [4], { label: 'gone' });
    t.dispose();
    await expect(g.read(t)).rejects.toThrow(/read: tensor 'gone' \(4\) was disposed/);
    expect(() => g.write(t, new Float32Array(4))).toThrow(/write: tensor 'gone'/);
  });

  it('a recorder submits once and cannot be reused', async () => {
    const g = gpu();
    const a = g.upload(randn(4, 64), [64], { label: 'a' });
    const b = g.empty([64], 'f32', 'b');
    const rec = new Recorder(g);
    copy(rec, a, b);
    expect(rec.dispatchCount).toBe(1);
    expect(Array.from(await rec.submitAndRead(b))).toEqual(Array.from(await g.read(a)));
    expect(() => copy(rec, a, b)).toThrow(/recorder 'step' was already submitted/);
    a.dispose();
    b.dispose();
  });

  it('a recorder does its writes in order with its dispatches, so one recorder can hold several steps', async () => {
    const g = gpu();
    const [x1, x2] = [randn(5, 64), randn(6, 64)];
    const input = g.empty([64], 'f32', 'input');
    const [b, c] = [g.empty([64], 'f32', 'b'), g.empty([64], 'f32', 'c')];
    const rec = new Recorder(g);
    rec.write(input, x1);
    copy(rec, input, b); // sees x1, though x2 is written into the same buffer later in the recorder
    rec.write(input, x2);
    copy(rec, input, c);
    await rec.submit();
    expect(Array.from(await g.read(b))).toEqual(Array.from(x1));
    expect(Array.from(await g.read(c))).toEqual(Array.from(x2));
    expect(() => new Recorder(g).write(input, new Float32Array(3))).toThrow(/write 'input': 3 values for shape \(64\)/);
    [input, b, c].forEach((t) => t.dispose());
  });

  it('a profiled submit times each dispatch (GPU timestamps, or the host around each one) and computes the same results', async () => {
    const g = gpu();
    const before = g.ledger.report().total;
    for (const method of [undefined, 'host'] as const) {
      const [x1, x2] = [randn(7, 64), randn(8, 64)];
      const input = g.empty([64], 'f32', 'input');
      const [b, c] = [g.empty([64], 'f32', 'b'), g.empty([64], 'f32', 'c')];
      const rec = new Recorder(g, 'profiled');
      rec.write(input, x1);
      copy(rec, input, b);
      rec.write(input, x2);
      copy(rec, input, c);
      const { method: used, times } = await rec.submitProfiled({ method });
      expect(used).toBe(method ?? (g.report.features.timestampQuery ? 'timestamps' : 'host'));
      expect(times.map((t) => t.op)).toEqual(['copy', 'copy']);
      for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(Array.from(await g.read(b))).toEqual(Array.from(x1));
      expect(Array.from(await g.read(c))).toEqual(Array.from(x2));
      expect(() => copy(rec, input, b)).toThrow(/already submitted/);
      [input, b, c].forEach((t) => t.dispose());
    }
    expect(g.ledger.report().total).toBe(before); // the query buffers are freed
  });

  it('readback staging buffers are counted in the ledger while they live', async () => {
    const g = gpu();
    const t = g.upload(randn(7, 4096), [4096], { label: 'big' });
    g.ledger.resetPeak();
    const before = g.ledger.report();
    expect(Array.from(await g.read(t))).toEqual(Array.from(randn(7, 4096)));
    const after = g.ledger.report();
    expect(after.peak.scratch - before.bytes.scratch).toBe(4096 * 4);
    expect(after.bytes).toEqual(before.bytes);
    t.dispose();
  });
});

describeGpu('a device with WebGPU default limits', () => {
  it('a tensor over the binding limit is refused with the op and the shapes', async () => {
    const g = await Gpu.create({ limits: 'default' });
    try {
      const limit = g.maxBinding;
      const rows = Math.floor(limit / 4 / 1024) + 1; // just over the limit
      const x = g.empty([rows, 1024], 'f32', 'big');
      const w = g.empty([1024], 'f32', 'w');
      const out = g.empty([rows, 1024], 'f32', 'out');
      const rec = new Recorder(g);
      expect(() => rmsnorm(rec, x, w, out, 1e-5)).toThrow(new RegExp(`rmsnorm: 'big' \\(${rows}, 1024\\) needs \\d+ bytes in one binding, over this device's limit of ${limit}`));
      [x, w, out].forEach((t) => t.dispose());
      expect(g.ledger.report().bytes.activations).toBe(0);
    } finally {
      g.destroy();
    }
  });
});
