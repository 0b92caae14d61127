/** One line of the results table: a figure, what it is measured against, and whether it meets its target. */
export interface Row {
  figure: string;
  value: number;
  unit: string;
  /** What the value is compared to (another figure of the same run, or a bound); null when it stands alone. */
  ceiling: number | null;
  ceilingLabel: string;
  /** value / ceiling. */
  ratio: number | null;
  target: string;
  /** null: reported, no target. */
  pass: boolean | null;
}

export function row(
  figure: string,
  value: number,
  unit: string,
  against: { ceiling: number; label: string } | null,
  target: string,
  passes: ((value: number, ratio: number | null) => boolean) | null,
): Row {
  const ratio = against && against.ceiling > 0 ? value / against.ceiling : null;
  return {
    figure,
    value,
    unit,
    ceiling: against?.ceiling ?? null,
    ceilingLabel: against?.label ?? '',
    ratio,
    target,
    pass: passes ? Number.isFinite(value) && passes(value, ratio) : null,
  };
}

function number(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The table as Markdown, columns padded so it also reads well in a terminal. */
export function markdownTable(rows: Row[]): string {
  const header = ['figure', 'value', 'ceiling', 'ratio', 'target', 'pass'];
  const cells = rows.map((r) => [
    r.figure,
    `${number(r.value)} ${r.unit}`.trim(),
    r.ceiling === null ? '—' : `${number(r.ceiling)} (${r.ceilingLabel})`,
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.pass === null ? 'reported' : r.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => `| ${c.map((s, i) => s.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
