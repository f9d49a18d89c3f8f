// The comparison's reports: a Markdown summary that leads with the ratios,
// and SVG line charts (one series per architecture), written by hand: a few
// polylines on log-scaled axes need no charting library, and the same
// strings go to files in Node and into the page in a browser.

import type { CompareResults, MemorySample, Sample } from './runner';
import { ARCHS, type Arch } from './presets';

/** What the run ran on and from, beside the results. */
export interface RunMeta {
  date: string;
  adapter: string;
  software: boolean;
  host: string;
  versions: Record<string, string>;
  commit: string | null;
}

export interface Series {
  name: string;
  points: [number, number][];
}

const COLORS: Record<string, string> = { transformer: '#1f77b4', mamba: '#d62728', retnet: '#2ca02c', moe: '#9467bd', 'onnxruntime-web webgpu': '#7f7f7f', 'onnxruntime-web wasm': '#bcbd22' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Round numbers for axis ticks: 1, 2, 5 times powers of ten within [lo, hi]. */
function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo / 1.0001 && v <= hi * 1.0001) ticks.push(v);
      }
    }
    return ticks.length >= 2 ? ticks : [lo, hi];
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const mult = [1, 2, 5, 10].find((m) => (hi - lo) / (m * step) <= 6) ?? 10;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / (mult * step)) * mult * step; v <= hi + 1e-9; v += mult * step) ticks.push(v);
  return ticks;
}

const label = (v: number) => (v >= 1e9 ? `${+(v / 1e9).toPrecision(3)}G` : v >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : v >= 1e3 ? `${+(v / 1e3).toPrecision(3)}k` : `${+v.toPrecision(3)}`);

/** A line chart: x on a log2 scale (token counts), y linear from 0 or log when it spans decades. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 640, H = 400, L = 70, R = 130, T = 40, B = 50;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && Number.isFinite(y) && y > 0);
  const head = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12" role="img" aria-label="${esc(title)}">`;
  const titleText = `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`;
  if (pts.length === 0) return `${head}${titleText}<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) * 2 : Math.max(...xs)];
  const yMax = Math.max(...ys);
  const yMin = Math.min(...ys);
  const logY = yMax / yMin > 50;
  const [y0, y1] = logY ? [yMin / 1.2, yMax * 1.2] : [0, yMax * 1.1];
  const px = (x: number) => L + ((Math.log2(x) - Math.log2(x0)) / (Math.log2(x1) - Math.log2(x0))) * (W - L - R);
  const py = (y: number) => (logY ? T + (1 - (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * (H - T - B) : T + (1 - (y - y0) / (y1 - y0)) * (H - T - B));
  const parts = [head, titleText];
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${H - B}" y2="${H - B + 5}" stroke="#999"/><text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${label(x)}</text>`);
  }
  for (const y of niceTicks(y0, y1, logY)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/><text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${label(y)}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${logY ? ' (log scale)' : ''}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[s.name] ?? ['#ff7f0e', '#8c564b', '#e377c2', '#17becf'][i % 4];
    const p = s.points.filter(([x, y]) => x > 0 && Number.isFinite(y) && y > 0).sort((a, b) => a[0] - b[0]);
    if (p.length === 0) return;
    parts.push(`<g class="series" data-series="${esc(s.name)}"><polyline fill="none" stroke="${color}" stroke-width="2" points="${p.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of p) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.name)}: ${label(y)} at ${x}</title></circle>`);
    parts.push(`</g><text x="${W - R + 10}" y="${T + 16 + i * 18}" fill="${color}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

const byArch = <T extends { arch: Arch }>(xs: T[]) => ARCHS.map((a) => [a, xs.filter((x) => x.arch === a)] as const).filter(([, v]) => v.length > 0);
const memTotal = (m: MemorySample) => m.bytes.weights + m.bytes.experts + m.bytes.state + m.bytes.workspace;

/** The three charts of a run, by file stem. */
export function charts(r: CompareResults): Record<'decode' | 'memory' | 'prefill', string> {
  // One line per architecture, and a point per peer column (its one prompt; decode at that context).
  const peers = (metric: Sample['metric']) => r.peers.map((p) => ({ name: `${p.runtime} ${p.ep}`, points: [[p.prompt, metric === 'prefill' ? p.peer.prefillTokensPerSecond : p.peer.decodeTokensPerSecond] as [number, number]] }));
  const series = (metric: Sample['metric']) => [...byArch(r.samples.filter((s) => s.metric === metric)).map(([a, v]) => ({ name: a, points: v.map((s) => [s.tokens, s.tokensPerSecond] as [number, number]) })), ...peers(metric)];
  return {
    decode: lineChart(`Decode tokens/s vs context (${r.preset})`, 'context (tokens)', 'tokens/s', series('decode')),
    prefill: lineChart(`Prefill tokens/s vs prompt length (${r.preset})`, 'prompt (tokens)', 'tokens/s', series('prefill')),
    memory: lineChart(`Device memory vs context (${r.preset})`, 'context (tokens)', 'bytes (weights, state, workspace)', byArch(r.memory).map(([a, v]) => ({ name: a, points: v.map((m) => [m.context, memTotal(m)] as [number, number]) }))),
  };
}

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));
const mib = (b: number) => (b / 2 ** 20).toFixed(b < 2 ** 20 ? 3 : 1);

