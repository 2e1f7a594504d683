// Encoding float32 values into the ggml tensor types, block by block. The quantizers follow llama.cpp's
// reference ones (ggml-quants.c, `quantize_row_*_ref`: what `llama-quantize` uses without an importance
// matrix), so a file we write decodes as llama.cpp's own quantizer's would, up to float rounding.
import { floatToBf16, floatToHalf, halfToFloat } from '../llm/safetensors.js';
import { GGML_BLOCK, GGML_TYPE_NAME, GgmlType } from './format.js';

/** Encode `values` (whole rows, row-major) as `type`; the result is the tensor's bytes in the file. */
export function encodeTensor(type: GgmlType, values: Float32Array): Uint8Array {
  const block = GGML_BLOCK[type];
  if (values.length % block.size !== 0) throw new Error(`${values.length} values are not a whole number of ${GGML_TYPE_NAME[type]} blocks`);
  const blocks = values.length / block.size;
  const out = new Uint8Array(blocks * block.bytes);
  const view = new DataView(out.buffer);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
      break;
    case GgmlType.F16:
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToHalf(values[i]), true);
      break;
    case GgmlType.BF16:
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, floatToBf16(values[i]), true);
      break;
    default: {
      const encodeBlock = BLOCK_ENCODERS[type];
      if (!encodeBlock) throw new Error(`no encoder for ${GGML_TYPE_NAME[type]}`);
      for (let b = 0; b < blocks; b++) encodeBlock(values.subarray(b * block.size, (b + 1) * block.size), view, b * block.bytes);
    }
  }
  return out;
}

type BlockEncoder = (x: Float32Array, out: DataView, at: number) => void;

/** Round half to even, as ggml's `nearest_int` does. */
function nearestInt(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** C's roundf: half away from zero. */
function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** The value of largest magnitude, with its sign (the first one on ties). */
function signedAbsMax(x: Float32Array): number {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]) > amax) {
      amax = Math.abs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// q8_0: d = max|x| / 127, q = round(x / d).
const encodeQ8_0: BlockEncoder = (x, out, at) => {
  let amax = 0;
  for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[i]));
  const d = amax / 127;
  const id = d ? 1 / d : 0;
  out.setUint16(at, floatToHalf(d), true);
  for (let i = 0; i < 32; i++) out.setInt8(at + 2 + i, roundAway(x[i] * id));
};

// q4_0: d = (value of largest magnitude) / -8, q = x/d + 8 in [0, 15]; byte j holds values j and j + 16.
const encodeQ4_0: BlockEncoder = (x, out, at) => {
  const d = signedAbsMax(x) / -8;
  const id = d ? 1 / d : 0;
  out.setUint16(at, floatToHalf(d), true);
  for (let j = 0; j < 16; j++) {
    const lo = Math.min(15, Math.trunc(x[j] * id + 8.5));
    const hi = Math.min(15, Math.trunc(x[j + 16] * id + 8.5));
    out.setUint8(at + 2 + j, lo | (hi << 4));
  }
};

// q5_0: as q4_0 with 5 bits (d = max / -16); the fifth bits go to a 32-bit mask.
const encodeQ5_0: BlockEncoder = (x, out, at) => {
  const d = signedAbsMax(x) / -16;
  const id = d ? 1 / d : 0;
  out.setUint16(at, floatToHalf(d), true);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const lo = Math.min(31, Math.trunc(x[j] * id + 16.5));
    const hi = Math.min(31, Math.trunc(x[j + 16] * id + 16.5));
    out.setUint8(at + 6 + j, (lo & 0x0f) | ((hi & 0x0f) << 4));
    qh |= ((lo & 0x10) >> 4) << j;
    qh |= ((hi & 0x10) >> 4) << (j + 16);
  }
  out.setUint32(at + 2, qh >>> 0, true);
};

/**
 * Asymmetric quantization of one group to levels 0..nmax: x ≈ scale·L − min, fitted by weighted least
 * squares over a sweep of candidate scales (ggml's make_qkx2_quants). Returns the scale and the min.
 */
