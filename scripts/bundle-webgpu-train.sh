#!/usr/bin/env bash
# One self-contained ES module of the WebGPU train bench (bench/webgpu-train.ts) for a GPU machine that
# has node and the `webgpu` package (dawn.node) but not this repository: everything else is bundled.
#   scripts/bundle-webgpu-train.sh [OUT_DIR]   → OUT_DIR/webgpu-train.mjs, torch_fp16_gap.py, llama-tiny/ (default .carry)
# Run it there as `node webgpu-train.mjs --shape smollm2-135m ...` (see bench/webgpu-train.ts for flags);
# GRPO_TORCH_PEER=path/to/peer_torch_grpo.py adds the torch peer's figures and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.carry}"
mkdir -p "$out"
npx esbuild bench/webgpu-train.ts --bundle --platform=node --format=esm --target=node20 \
  --external:webgpu --outfile="$out/webgpu-train.mjs" --log-level=warning
# transformers' fp32-vs-fp16 gap on the llama-tiny fixture (the f16 tolerance): the script and its fixture.
cp scripts/torch_fp16_gap.py "$out/"
rm -rf "$out/llama-tiny" && cp -r test/fixtures/llama-tiny "$out/llama-tiny"
echo "$out/webgpu-train.mjs"
