// The tfjs engine as a plugin: its rollout engine and its model engine, registered beside the core
// nodes (core/graph/plugin-loader.ts builtinRegistry) the way any plugin registers engines.
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { tfjsRolloutEngine } from './index.js';
import { tfjsModelEngine } from './model-engine.js';

export default definePlugin({
  name: 'tfjs',
  apiVersion: PLUGIN_API_VERSION,
  nodes: [],
  rolloutEngines: [tfjsRolloutEngine],
  modelEngines: [tfjsModelEngine],
});
