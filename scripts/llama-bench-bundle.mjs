// Builds bench-dist/: bench/llama-cpp-generation.ts bundled with esbuild, beside a node_modules holding only
// what the bundle loads at run time: node-llama-cpp (without its 35 MB source bundle for compiling), the
// packages it imports (their dependency closure), and the prebuilt binary packages named on the command
// line. Carry bench-dist to a GPU machine and run `node bench-dist/llama-cpp-generation.mjs --gpu vulkan`.
//   node scripts/llama-bench-bundle.mjs [binary packages, default @node-llama-cpp/linux-x64-vulkan]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const out = 'bench-dist';
const binaries = process.argv.slice(2).length ? process.argv.slice(2) : ['@node-llama-cpp/linux-x64-vulkan'];
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'node_modules'), { recursive: true });
execFileSync('npx', ['esbuild', 'bench/llama-cpp-generation.ts', '--bundle', '--platform=node', '--format=esm', '--external:node-llama-cpp', '--external:@node-llama-cpp/*', `--outfile=${out}/llama-cpp-generation.mjs`, '--log-level=warning'], { stdio: 'inherit' });

/** Where `name` resolves from `from` (node's lookup: node_modules folders up the tree). */
function resolvePackage(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot resolve ${name} from ${from}`);
  }
}
const seen = new Map();
function add(name, from) {
  const dir = resolvePackage(name, from);
  if (seen.has(dir)) return;
  seen.set(dir, name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys(pkg.dependencies ?? {})) add(dep, dir);
}
add('node-llama-cpp', process.cwd());
for (const b of binaries) add(b, process.cwd());
const skip = (src) => src.endsWith('gitRelease.bundle') || /node-llama-cpp\/llama\/(xpack|toolchains|addon|cmake|patches)$/.test(src);
for (const dir of seen.keys()) {
  const target = join(out, dir.slice(dir.indexOf('node_modules'))); // nested copies keep their place
  cpSync(dir, target, { recursive: true, dereference: true, filter: (src) => !skip(src) });
}
const size = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((s, f) => s + size(join(p, f)), 0) : statSync(p).size);
console.log(`${out}: ${seen.size} packages, ${(size(out) / 2 ** 20).toFixed(1)} MiB`);
