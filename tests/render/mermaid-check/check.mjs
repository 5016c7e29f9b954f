// RunnerIQ's render check (run by tests/render/mermaid-check.sh, which
// renders the Markdown to HTML first): every Mermaid block of every document
// goes through the real Mermaid library at the versions GitLab ships,
// configured as GitLab configures it, in headless Chromium; HTML pages are
// laid out at 400 px. Fails (exit 1) on a parse or render error on a Mermaid
// version that supports the diagram type, a block over GitLab's 2,000
// characters or past its cumulative page budget, an xychart whose y-axis does
// not start at 0, a line series (categories joined by lines), several series
// in one xychart (xychart draws no legend), bars or slices drawn nearly white,
// overlapping pie or axis labels, and an HTML page wider than the phone's
// screen.
//
// Usage: node check.mjs --out DIR --chromium PATH
//          --doc NAME=COMRAK.html[,CMARK.html] ... --page NAME=FILE.html ...

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);

// The Mermaid versions GitLab ships (npm aliases in package.json), oldest
// first, with the GitLab releases that bundle them (README: "Charts and
// GitLab versions").
const MERMAIDS = [
  { pkg: 'mermaid-gitlab-15', gitlab: 'GitLab 15.x' },
  { pkg: 'mermaid-gitlab-16-9', gitlab: 'GitLab 16.9-18.x' },
  { pkg: 'mermaid-gitlab-19-4', gitlab: 'GitLab 19.4+' },
].map((m) => ({
  ...m,
  version: require(`${m.pkg}/package.json`).version,
  script: require.resolve(`${m.pkg}/dist/mermaid.min.js`),
}));

// The first Mermaid version that knows a diagram type (others: any).
const FIRST_VERSION = { 'xychart-beta': '10.6.0' };

// GitLab's limits (app/assets/javascripts/behaviors/markdown/render_sandboxed_mermaid.js):
// a block over MAX_CHAR_LIMIT characters is not drawn (a "Display" button
// instead), and once the blocks drawn on a page add up to more than
// MAX_CHAR_LIMIT, none after them is drawn either; blocks inside a closed
// <details> count separately, when it is opened. At most 50 blocks a page.
const MAX_CHAR_LIMIT = 2000;
const MAX_BLOCKS = 50;

// GitLab's Mermaid configuration (app/assets/javascripts/lib/mermaid_sandbox.js),
// light mode.
const GITLAB_CONFIG = {
  mermaid: { startOnLoad: false },
  theme: 'neutral',
  flowchart: { useMaxWidth: true, htmlLabels: true },
  secure: ['secure', 'securityLevel', 'startOnLoad', 'maxTextSize', 'htmlLabels'],
  securityLevel: 'strict',
  dompurifyConfig: { ADD_TAGS: ['foreignObject'], HTML_INTEGRATION_POINTS: { foreignobject: true } },
};

