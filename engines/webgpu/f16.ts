// IEEE half precision on the host (Node 20 has no Float16Array): the GPU reads f16 as raw 16-bit words.
// Rounding to half is safetensors' (round to nearest even); the decode is the exact inverse.
import { floatToHalf } from '../../core/llm/safetensors.js';

/** Nearest f16 bit pattern to x (round half to even; overflow to ±Inf; NaN kept). */
export const f32ToF16Bits = floatToHalf;

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]);
  return out;
}

export function fromF16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  return out;
}
