// Markdown tables as the docs tests compare them: by cell, so that Prettier's column padding (and
// the separator row's dashes) do not matter.

/** Cells of a markdown table row, trimmed; a pipe escaped as `\|` stays inside its cell. */
export function cells(row: string): string[] {
  return row
    .split(/(?<!\\)\|/)
    .slice(1, -1)
    .map((cell) => cell.trim());
}
