// Which ggml type each tensor gets in a file of a given type: the rules of llama.cpp's quantizer
// (llama-quant.cpp, `llama_tensor_get_type` and its shape fallback) for the file types we export. The
// k-quant mixes are what make q4_k_m better than a flat 4-bit file: the output matrix gets 6 bits, and
// attn_v and ffn_down get 6 bits in the first and last eighth of the layers and every third layer between.
import { GGML_BLOCK, GGUF_FILE_TYPES, GgmlType, type GgufFileType } from './format.js';

export interface TensorRole {
  /** GGUF tensor name (`blk.3.attn_v.weight`, `output.weight`, ...). */
  name: string;
  shape: number[];
  /** Decoder layer index, for `blk.N.*` tensors. */
  layer?: number;
}

export interface ModelShape {
  numLayers: number;
  /** The model has no `output.weight`: `token_embd.weight` is also the output matrix. */
  tiedOutput: boolean;
}

/** llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third layer between. */
export function useMoreBits(layer: number, numLayers: number): boolean {
  const eighth = Math.floor(numLayers / 8);
  return layer < eighth || layer >= Math.floor((7 * numLayers) / 8) || (layer - eighth) % 3 === 2;
}

const fits = (type: GgmlType, columns: number) => columns % GGML_BLOCK[type].size === 0;

/** The ggml type of one tensor in a file of `fileType`. */
export function tensorType(fileType: GgufFileType, tensor: TensorRole, model: ModelShape): GgmlType {
  const base = GGUF_FILE_TYPES[fileType].base;
  // Norms, biases and rope factors (1-D) stay float32 in every file type, as llama.cpp's converter writes them.
  if (tensor.shape.length < 2) return GgmlType.F32;
  if (base === GgmlType.F32 || base === GgmlType.F16 || base === GgmlType.BF16) return base;

  const columns = tensor.shape[tensor.shape.length - 1];
  const isOutput = tensor.name === 'output.weight' || (model.tiedOutput && tensor.name === 'token_embd.weight');
  let type: GgmlType = base;
  if (isOutput) {
    if (!fits(base, columns)) type = GgmlType.Q8_0;
    else if (base !== GgmlType.Q8_0) type = GgmlType.Q6_K;
  } else if (fileType === 'q4_k_m' && tensor.layer !== undefined && /\.(attn_v|ffn_down)\.weight$/.test(tensor.name)) {
    if (useMoreBits(tensor.layer, model.numLayers)) type = GgmlType.Q6_K;
  }
  return fallback(type, columns);
}

/**
 * A row length that is not a whole number of blocks takes a type with smaller blocks (llama.cpp's
 * `tensor_type_fallback`: q4_K → q5_0, q6_K → q8_0), and f16 when even those do not fit.
 */
function fallback(type: GgmlType, columns: number): GgmlType {
  if (fits(type, columns)) return type;
  const smaller = type === GgmlType.Q4_K ? GgmlType.Q5_0 : type === GgmlType.Q6_K ? GgmlType.Q8_0 : GgmlType.F16;
  return fits(smaller, columns) ? smaller : GgmlType.F16;
}
