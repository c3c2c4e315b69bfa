/**
 * A hand-written SVG chart: one horizontal bar per contender and workload, its length the ratio of its
 * median to the workload's baseline (1.0 = as fast as the baseline), with peak-cache's targets marked.
 *
 * @module
 */
import { type BenchResults, RAW_TARGETS, ratioToBaseline, summariseFlush } from './report.ts';

/** One bar. */
interface Bar {
  readonly label: string;
  readonly ratio: number;
  readonly kind: 'peak' | 'peer' | 'info';
  /** peak-cache's target ratio on this workload, drawn as a tick. */
  readonly target?: number;
  readonly failed?: string;
}

/** One group of bars: a workload. */
interface Group {
  readonly title: string;
  readonly bars: Bar[];
}

const TARGETS: Readonly<Record<string, number>> = {
  'get-256': RAW_TARGETS.get,
  'set-256': RAW_TARGETS.set,
  'mset-ttl-100': 1,
};

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function groups(results: BenchResults): Group[] {
  const out: Group[] = [];
  for (const w of results.workloads) {
    const base = w.cells.find((c) => c.contender === w.workload.baseline);
    const bars: Bar[] = [];
    for (const cell of w.cells) {
      if (cell.contender === w.workload.baseline) continue;
      const kind = cell.contender.startsWith('peak')
        ? 'peak'
        : cell.label.includes('(info)')
          ? 'info'
          : 'peer';
      const target = kind === 'peak' ? TARGETS[w.workload.id] : undefined;
      bars.push({
        label: cell.label,
        ratio: ratioToBaseline(w, cell.contender),
        kind,
        ...(target === undefined ? {} : { target }),
        ...(cell.runs.length === 0 ? { failed: 'failed' } : {}),
      });
    }
    out.push({
      title: `${w.workload.title} (vs ${(base?.label ?? w.workload.baseline).replace(' (baseline)', '')})`,
      bars,
    });
  }
  const flush = results.flush;
  if (flush) {
    const base = summariseFlush(flush.cells.find((c) => c.contender === flush.baseline));
    const bars = flush.cells
      .filter((c) => c.contender !== flush.baseline)
      .map((cell): Bar => {
        const s = summariseFlush(cell);
        return {
          label: cell.label,
          ratio: s && base ? s.median / base.median : Number.NaN,
          kind: 'peak',
          target: 0.8,
          ...(s ? {} : { failed: 'failed' }),
        };
      });
    out.push({
      title: `flushTenant, ${flush.totalKeys.toLocaleString('en-US')}-key keyspace (vs raw SCAN+UNLINK loop)`,
      bars,
    });
  }
  return out;
}

/**
 * Render the ratio chart of `results` as a standalone SVG document.
 */
export function renderChart(results: BenchResults): string {
  const all = groups(results);
  const ratios = all.flatMap((g) => g.bars.map((b) => b.ratio)).filter(Number.isFinite);
  const cap = Math.min(4, Math.max(1.5, Math.ceil(Math.max(1, ...ratios) * 2) / 2));
  const width = 860;
  const labelW = 250;
  const plotX = labelW + 10;
  const plotW = 480;
  const rowH = 18;
  const x = (ratio: number) => plotX + (Math.min(ratio, cap) / cap) * plotW;
  const parts: string[] = [];
  let y = 64;
  for (const group of all) {
    parts.push(
      `<text x="12" y="${y + 13}" font-weight="bold" font-size="13">${escapeXml(group.title)}</text>`,
    );
    y += rowH + 2;
    for (const bar of group.bars) {
      const fill = bar.kind === 'peak' ? '#2563eb' : bar.kind === 'info' ? '#d1d5db' : '#9ca3af';
      parts.push(
        `<text x="${labelW}" y="${y + 13}" text-anchor="end" font-size="12">${escapeXml(bar.label)}</text>`,
      );
      if (bar.failed || !Number.isFinite(bar.ratio)) {
        parts.push(
          `<text x="${plotX + 4}" y="${y + 13}" font-size="12" fill="#b91c1c">${bar.failed ?? 'n/a'}</text>`,
        );
      } else {
        const w = Math.max(1, x(bar.ratio) - plotX);
        parts.push(
          `<rect x="${plotX}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${fill}"/>`,
        );
        const over = bar.ratio > cap ? ' ▸' : '';
        parts.push(
          `<text x="${(plotX + w + 5).toFixed(1)}" y="${y + 13}" font-size="12">${bar.ratio.toFixed(2)}x${over}</text>`,
        );
      }
      if (bar.target !== undefined) {
        const tx = x(bar.target).toFixed(1);
        parts.push(
          `<line x1="${tx}" x2="${tx}" y1="${y}" y2="${y + rowH - 1}" stroke="#dc2626" stroke-width="2"/>`,
        );
      }
      y += rowH;
    }
    y += 8;
  }
  const plotTop = 56;
  const axis: string[] = [];
  for (let t = 0; t <= cap + 1e-9; t += 0.5) {
    const tx = x(t).toFixed(1);
    axis.push(
      `<line x1="${tx}" x2="${tx}" y1="${plotTop}" y2="${y}" stroke="${t === 1 ? '#111827' : '#e5e7eb'}" stroke-width="1"${t === 1 ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${tx}" y="${y + 14}" text-anchor="middle" font-size="11" fill="#374151">${t.toFixed(1)}x</text>`,
    );
  }
  const m = results.machine;
  const height = y + 44;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">peak-cache benchmark: throughput relative to the baseline (1.0x = baseline)</text>`,
    `<text x="12" y="40" font-size="11" fill="#374151">${escapeXml(`${m.date.slice(0, 10)} · ${m.cpuModel} · ${m.cores} cores · Node ${m.node} · Redis ${m.redis} · median of ${results.config.rounds} rounds`)}</text>`,
    ...axis,
    ...parts,
    `<text x="12" y="${y + 34}" font-size="11" fill="#374151">Blue: peak-cache. Grey: other libraries. Light: informational variants. Red tick: peak-cache's target. Bars capped at ${cap}x.</text>`,
    '</svg>',
    '',
  ].join('\n');
}
