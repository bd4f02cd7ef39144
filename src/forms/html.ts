import type { Block, FormDocument, Run } from './model';

/** Every value on the form is the agency's text: escaped, always. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

function run(r: Run): string {
  switch (r.t) {
    case 'text':
      return escapeHtml(r.text);
    case 'value':
      return `<span class="value">${escapeHtml(r.text)}</span>`;
    case 'box':
      return `<span class="opt" data-checked="${r.checked}"><span class="box" aria-label="${r.checked ? '已勾選' : '未勾選'}">${r.checked ? '■' : '□'}</span>${escapeHtml(r.label)}</span>`;
  }
}

function block(b: Block): string {
  switch (b.kind) {
    case 'title':
      return `<h1>${escapeHtml(b.text)}</h1>`;
    case 'meta':
      return `<p class="meta">${escapeHtml(b.text)}</p>`;
    case 'para':
      return `<p class="${b.indent ? 'sub' : 'item'}"${b.item ? ` data-item="${escapeHtml(b.item)}"` : ''}>${b.runs.map(run).join('')}</p>`;
    case 'stamp':
      return `<div class="stamp"><div class="seal"><span>${escapeHtml(b.agencyLabel)}</span></div><table class="reply">${b.reply
        .map((r) => `<tr><th>${escapeHtml(r.label)}</th><td>${escapeHtml(r.value)}</td></tr>`)
        .join('')}</table></div>`;
    case 'date':
      return `<p class="date">${escapeHtml(b.text)}</p>`;
    case 'footer':
      return `<p class="footer">${escapeHtml(b.text)}</p>`;
  }
}

const STYLE = `
@page { size: A4; margin: 18mm 16mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Serif CJK TC", "Noto Sans CJK TC", "Noto Sans TC", "PMingLiU", "MingLiU", serif; font-size: 12pt; line-height: 1.75; color: #000; max-width: 178mm; margin: 0 auto; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.1em; margin: 0 0 4mm; }
.meta { text-align: right; font-size: 9pt; margin: 0 0 3mm; }
p { margin: 0 0 1.5mm; }
.sub { padding-left: 2.5em; }
.item { text-indent: -2em; padding-left: 2em; }
.value { text-decoration: underline; text-underline-offset: 0.2em; padding: 0 0.25em; }
.opt { white-space: nowrap; margin-right: 0.8em; }
.box { margin-right: 0.15em; }
.stamp { display: flex; gap: 8mm; margin-top: 6mm; page-break-inside: avoid; }
.seal { flex: 1; border: 1px solid #000; height: 42mm; padding: 2mm; }
.reply { flex: 1; border-collapse: collapse; align-self: flex-start; font-size: 11pt; }
.reply th, .reply td { border: 1px solid #000; padding: 1mm 2mm; text-align: left; font-weight: normal; }
.reply th { white-space: nowrap; width: 8em; }
.date { text-align: center; letter-spacing: 0.3em; margin-top: 8mm; font-size: 13pt; }
.footer { margin-top: 6mm; font-size: 8pt; color: #444; text-align: right; }
@media screen { body { margin: 12mm auto; } }
`;

/** The form as one self-contained, print-ready A4 page (no scripts, nothing loaded from elsewhere). */
export function renderHtml(doc: FormDocument): string {
  return `<!doctype html>
<html lang="zh-Hant-TW">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.title)}</title>
<style>${STYLE}</style>
</head>
<body>
${doc.blocks.map(block).join('\n')}
</body>
</html>
`;
}
