// The WebGPU engine as a plugin: registered beside the core nodes (core/graph/plugin-loader.ts
// builtinRegistry) the way any plugin registers engines; core and nodes import no engine.
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { webgpuRolloutEngine } from './index.js';

export default definePlugin({
  name: 'webgpu',
  apiVersion: PLUGIN_API_VERSION,
  nodes: [],
  rolloutEngines: [webgpuRolloutEngine],
});