function grid(title: string, rows: string[], cols: number[], cell: (arch: string, n: number) => string): string {
  return [`### ${title}`, '', `| | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---').join('|')}|`, ...rows.map((a) => `| ${a} | ${cols.map((n) => cell(a, n)).join(' | ')} |`), ''].join('\n');
}

/** The Markdown summary: ratios first, then the tables, then what failed. */
export function markdown(r: CompareResults, meta: RunMeta, chartFiles?: Record<string, string>): string {
  const archs = r.models.map((m) => m.arch);
  const sample = (metric: Sample['metric'], a: string, n: number) => r.samples.find((s) => s.metric === metric && s.arch === a && s.tokens === n);
  const failure = (stage: string, a: string, n: number) => r.failures.find((f) => f.arch === a && f.stage === stage && f.tokens === n);
  const cellOf = (metric: Sample['metric']) => (a: string, n: number) => {
    const s = sample(metric, a, n);
    return s ? `${fmt(s.tokensPerSecond)} ±${(100 * s.spread).toFixed(0)}%` : failure(metric, a, n) ? 'wall' : '-';
  };
  const contexts = [...r.options.contexts];
  const shortest = Math.min(...contexts);
  const lines: string[] = [];
  lines.push(`## ${r.preset}: ${meta.adapter} (${meta.date})`, '');
  lines.push(`Host ${meta.host}; ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}${meta.commit ? `; commit ${meta.commit.slice(0, 12)}` : ''}. ${meta.software ? 'A software adapter: compare ratios only.' : ''}`, '');
  lines.push(`Repeats ${r.options.repeats} (after a warm-up, median shown with the spread of the runs), decode ${r.options.decodeSteps} steps per run; copy bandwidth ${(r.copyBandwidthBytesPerSecond / 1e9).toFixed(2)} GB/s.`, '');
  if (r.peers.length) {
    lines.push('### Tessera and its peers', '');
    lines.push(`The preset's transformer, its weights at 4 bits in all (the peers: one ONNX graph with MatMulNBits, block 32; transformers.js runs it through its own generate()), the same prompt and greedy decode length, each after a warm-up; Tessera's tokens/s over the peer's.`, '');
    lines.push('| peer | prompt | decode steps | prefill ratio | decode ratio | Tessera prefill / decode tok/s | peer prefill / decode tok/s | compilations (modules, pipelines): Tessera, peer |', '|---|---|---|---|---|---|---|---|');
    for (const p of r.peers) {
      const c = (x: { shaderModules: number; pipelines: number } | null) => (x ? `${x.shaderModules}, ${x.pipelines}` : 'not counted');
      lines.push(`| ${p.runtime} ${p.peer.version} (${p.ep}) | ${p.prompt} | ${p.decodeSteps} | ${fmt(p.ratio.prefill)} | ${fmt(p.ratio.decode)} | ${fmt(p.tessera.prefillTokensPerSecond)} / ${fmt(p.tessera.decodeTokensPerSecond)} | ${fmt(p.peer.prefillTokensPerSecond)} / ${fmt(p.peer.decodeTokensPerSecond)} | ${c(p.tessera.compiles)}; ${c(p.peer.compiles)} |`);
    }
    lines.push('');
  }
  lines.push('### Ratios', '');
  lines.push(`| | ${contexts.filter((c) => c !== shortest).map((c) => `decode at ${c} / at ${shortest}`).join(' | ')} | ${contexts.map((c) => `roofline at ${c}`).join(' | ')} |`);
  lines.push(`|---|${contexts.filter((c) => c !== shortest).map(() => '---').join('|')}${contexts.filter((c) => c !== shortest).length ? '|' : ''}${contexts.map(() => '---').join('|')}|`);
  for (const a of archs) {
    const base = sample('decode', a, shortest)?.tokensPerSecond;
    const ratios = contexts.filter((c) => c !== shortest).map((c) => {
      const s = sample('decode', a, c);
      return s && base ? fmt(s.tokensPerSecond / base) : failure('decode', a, c) ? 'wall' : '-';
    });
    const roof = contexts.map((c) => {
      const x = r.roofline.find((q) => q.arch === a && q.context === c);
      return x ? `${(100 * x.fraction).toFixed(1)}%` : '-';
    });
    lines.push(`| ${a} | ${[...ratios, ...roof].join(' | ')} |`);
  }
  lines.push('');
  lines.push('### Models', '', '| | model | params | active | weights MiB | state per token | fixed state | workspace MiB |', '|---|---|---|---|---|---|---|---|');
  for (const m of r.models) {
    lines.push(`| ${m.arch} | ${m.what} (${m.modelType}) | ${fmt(m.params.total / 1e6)} M | ${fmt(m.params.activePerToken / 1e6)} M | ${mib(m.weightBytes)} | ${m.stateBytesPerToken !== null ? `${fmt(m.stateBytesPerToken / 1024)} KiB` : '-'} | ${m.stateBytesFixed !== null ? `${mib(m.stateBytesFixed)} MiB` : '-'} | ${mib(m.workspaceBytes)} |`);
  }
  lines.push('');
  lines.push(grid('Prefill tokens/s by prompt length', archs, [...r.options.prompts], cellOf('prefill')));
  lines.push(grid('Time to first token (ms) by prompt length', archs, [...r.options.prompts], (a, n) => fmt(sample('prefill', a, n)?.ttftMs)));
  lines.push(grid('Decode tokens/s by context', archs, contexts, cellOf('decode')));
  lines.push(grid('Device memory (MiB: weights + state + workspace; peak) by context', archs, contexts, (a, n) => {
    const m = r.memory.find((x) => x.arch === a && x.context === n);
    return m ? `${mib(memTotal(m))}; ${mib(m.bytes.peak)}` : failure('decode', a, n) ? 'wall' : '-';
  }));
  lines.push(grid('Decode: bytes read per token (MiB) and the roofline bound (tokens/s)', archs, contexts, (a, n) => {
    const x = r.roofline.find((q) => q.arch === a && q.context === n);
    return x ? `${mib(x.bytesPerToken)}; ${fmt(x.boundTokensPerSecond)}` : '-';
  }));
  for (const p of r.profiles) {
    lines.push(`### Profile: ${p.arch}, ${p.phase} (${p.phase === 'prefill' ? `${p.tokens} tokens` : `context ${p.tokens}`}), ${fmt(p.totalMs)} ms by ${p.method === 'timestamps' ? 'GPU timestamps' : 'host time around each dispatch'}`, '');
    lines.push('| op | calls | ms | share |', '|---|---|---|---|');
    for (const o of p.ops) lines.push(`| ${o.op} | ${o.calls} | ${fmt(o.ms)} | ${((100 * o.ms) / p.totalMs).toFixed(1)}% |`);
    lines.push('');
  }
  if (chartFiles) lines.push(...Object.entries(chartFiles).map(([k, f]) => `![${k}](${f})`), '');
  if (r.failures.length) {
    lines.push('### Not measured', '');
    for (const f of r.failures) lines.push(`- ${f.arch}, ${f.stage}${f.tokens ? ` at ${f.tokens}` : ''}: ${f.message}`);
    lines.push('');
  }
  return lines.join('\n');
}