function fitScaleAndMin(x: Float32Array, weights: Float32Array, nmax: number, levels: Uint8Array, rmin: number, rdelta: number, nstep: number): { scale: number; min: number } {
  const n = x.length;
  let min = x[0];
  let max = x[0];
  let sumW = weights[0];
  let sumX = sumW * x[0];
  for (let i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sumW += weights[i];
    sumX += weights[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max === min) {
    levels.fill(0);
    return { scale: 0, min: -min };
  }
  let iscale = nmax / (max - min);
  let scale = 1 / iscale;
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    levels[i] = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[i] - min))));
    const diff = scale * levels[i] + min - x[i];
    bestError += weights[i] * diff * diff;
  }
  const trial = new Uint8Array(n);
  for (let step = 0; step <= nstep; step++) {
    iscale = (rmin + rdelta * step + nmax) / (max - min);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[i] - min))));
      trial[i] = l;
      sumL += weights[i] * l;
      sumL2 += weights[i] * l * l;
      sumXL += weights[i] * l * x[i];
    }
    const det = sumW * sumL2 - sumL * sumL;
    if (det <= 0) continue;
    let thisScale = (sumW * sumXL - sumX * sumL) / det;
    let thisMin = (sumL2 * sumX - sumL * sumXL) / det;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      const diff = thisScale * trial[i] + thisMin - x[i];
      error += weights[i] * diff * diff;
    }
    if (error < bestError) {
      levels.set(trial);
      bestError = error;
      scale = thisScale;
      min = thisMin;
    }
  }
  return { scale, min: -min };
}

/**
 * Symmetric quantization of one group to levels −nmax..nmax−1 (stored offset by nmax), weighted by x²,
 * trying 19 scales around max/nmax (ggml's make_qx_quants with rmse_type 1). Returns the scale.
 */
function fitSymmetricScale(x: Float32Array, nmax: number, levels: Int8Array): number {
  const n = x.length;
  const max = signedAbsMax(x);
  if (Math.abs(max) < 1e-15) {
    levels.fill(0);
    return 0;
  }
  const weight = (i: number) => x[i] * x[i];
  const fit = (iscale: number, store: boolean) => {
    let sumLX = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[i])));
      if (store) levels[i] = l + nmax;
      sumLX += weight(i) * x[i] * l;
      sumL2 += weight(i) * l * l;
    }
    return { sumLX, sumL2 };
  };
  const first = fit(-nmax / max, true);
  let scale = first.sumL2 ? first.sumLX / first.sumL2 : 0;
  let best = scale * first.sumLX;
  for (let step = -9; step <= 9; step++) {
    if (step === 0) continue;
    const iscale = -(nmax + 0.1 * step) / max;
    const { sumLX, sumL2 } = fit(iscale, false);
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      fit(iscale, true);
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return scale;
}