function args() {
  const a = { docs: [], pages: [], out: 'target/render', chromium: '/usr/bin/chromium' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const [k, val] = [v[i], v[i + 1]];
    if (k === '--out') a.out = val;
    else if (k === '--chromium') a.chromium = val;
    else if (k === '--doc' || k === '--page') {
      const [name, files] = val.split('=');
      (k === '--doc' ? a.docs : a.pages).push({ name, files: files.split(',') });
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

function cmp(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i += 1) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
  return 0;
}

function diagramType(src) {
  const lines = src.split('\n').map((l) => l.trim());
  const first = lines.find((l) => l && !l.startsWith('%%'));
  return (first || '').split(/\s+/)[0];
}

function title(src) {
  const m = src.match(/title\s+"?([^"\n]*)"?/);
  return m ? m[1].trim() : '';
}

// Source rules GitLab's renderer does not check and we do.
function sourceProblems(src) {
  const out = [];
  if (diagramType(src) !== 'xychart-beta') return out;
  const y = src.match(/^\s*y-axis\b(.*)$/m);
  const range = y && y[1].match(/(-?[\d.]+)\s*-->\s*(-?[\d.]+)\s*$/);
  if (!range) out.push('y-axis has no range: xychart starts it at the smallest value');
  else if (Number(range[1]) !== 0) out.push(`y-axis starts at ${range[1]}, not 0`);
  const series = (src.match(/^\s*(bar|line)\s*\[/gm) || []).length;
  if (/^\s*line\s*\[/m.test(src)) out.push('a line series joins categories with lines');
  if (series > 1) out.push(`${series} series in one chart: xychart draws no legend`);
  return out;
}

// Relative luminance of a CSS colour the browser resolved (rgb/rgba).
function luminance(rgb) {
  const m = rgb.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/);
  if (!m) return null;
  const alpha = m[4] === undefined ? 1 : Number(m[4]);
  const lin = (c) => {
    // Over white, as the page shows it.
    const v = (Number(c) * alpha + 255 * (1 - alpha)) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(m[1]) + 0.7152 * lin(m[2]) + 0.0722 * lin(m[3]);
}

async function renderOne(browser, mermaid, src, id, png) {
  const page = await browser.newPage();
  try {
    await page.setViewport({ width: 1000, height: 800 });
    await page.setContent(
      '<!doctype html><html><head><meta charset="utf-8"><style>body{margin:0;background:#fff;font-family:sans-serif}#app{width:800px;padding:8px}</style></head><body><div id="app"></div></body></html>',
    );
    await page.addScriptTag({ path: mermaid.script });
    const r = await page.evaluate(
      async (config, source, elId) => {
        // eslint-disable-next-line no-undef
        const m = window.mermaid;
        m.initialize(config);
        let svg;
        try {
          // As GitLab calls it (mermaid_sandbox.js): Mermaid 9 returns the
          // SVG, 10 and later a promise of { svg }.
          const res = await m.mermaidAPI.render(elId, source);
          svg = typeof res === 'string' ? res : res.svg;
        } catch (e) {
          return { error: String((e && (e.str || e.message)) || e).split('\n')[0] };
        }
        const app = document.getElementById('app');
        app.innerHTML = svg;
        const el = app.firstElementChild;
        el.removeAttribute('height');
        const text = app.textContent || '';
        if (/Syntax error|Parse error/i.test(text)) return { error: 'Mermaid drew its "Syntax error" diagram' };
        const fills = [...el.querySelectorAll('[class^="bar-plot"] rect, .pieCircle')].map(
          (n) => {
            const s = getComputedStyle(n);
            return { fill: s.fill, opacity: Number(s.opacity || 1) * Number(s.fillOpacity || 1) };
          },
        );
        const box = (t) => {
          const b = t.getBoundingClientRect();
          return { text: t.textContent, x: b.x, y: b.y, w: b.width, h: b.height };
        };
        const labels = [...el.querySelectorAll('text.slice')].map(box);
        // xychart's category labels (the axis along the bars).
        const axis = [...el.querySelectorAll('.bottom-axis .label text, .left-axis .label text')].map(box);
        return { svgLength: svg.length, fills, labels, axis };
      },
      GITLAB_CONFIG,
      src,
      id,
    );
    if (!r.error) {
      const el = await page.$('#app');
      await el.screenshot({ path: png });
    }
    return r;
  } finally {
    await page.close();
  }
}

function drawnProblems(r) {
  const out = [];
  for (const f of r.fills || []) {
    const rgb = f.fill.replace(/^rgb\(/, 'rgba(').replace(/\)$/, `, ${f.opacity})`);
    const l = luminance(f.fill.startsWith('rgba') ? f.fill : rgb);
    if (l !== null && l > 0.75) {
      out.push(`a bar or slice is drawn nearly white (${f.fill}, opacity ${f.opacity})`);
      break;
    }
  }
  // The first overlapping pair of each kind, and how many pairs.
  const overlaps = (ls, what) => {
    const pairs = [];
    for (let i = 0; i < ls.length; i += 1) {
      for (let j = i + 1; j < ls.length; j += 1) {
        const [a, b] = [ls[i], ls[j]];
        if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) {
          pairs.push(`"${a.text}" and "${b.text}"`);
        }
      }
    }
    if (pairs.length) {
      out.push(`${what} ${pairs[0]} overlap${pairs.length > 1 ? ` (and ${pairs.length - 1} more pairs)` : ''}`);
    }
  };
  overlaps(r.labels || [], 'pie labels');
  overlaps(r.axis || [], 'axis labels');
  return out;
}

async function blocksOf(browser, file) {
  const page = await browser.newPage();
  try {
    await page.goto(`file://${path.resolve(file)}`);
    return await page.evaluate(() =>
      [...document.querySelectorAll('pre[lang="mermaid"] > code, code.language-mermaid')].map(
        (c) => ({ source: c.textContent.replace(/\n$/, ''), inDetails: c.closest('details') !== null }),
      ),
    );
  } finally {
    await page.close();
  }
}

async function checkDoc(browser, doc, out, shots) {
  const lines = [];
  let failures = 0;
  const [primary, ...others] = doc.files;
  const blocks = await blocksOf(browser, primary);
  for (const other of others) {
    const b = await blocksOf(browser, other);
    const same = b.length === blocks.length && b.every((x, i) => x.source === blocks[i].source);
    if (!same) {
      failures += 1;
      lines.push(`  FAIL: ${path.basename(other)} has other Mermaid blocks than ${path.basename(primary)} (${b.length} vs ${blocks.length})`);
    }
  }
  const renderers = doc.files.map((f) => path.basename(f)).join(' = ');
  lines.unshift(`${doc.name}: ${blocks.length} Mermaid block${blocks.length === 1 ? '' : 's'} (${renderers})`);
  if (blocks.length > MAX_BLOCKS) {
    failures += 1;
    lines.push(`  FAIL: ${blocks.length} blocks, GitLab draws at most ${MAX_BLOCKS} a page`);
  }
  // GitLab's cumulative budget, per group (the page, then each <details>).
  let drawn = 0;
  for (const [i, b] of blocks.entries()) {
    const n = i + 1;
    const len = b.source.length;
    const type = diagramType(b.source);
    const problems = sourceProblems(b.source);
    const lazy = len > MAX_CHAR_LIMIT || (!b.inDetails && drawn > MAX_CHAR_LIMIT);
    if (!b.inDetails && !lazy) drawn += len;
    if (len > MAX_CHAR_LIMIT) problems.push(`${len} characters, over GitLab's ${MAX_CHAR_LIMIT}: shown as a "Display" button`);
    else if (lazy) problems.push(`the blocks above add up to ${drawn} characters, over GitLab's ${MAX_CHAR_LIMIT} a page: shown as a "Display" button`);
    lines.push(`  #${n} ${type} "${title(b.source)}": ${len} characters, page total ${b.inDetails ? '(in <details>)' : `${drawn}/${MAX_CHAR_LIMIT}`}`);
    for (const p of problems) {
      failures += 1;
      lines.push(`      FAIL: ${p}`);
    }
    for (const m of MERMAIDS) {
      const png = path.join(shots, `${doc.name}-${n}-mermaid-${m.version}.png`);
      const r = await renderOne(browser, m, b.source, `mermaid-${doc.name}-${n}`.replace(/[^\w-]/g, '-'), png);
      const first = FIRST_VERSION[type];
      const supported = !first || cmp(m.version, first) >= 0;
      const label = `${m.version.padEnd(8)} ${`(${m.gitlab})`.padEnd(20)}`;
      if (r.error) {
        if (supported) {
          failures += 1;
          lines.push(`      ${label} FAIL: ${r.error}`);
        } else {
          lines.push(`      ${label} not drawn, as expected (${type} needs Mermaid ${first}): ${r.error}`);
        }
        continue;
      }
      const drawnP = drawnProblems(r);
      for (const p of drawnP) {
        failures += 1;
        lines.push(`      ${label} FAIL: ${p}`);
      }
      if (!drawnP.length) {
        lines.push(`      ${label} ok   ${path.relative(out, png)}`);
      }
    }
  }
  return { lines, failures };
}

async function checkPage(browser, pg, shots, out) {
  const lines = [];
  let failures = 0;
  for (const width of [400, 1000]) {
    const page = await browser.newPage();
    try {
      // 400 px as a phone: a page without a viewport meta tag is laid out
      // 980 px wide and shrunk, as phones do.
      await page.setViewport({ width, height: 900, isMobile: width < 600, hasTouch: width < 600 });
      await page.goto(`file://${path.resolve(pg.files[0])}`);
      const m = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        viewport: !!document.querySelector('meta[name="viewport"]'),
        svgs: [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect().width),
      }));
      const png = path.join(shots, `${pg.name}-${width}px.png`);
      await page.screenshot({ path: png, fullPage: true });
      // What the screen shows first.
      await page.screenshot({ path: png.replace(/\.png$/, '-screen.png') });
      const problems = [];
      if (!m.viewport) problems.push('no <meta name="viewport">: a phone lays it out at 980 px');
      if (m.scroll > width) problems.push(`the page is ${m.scroll} px wide: it scrolls sideways`);
      const wide = m.svgs.filter((w) => w > width);
      if (wide.length) problems.push(`${wide.length} SVG wider than the screen`);
      failures += problems.length;
      lines.push(`${pg.name} at ${width} px: ${problems.length ? problems.map((p) => `FAIL: ${p}`).join('; ') : 'ok'}   ${path.relative(out, png)}`);
    } finally {
      await page.close();
    }
  }
  return { lines, failures };
}

const a = args();
const shots = path.join(a.out, 'screenshots');
fs.mkdirSync(shots, { recursive: true });
const browser = await puppeteer.launch({
  executablePath: a.chromium,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--allow-file-access-from-files',
  ],
});
let failures = 0;
const report = [
  `Mermaid versions: ${MERMAIDS.map((m) => `${m.version} (${m.gitlab})`).join(', ')}; GitLab's configuration: theme neutral, securityLevel strict`,
];
try {
  for (const d of a.docs) {
    const r = await checkDoc(browser, d, a.out, shots);
    report.push(...r.lines);
    failures += r.failures;
  }
  for (const p of a.pages) {
    const r = await checkPage(browser, p, shots, a.out);
    report.push(...r.lines);
    failures += r.failures;
  }
} finally {
  await browser.close();
}
report.push(failures ? `render check: ${failures} problem${failures === 1 ? '' : 's'}` : 'render check: ok');
const text = `${report.join('\n')}\n`;
fs.writeFileSync(path.join(a.out, 'render-check.txt'), text);
process.stdout.write(text);
process.exit(failures ? 1 : 0);
