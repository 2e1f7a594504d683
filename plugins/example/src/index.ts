// The example plugin: its node types register as `example/<type>`.
import { definePlugin, PLUGIN_API_VERSION } from 'grpoflow';
import { rewardLength } from './reward-length.js';
import { staticPrompts } from './static-prompts.js';
import { uppercase } from './uppercase.js';

export default definePlugin({
  name: 'example',
  apiVersion: PLUGIN_API_VERSION,
  nodes: [staticPrompts, uppercase, rewardLength],
});
