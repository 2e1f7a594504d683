#!/bin/sh
# The decode bench as one self-contained ES module for the GPU machine (engines/webgpu/NOTES.md, "Decode"):
# everything bundled except Dawn's `webgpu` package, which is carried beside it in .carry/node_modules.
set -e
cd "$(dirname "$0")/.."
npx esbuild bench/decode.ts --bundle --platform=node --format=esm --external:webgpu --outfile=.carry/decode.mjs