// q4_K: 256 values in 8 groups of 32; each group x ≈ d·sc·L − dmin·m with 6-bit sc and m and 4-bit L.
const encodeQ4_K: BlockEncoder = (x, out, at) => {
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const levels = new Uint8Array(256);
  const weights = new Float32Array(32);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const group = x.subarray(32 * j, 32 * j + 32);
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 += group[l] * group[l];
    const avX = Math.sqrt(sumX2 / 32);
    for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(group[l]);
    const fitted = fitScaleAndMin(group, weights, 15, levels.subarray(32 * j, 32 * j + 32), -1, 0.1, 20);
    scales[j] = fitted.scale;
    mins[j] = fitted.min;
    maxScale = Math.max(maxScale, fitted.scale);
    maxMin = Math.max(maxMin, fitted.min);
  }
  const invScale = maxScale > 0 ? 63 / maxScale : 0;
  const invMin = maxMin > 0 ? 63 / maxMin : 0;
  const packed = new Uint8Array(12);
  const sc = new Uint8Array(8);
  const mn = new Uint8Array(8);
  for (let j = 0; j < 8; j++) {
    sc[j] = Math.min(63, nearestInt(invScale * scales[j]));
    mn[j] = Math.min(63, nearestInt(invMin * mins[j]));
    if (j < 4) {
      packed[j] = sc[j];
      packed[j + 4] = mn[j];
    } else {
      packed[j + 4] = (sc[j] & 0xf) | ((mn[j] & 0xf) << 4);
      packed[j - 4] |= (sc[j] >> 4) << 6;
      packed[j] |= (mn[j] >> 4) << 6;
    }
  }
  const dBits = floatToHalf(maxScale / 63);
  const dminBits = floatToHalf(maxMin / 63);
  out.setUint16(at, dBits, true);
  out.setUint16(at + 2, dminBits, true);
  for (let i = 0; i < 12; i++) out.setUint8(at + 4 + i, packed[i]);
  // Requantize with the scales as stored.
  const d = halfToFloat(dBits);
  const dmin = halfToFloat(dminBits);
  for (let j = 0; j < 8; j++) {
    const dj = d * sc[j];
    if (!dj) continue;
    const mj = dmin * mn[j];
    for (let i = 0; i < 32; i++) levels[32 * j + i] = Math.max(0, Math.min(15, nearestInt((x[32 * j + i] + mj) / dj)));
  }
  // Each 32-byte run holds two groups: the low nibbles one, the high nibbles the next.
  for (let j = 0, q = at + 16; j < 256; j += 64, q += 32) {
    for (let l = 0; l < 32; l++) out.setUint8(q + l, levels[j + l] | (levels[j + l + 32] << 4));
  }
};

