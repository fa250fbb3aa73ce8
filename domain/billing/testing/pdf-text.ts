/** Test helper: the text a pdfkit document shows with its standard fonts, one string per
 * text-showing operator (`TJ`/`Tj`), from every content stream (inflated when deflated). Not a PDF
 * parser: enough to check what an invoice PDF says. */
import zlib from 'node:zlib';

export function pdfTextRuns(pdf: Buffer): string[] {
  const raw = pdf.toString('latin1');
  const runs: string[] = [];
  for (let at = raw.indexOf('stream\n'); at !== -1; at = raw.indexOf('stream\n', at + 7)) {
    if (raw.slice(at - 3, at) === 'end') continue;
    const dict = raw.slice(raw.lastIndexOf('<<', at), at);
    const length = Number(/\/Length (\d+)/.exec(dict)?.[1] ?? -1);
    if (length < 0) continue;
    const start = at + 'stream\n'.length;
    let data: Buffer = pdf.subarray(start, start + length);
    if (dict.includes('/FlateDecode')) data = zlib.inflateSync(data);
    const content = data.toString('latin1');
    for (const m of content.matchAll(/\[((?:<[0-9a-fA-F]*>|\((?:\\.|[^\\)])*\)|[-\d.\s])*)\]\s*TJ|(<[0-9a-fA-F]*>|\((?:\\.|[^\\)])*\))\s*Tj/g)) {
      const parts = (m[1] ?? m[2]).match(/<[0-9a-fA-F]*>|\((?:\\.|[^\\)])*\)/g) ?? [];
      runs.push(parts.map(decode).join(''));
    }
  }
  return runs;
}

export const pdfTextOf = (pdf: Buffer) => pdfTextRuns(pdf).join('\n');

function decode(s: string): string {
  if (s.startsWith('<')) return Buffer.from(s.slice(1, -1), 'hex').toString('latin1');
  return s.slice(1, -1).replace(/\\([nrtbf()\\])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' })[c] ?? c);
}
