// Launch grids for one-thread-per-element kernels: n threads as a 2-D grid of workgroups (WebGPU allows
// at most 65535 workgroups a dimension), and the matching WGSL entry point that recovers the index.

const THREADS = 256;

/** Entry point of a one-thread-per-element kernel over n elements on the grid of elementwiseGrid: binds
 *  `i` and returns early past the end. */
export function elementwiseEntry(n: number, threads = THREADS): string {
  return `@compute @workgroup_size(${threads})
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.y * nw.x * ${threads}u + id.x;
  if (i >= ${n}u) { return; }`;
}

/** A 1-D launch of n threads as a 2-D grid (at most 65535 workgroups a dimension). */
export function elementwiseGrid(n: number, threads = THREADS): [number, number] {
  const groups = Math.ceil(n / threads);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}


/** Storage bindings 0..n-1 of group 0 in order: the read-only arrays, then the read-write ones; element
 *  type f32 unless the name says `name:u32`. Keeps the binding order and the dispatch's buffer order one list. */
export function storageBindings(read: string[], write: string[]): string {
  const line = (entry: string, binding: number, access: string) => {
    const [name, type = 'f32'] = entry.split(':');
    return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${type}>;`;
  };
  return [...read.map((e, i) => line(e, i, 'read')), ...write.map((e, i) => line(e, read.length + i, 'read_write'))].join('\n');
}
