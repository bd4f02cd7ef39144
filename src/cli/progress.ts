/**
 * Progress for commands a person waits on: one line on standard error, redrawn in place at most ten
 * times a second, and wiped when the work ends. Shown only on a terminal and never with --json:
 * scripts, pipes and logs see nothing of it.
 */
export interface Progress {
  /** A share of a known total: a bar, the counts and the rate. */
  update(done: number, total: number): void;
  /** Work of unknown length: what is going on, with the time so far. */
  note(text: string): void;
  /** Wipe the line (call it before printing the result). */
  done(): void;
}

const SPINNER = '|/-\\';

/** rows/s to three significant figures: the last digits of a rate are noise. */
export const rate = (count: number, ms: number): string => String(Number((count / (Math.max(ms, 1) / 1000)).toPrecision(3)));

const QUIET: Progress = { update() {}, note() {}, done() {} };

export interface ProgressOptions {
  /** --json was given: the output is for a program, so no progress. */
  json?: boolean;
  /** What is counted (rows, records). */
  unit?: string;
  /** Where to draw: standard error by default. */
  stream?: NodeJS.WriteStream;
}

export function progress(label: string, o: ProgressOptions = {}): Progress {
  const out = o.stream ?? process.stderr;
  if (o.json || !out.isTTY) return QUIET;
  const unit = o.unit ?? 'rows';
  const started = performance.now();
  let last = 0;
  let turn = 0;
  let shown = false;
  let timer: NodeJS.Timeout | undefined;
  let text = '';
  const draw = (line: string) => {
    shown = true;
    out.write(`\r${line.slice(0, Math.max(20, (out.columns || 80) - 1))}\x1b[K`);
  };
  const seconds = () => `${Math.floor((performance.now() - started) / 1000)} s`;
  const redrawNote = () => draw(`${label} ${SPINNER[turn++ % SPINNER.length]} ${text}${text ? ' ' : ''}(${seconds()})`);
  return {
    update(done, total) {
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const share = total ? Math.min(1, done / total) : 1;
      const width = 20;
      const filled = Math.round(share * width);
      draw(`${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}%  ${done}/${total} ${unit}  ${rate(done, now - started)} ${unit}/s`);
    },
    note(t) {
      text = t;
      redrawNote();
      // Time passes while nothing reports: the spinner and the seconds keep moving.
      timer ??= setInterval(redrawNote, 250);
      timer.unref();
    },
    done() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (shown) out.write('\r\x1b[K');
      shown = false;
    },
  };
}
