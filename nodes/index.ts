// The built-in nodes, published as the `core` plugin. The registry loads this exactly like a
// third-party plugin; only the core plugin's node types are un-namespaced. Add new nodes to the list.
import { definePlugin, PLUGIN_API_VERSION } from '../core/plugin.js';
import { debugLog } from './debug/log.js';

export default definePlugin({
  name: 'core',
  apiVersion: PLUGIN_API_VERSION,
  nodes: [debugLog],
});
