import { createHash } from 'node:crypto';

/**
 * The console's one stylesheet, served from our own origin (the CSP allows no inline style or script).
 * Its URL carries its hash, so it can be cached for good and still change with a release.
 */
const CSS = `
:root { --ink:#1d2733; --muted:#5b6776; --line:#d9dee5; --bg:#f5f7fa; --brand:#0b4f8a; --ok:#1d7a46; --warn:#a86200; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.5 "Noto Sans TC","Noto Sans CJK TC","PingFang TC","Microsoft JhengHei",system-ui,sans-serif; color:var(--ink); background:var(--bg); }
a { color:var(--brand); }
header.top { display:flex; align-items:center; gap:1.5rem; background:var(--brand); color:#fff; padding:.6rem 1.2rem; flex-wrap:wrap; }
header.top .brand { font-weight:700; font-size:1.05rem; }
header.top nav { display:flex; gap:1rem; flex-wrap:wrap; flex:1; }
header.top nav a { color:#e6eef7; text-decoration:none; padding:.15rem 0; border-bottom:2px solid transparent; }
header.top nav a.current { color:#fff; border-bottom-color:#fff; }
header.top .who { display:flex; gap:.8rem; align-items:center; font-size:.9rem; }
header.top .who a { color:#fff; }
header.top form { margin:0; }
header.top button { background:transparent; color:#fff; border:1px solid #9fc0e0; border-radius:4px; padding:.15rem .6rem; cursor:pointer; }
main { padding:1.2rem; max-width:1400px; margin:0 auto; }
h1 { font-size:1.35rem; margin:.2rem 0 1rem; }
h2 { font-size:1.1rem; margin:1.6rem 0 .6rem; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(170px,1fr)); gap:.8rem; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:.7rem .9rem; }
.card .n { font-size:1.6rem; font-weight:700; }
.card .l { color:var(--muted); font-size:.85rem; }
.card.bad .n { color:var(--bad); } .card.warn .n { color:var(--warn); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.35rem .55rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef2f6; font-weight:600; white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.mono, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:.85em; word-break:break-all; }
table.kv th { width:14rem; }
.badge { display:inline-block; padding:0 .45rem; border-radius:10px; font-size:.8rem; border:1px solid var(--line); background:#fff; white-space:nowrap; }
.badge.active,.badge.sent,.badge.built,.badge.ok,.badge.complete { color:var(--ok); border-color:#9fd3b3; background:#eefaf2; }
.badge.pending,.badge.queued,.badge.retrying,.badge.open,.badge.building,.badge.partial { color:var(--warn); border-color:#efc98a; background:#fff7e8; }
.badge.suspended,.badge.failed,.badge.refused,.badge.overdue,.badge.rejected,.badge.terminated { color:var(--bad); border-color:#eba9a4; background:#fdf0ef; }
.flash { padding:.6rem .9rem; border-radius:6px; margin-bottom:1rem; border:1px solid; }
.flash.ok { background:#eefaf2; border-color:#9fd3b3; }
.flash.bad { background:#fdf0ef; border-color:#eba9a4; }
form.filters { display:flex; gap:.6rem; flex-wrap:wrap; align-items:flex-end; margin-bottom:.8rem; }
form.filters label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); }
input, select, textarea { font:inherit; padding:.3rem .4rem; border:1px solid #b8c1cc; border-radius:4px; background:#fff; }
button, .button { font:inherit; background:var(--brand); color:#fff; border:0; border-radius:4px; padding:.35rem .9rem; cursor:pointer; text-decoration:none; display:inline-block; }
.button.secondary, button.secondary { background:#fff; color:var(--brand); border:1px solid var(--brand); }
button.danger, .button.danger { background:var(--bad); }
.actions { display:flex; gap:.5rem; flex-wrap:wrap; margin:.6rem 0; }
.actions form { margin:0; }
.pager { display:flex; gap:1rem; margin:.8rem 0; }
.muted { color:var(--muted); }
.login { max-width:360px; margin:8vh auto; background:#fff; border:1px solid var(--line); border-radius:8px; padding:1.4rem 1.6rem; }
.login label { display:block; margin:.7rem 0 .2rem; }
.login input { width:100%; }
.login button { width:100%; margin-top:1.1rem; }
.confirm { max-width:640px; background:#fff; border:1px solid var(--line); border-radius:8px; padding:1rem 1.4rem; }
.confirm textarea { width:100%; min-height:5rem; }
details summary { cursor:pointer; color:var(--brand); }
pre { white-space:pre-wrap; margin:.3rem 0; }
footer { color:var(--muted); font-size:.8rem; padding:1rem 1.2rem; text-align:center; }
`;

const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

export const ASSETS: Record<string, { body: string; type: string }> = {
  [`console.${digest(CSS)}.css`]: { body: CSS, type: 'text/css; charset=utf-8' },
};
export const CSS_URL = `/static/${Object.keys(ASSETS)[0]}`;
