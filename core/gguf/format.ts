// The constants of the GGUF file format (version 3) and of the ggml tensor types we write.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md. Tensor types: ggml.h (`enum ggml_type`)
// and the block layouts in ggml-common.h; file types: llama.h (`enum llama_ftype`).

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
/** Tensor data offsets are multiples of this (the `general.alignment` default). */
export const GGUF_ALIGNMENT = 32;

/** Metadata value types. */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor types this writer produces (values of `enum ggml_type`). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q5_0 = 6,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14,
  BF16 = 30,
}

/** Elements per block and bytes per block of each type (a plain float type is a block of one). */
export const GGML_BLOCK: Record<GgmlType, { size: number; bytes: number }> = {
  [GgmlType.F32]: { size: 1, bytes: 4 },
  [GgmlType.F16]: { size: 1, bytes: 2 },
  [GgmlType.BF16]: { size: 1, bytes: 2 },
  [GgmlType.Q8_0]: { size: 32, bytes: 2 + 32 }, // f16 scale, 32 × int8
  [GgmlType.Q4_0]: { size: 32, bytes: 2 + 16 }, // f16 scale, 32 × 4 bits
  [GgmlType.Q5_0]: { size: 32, bytes: 2 + 4 + 16 }, // f16 scale, 32 high bits, 32 × 4 low bits
  [GgmlType.Q4_K]: { size: 256, bytes: 2 + 2 + 12 + 128 }, // f16 d, f16 dmin, 8 × (6-bit scale, 6-bit min), 256 × 4 bits
  [GgmlType.Q6_K]: { size: 256, bytes: 128 + 64 + 16 + 2 }, // 256 × (4 low + 2 high bits), 16 × int8 scales, f16 d
};

export const GGML_TYPE_NAME: Record<GgmlType, string> = {
  [GgmlType.F32]: 'F32',
  [GgmlType.F16]: 'F16',
  [GgmlType.BF16]: 'BF16',
  [GgmlType.Q8_0]: 'Q8_0',
  [GgmlType.Q4_0]: 'Q4_0',
  [GgmlType.Q5_0]: 'Q5_0',
  [GgmlType.Q4_K]: 'Q4_K',
  [GgmlType.Q6_K]: 'Q6_K',
};

/** The file types we export, with their `general.file_type` value (`enum llama_ftype`). */
export const GGUF_FILE_TYPES = {
  f32: { ftype: 0, base: GgmlType.F32 },
  f16: { ftype: 1, base: GgmlType.F16 },
  bf16: { ftype: 32, base: GgmlType.BF16 },
  q8_0: { ftype: 7, base: GgmlType.Q8_0 },
  q4_0: { ftype: 2, base: GgmlType.Q4_0 },
  q4_k_m: { ftype: 15, base: GgmlType.Q4_K },
} as const;

export type GgufFileType = keyof typeof GGUF_FILE_TYPES;
export const GGUF_FILE_TYPE_NAMES = Object.keys(GGUF_FILE_TYPES) as [GgufFileType, ...GgufFileType[]];

/** Bytes a tensor of `columns` × `rows` elements takes in `type` (blocks run along the columns). */
export function tensorBytes(type: GgmlType, columns: number, rows: number): number {
  const block = GGML_BLOCK[type];
  if (columns % block.size !== 0) throw new Error(`a row of ${columns} values is not a whole number of ${GGML_TYPE_NAME[type]} blocks (${block.size})`);
  return (columns / block.size) * block.bytes * rows;
}
