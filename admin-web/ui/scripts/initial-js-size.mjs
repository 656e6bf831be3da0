// Measures the JavaScript a browser loads before the UI can start: the
// module scripts and module preloads of dist/index.html, and every chunk
// they import statically (dynamic import() chunks load later, per page).
// Prints JSON; exits 1 when the gzipped total exceeds --limit-kb (default 300).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const args = process.argv.slice(2);
const dist = args.find((a) => !a.startsWith('--')) ?? 'dist';
const limitArg = args.find((a) => a.startsWith('--limit-kb='));
const limitKb = limitArg ? Number(limitArg.split('=')[1]) : 300;

const html = readFileSync(join(dist, 'index.html'), 'utf8');
const entries = [
  ...html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g),
  ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g),
].map((m) => m[1].replace(/^\//, ''));

const seen = new Set();
const files = [];
function visit(rel) {
  if (seen.has(rel)) return;
  seen.add(rel);
  const code = readFileSync(join(dist, rel));
  files.push({ file: rel, bytes: code.length, gzip: gzipSync(code, { level: 9 }).length });
  const text = code.toString('utf8');
  // Static imports only: `import ... from "./x.js"` and `import "./x.js"`.
  for (const m of text.matchAll(/(?:^|[;\n}])\s*import\s*(?:[^'"()]*?from\s*)?["']([^"']+\.js)["']/g)) {
    const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    const target = m[1].startsWith('/') ? m[1].slice(1) : join(dir, m[1]).replace(/\\/g, '/');
    visit(target);
  }
}
entries.forEach(visit);

const gzip = files.reduce((n, f) => n + f.gzip, 0);
const result = { files, total_bytes: files.reduce((n, f) => n + f.bytes, 0), total_gzip_bytes: gzip, limit_kb: limitKb };
console.log(JSON.stringify(result, null, 1));
if (entries.length === 0) {
  console.error('no module script found in index.html');
  process.exit(2);
}
if (gzip > limitKb * 1024) {
  console.error(`initial JavaScript is ${(gzip / 1024).toFixed(1)} KB gzipped, over ${limitKb} KB`);
  process.exit(1);
}
