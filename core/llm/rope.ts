// Rotary position embedding's inverse frequencies, in float32 as transformers computes them:
// inv_freq = 1 / theta^(2i/d), with linear or llama3 rescaling. Plain code: every engine's RoPE uses it
// (engines/tfjs/rope.ts, engines/webgpu/kernels/rope.ts).
import type { ModelConfig } from './config.js';

const f = Math.fround;

export function ropeInverseFrequencies(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const dim = config.headDim;
  const base = f(config.ropeTheta);
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = f(1 / f(Math.pow(base, f(f(2 * i) / dim))));
  const s = config.ropeScaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((v) => f(v / s.factor));
  // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
  const old = s.originalMaxPositionEmbeddings!;
  const low = s.lowFreqFactor!;
  const high = s.highFreqFactor!;
  const lowFreqWavelen = old / low;
  const highFreqWavelen = old / high;
  return inv.map((v) => {
    const wavelen = f((2 * Math.PI) / v);
    const scaled = wavelen > lowFreqWavelen ? f(v / s.factor) : v;
    if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) return scaled;
    const smooth = f((old / wavelen - low) / (high - low));
    return f(f((1 - smooth) * f(scaled / s.factor)) + f(smooth * scaled));
  });
}
