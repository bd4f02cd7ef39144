import path from 'node:path';
import type { Block, FormDocument, Run } from './model';

/**
 * The Traditional Chinese font embedded (as a subset) in every form PDF: Noto Sans CJK TC, shipped
 * by an npm package, so a PDF renders the same on any machine that ran `npm ci` (no system fonts,
 * no browser).
 */
function fontFile(weight: 'Regular' | 'Bold'): string {
  return path.join(path.dirname(require.resolve('@embedpdf/fonts-tc')), '..', 'fonts', `NotoSansHant-${weight}.otf`);
}

const MM = 72 / 25.4;
const MARGIN = { top: 18 * MM, bottom: 16 * MM, left: 18 * MM, right: 18 * MM };
const BODY = 11.5;
const INDENT = 2.5 * BODY;

/**
 * The form as an A4 PDF with its text extractable (fonts carry their Unicode map). pdfkit is loaded
 * on first use: the processes that never render a form (the SFTP and query front ends, the workers)
 * do not carry it in their heap, where every full garbage collection would mark it.
 */
export async function renderPdf(form: FormDocument): Promise<Buffer> {
  const { default: PDFDocument } = await import('pdfkit');
  const doc = new PDFDocument({
    size: 'A4',
    margins: MARGIN,
    info: { Title: form.title, Creator: 'nia-link', Producer: 'nia-link (pdfkit)' },
    lang: 'zh-Hant-TW',
    displayTitle: true,
    pdfVersion: '1.7',
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('body', fontFile('Regular'));
  doc.registerFont('bold', fontFile('Bold'));
  const left = MARGIN.left;
  const width = doc.page.width - MARGIN.left - MARGIN.right;

  const runs = (list: Run[], x: number, w: number) => {
    doc.font('body').fontSize(BODY);
    const parts = list.map((r) =>
      r.t === 'box' ? { s: `${r.checked ? '■' : '□'}${r.label}　`, u: false } : { s: r.t === 'value' ? ` ${r.text} ` : r.text, u: r.t === 'value' },
    );
    parts.forEach((p, i) => {
      const last = i === parts.length - 1;
      const opts = { continued: !last, underline: p.u, width: w, lineGap: 4 };
      if (i === 0) doc.text(p.s, x, doc.y, opts);
      else doc.text(p.s, opts);
    });
  };

  const block = (b: Block) => {
    switch (b.kind) {
      case 'title':
        doc.font('bold').fontSize(17).text(b.text, left, doc.y, { width, align: 'center', characterSpacing: 1.5 });
        doc.moveDown(0.3);
        return;
      case 'meta':
        doc.font('body').fontSize(8.5).text(b.text, left, doc.y, { width, align: 'right' });
        doc.moveDown(0.4);
        return;
      case 'para':
        runs(b.runs, left + (b.indent ? INDENT : 0), width - (b.indent ? INDENT : 0));
        doc.moveDown(0.25);
        return;
      case 'stamp': {
        doc.moveDown(0.6);
        const top = doc.y;
        const half = (width - 8 * MM) / 2;
        if (top + 44 * MM > doc.page.height - MARGIN.bottom) doc.addPage();
        const y = doc.y;
        doc.lineWidth(0.8).rect(left, y, half, 42 * MM).stroke();
        doc.font('body').fontSize(BODY).text(b.agencyLabel, left + 2 * MM, y + 2 * MM, { width: half - 4 * MM });
        const tx = left + half + 8 * MM;
        const labelW = 30 * MM;
        let ry = y;
        for (const r of b.reply) {
          const h = Math.max(doc.font('body').fontSize(10.5).heightOfString(r.value, { width: half - labelW - 4 * MM }), 12) + 3 * MM;
          doc.rect(tx, ry, labelW, h).stroke();
          doc.rect(tx + labelW, ry, half - labelW, h).stroke();
          doc.text(r.label, tx + 1.5 * MM, ry + 1.5 * MM, { width: labelW - 3 * MM });
          doc.text(r.value, tx + labelW + 1.5 * MM, ry + 1.5 * MM, { width: half - labelW - 3 * MM });
          ry += h;
        }
        doc.x = left;
        doc.y = Math.max(y + 42 * MM, ry) + 6 * MM;
        return;
      }
      case 'date':
        doc.font('body').fontSize(13).text(b.text, left, doc.y, { width, align: 'center', characterSpacing: 3 });
        doc.moveDown(0.5);
        return;
      case 'footer': {
        // In the bottom margin of the last page: lift the margin so pdfkit does not start a new page for it.
        const bottom = doc.page.margins.bottom;
        doc.page.margins.bottom = 0;
        doc.font('body').fontSize(7.5).fillColor('#444').text(b.text, left, doc.page.height - bottom + 4 * MM, { width, align: 'right', lineBreak: false });
        doc.fillColor('#000');
        doc.page.margins.bottom = bottom;
        return;
      }
    }
  };
  for (const b of form.blocks) block(b);
  doc.end();
  return done;
}