// q6_K: 256 values in 16 groups of 16; x ≈ d·sc·(L − 32) with 8-bit signed sc and 6-bit L.
const encodeQ6_K: BlockEncoder = (x, out, at) => {
  const levels = new Int8Array(256);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let g = 0; g < 16; g++) {
    const scale = fitSymmetricScale(x.subarray(16 * g, 16 * g + 16), 32, levels.subarray(16 * g, 16 * g + 16));
    scales[g] = scale;
    if (Math.abs(scale) > maxAbsScale) {
      maxAbsScale = Math.abs(scale);
      maxScale = scale;
    }
  }
  const dAt = at + 128 + 64 + 16;
  if (maxAbsScale < 1e-15) {
    for (let i = 0; i < 210; i++) out.setUint8(at + i, 0);
    return;
  }
  const iscale = -128 / maxScale;
  const dBits = floatToHalf(1 / iscale);
  out.setUint16(dAt, dBits, true);
  const sc = new Int8Array(16);
  for (let g = 0; g < 16; g++) {
    sc[g] = Math.min(127, nearestInt(iscale * scales[g]));
    out.setInt8(at + 192 + g, sc[g]);
  }
  const d = halfToFloat(dBits);
  for (let g = 0; g < 16; g++) {
    const dg = d * sc[g];
    if (!dg) continue;
    for (let i = 0; i < 16; i++) levels[16 * g + i] = Math.max(-32, Math.min(31, nearestInt(x[16 * g + i] / dg))) + 32;
  }
  // Per 128 values: ql holds the low nibbles of values l and l+64 (bytes 0..31) and l+32, l+96
  // (bytes 32..63); qh holds the two high bits of all four.
  for (let j = 0, ql = at, qh = at + 128; j < 256; j += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const q1 = levels[j + l];
      const q2 = levels[j + l + 32];
      const q3 = levels[j + l + 64];
      const q4 = levels[j + l + 96];
      out.setUint8(ql + l, (q1 & 0xf) | ((q3 & 0xf) << 4));
      out.setUint8(ql + l + 32, (q2 & 0xf) | ((q4 & 0xf) << 4));
      out.setUint8(qh + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
};

const BLOCK_ENCODERS: Partial<Record<GgmlType, BlockEncoder>> = {
  [GgmlType.Q8_0]: encodeQ8_0,
  [GgmlType.Q4_0]: encodeQ4_0,
  [GgmlType.Q5_0]: encodeQ5_0,
  [GgmlType.Q4_K]: encodeQ4_K,
  [GgmlType.Q6_K]: encodeQ6_K,
};

/** Decode bytes of `type` back to float32 (for tests of the encoders; llama.cpp does this at load). */
export function decodeTensor(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const { size, bytes: blockBytes } = GGML_BLOCK[type];
  for (let b = 0; b < count / size; b++) {
    const at = b * blockBytes;
    const y = out.subarray(b * size, (b + 1) * size);
    switch (type) {
      case GgmlType.F32:
        y[0] = view.getFloat32(at, true);
        break;
      case GgmlType.F16:
        y[0] = halfToFloat(view.getUint16(at, true));
        break;
      case GgmlType.BF16:
        y[0] = new Float32Array(new Uint32Array([view.getUint16(at, true) << 16]).buffer)[0];
        break;
      case GgmlType.Q8_0: {
        const d = halfToFloat(view.getUint16(at, true));
        for (let i = 0; i < 32; i++) y[i] = view.getInt8(at + 2 + i) * d;
        break;
      }
      case GgmlType.Q4_0: {
        const d = halfToFloat(view.getUint16(at, true));
        for (let j = 0; j < 16; j++) {
          const q = view.getUint8(at + 2 + j);
          y[j] = ((q & 0xf) - 8) * d;
          y[j + 16] = ((q >> 4) - 8) * d;
        }
        break;
      }
      case GgmlType.Q5_0: {
        const d = halfToFloat(view.getUint16(at, true));
        const qh = view.getUint32(at + 2, true);
        for (let j = 0; j < 16; j++) {
          const q = view.getUint8(at + 6 + j);
          y[j] = (((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d;
          y[j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
        }
        break;
      }
      case GgmlType.Q4_K: {
        const d = halfToFloat(view.getUint16(at, true));
        const dmin = halfToFloat(view.getUint16(at + 2, true));
        const s = (i: number) => view.getUint8(at + 4 + i);
        const scaleMin = (j: number): [number, number] =>
          j < 4 ? [s(j) & 63, s(j + 4) & 63] : [(s(j + 4) & 0xf) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4)];
        for (let j = 0; j < 8; j += 2) {
          const [sc1, m1] = scaleMin(j);
          const [sc2, m2] = scaleMin(j + 1);
          for (let l = 0; l < 32; l++) {
            const q = view.getUint8(at + 16 + 16 * j + l);
            y[32 * j + l] = d * sc1 * (q & 0xf) - dmin * m1;
            y[32 * j + 32 + l] = d * sc2 * (q >> 4) - dmin * m2;
          }
        }
        break;
      }
      case GgmlType.Q6_K: {
        const d = halfToFloat(view.getUint16(at + 208, true));
        for (let n = 0; n < 2; n++) {
          const ql = at + 64 * n;
          const qh = at + 128 + 32 * n;
          const sc = at + 192 + 8 * n;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = view.getUint8(qh + l);
            const lo1 = view.getUint8(ql + l);
            const lo2 = view.getUint8(ql + l + 32);
            y[128 * n + l] = d * view.getInt8(sc + is) * (((lo1 & 0xf) | ((h & 3) << 4)) - 32);
            y[128 * n + l + 32] = d * view.getInt8(sc + is + 2) * (((lo2 & 0xf) | (((h >> 2) & 3) << 4)) - 32);
            y[128 * n + l + 64] = d * view.getInt8(sc + is + 4) * (((lo1 >> 4) | (((h >> 4) & 3) << 4)) - 32);
            y[128 * n + l + 96] = d * view.getInt8(sc + is + 6) * (((lo2 >> 4) | (((h >> 6) & 3) << 4)) - 32);
          }
        }
        break;
      }
    }
  }
  return out;
}
