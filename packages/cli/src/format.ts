/**
 * Plain-text output for a terminal: aligned columns, long cells shortened, and no control
 * character from the data, which could move the cursor, recolour or clear the screen, set
 * the window title (ESC sequences, the 8-bit CSI) or fake a line of output (a line break).
 */

/** C0 (including ESC), DEL and C1 (including the 8-bit CSI, 0x9b). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeControl(char: string): string {
  return NAMED[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/** `text` on one line with every control character written as an escape: `\x1b`, `\n`, `\x9b`. */
export function printable(text: string): string {
  return text.replace(CONTROL, escapeControl);
}

/** `text` with every control character escaped except the line breaks between its lines. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

/**
 * JSON text with DEL and C1 escaped too (`\u009b`), which JSON.stringify leaves as they are;
 * it escapes the C0 characters itself. The text parses back to the same value.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** One line of at most `max` characters: whitespace runs become one space, control characters escapes. */
export function shorten(text: string, max: number): string {
  const oneLine = printable(text.replace(/\s+/g, ' '));
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}

/** Rows under a header, columns padded to their widest cell; every cell printable. */
export function table(header: string[], cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `key  value` lines, keys aligned; every value printable. */
export function fields(entries: [string, string][]): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${printable(v)}`).join('\n');
}
