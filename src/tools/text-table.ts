// The plain-text tables the tools print (demo, verify, bench): columns padded to their widest cell.

export interface TableOptions {
  /** Right-align every column but the first (figures); otherwise left-align all and trim line ends. */
  readonly figures?: boolean;
}

/** The lines of a table: header, a rule, then the rows. */
export function textTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: TableOptions = {}
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => {
    const padded = cells.map((c, i) =>
      options.figures && i > 0 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)
    );
    return options.figures ? padded.join('  ') : padded.join('  ').trimEnd();
  };
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
