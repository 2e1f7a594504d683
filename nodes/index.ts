// The built-in nodes, published as the `core` plugin. The registry loads this exactly like a
// third-party plugin; only the core plugin's node types are un-namespaced. Add new nodes to the list.
import { definePlugin, PLUGIN_API_VERSION } from '../core/plugin.js';
import { debugLog } from './debug-log.js';
import { datasetLoad } from './dataset-load.js';
import { datasetMap } from './dataset-map.js';
import { datasetSynthetic } from './dataset-synthetic.js';
import { modelLoad } from './model-load.js';
import { chatTemplate } from './chat-template.js';
import { loraApply } from './lora-apply.js';
import { rolloutGenerate } from './rollout-generate.js';
import { rewardFormat } from './reward-format.js';
import { rewardCorrectness } from './reward-correctness.js';
import { rewardLength } from './reward-length.js';
import { rewardFile } from './reward-file.js';
import { rewardScore } from './reward-score.js';
import { advantageGroup } from './advantage-group.js';
import { trainGrpo } from './train-grpo.js';
import { evalAccuracy } from './eval-accuracy.js';
import { exportAdapter } from './export-adapter.js';
import { exportMerged } from './export-merged.js';
import { exportGgufNode } from './export-gguf.js';
import { modelCreate } from './model-create.js';
import { trainSft } from './train-sft.js';
import { tfjsRolloutEngine } from '../engines/tfjs/index.js';
import { webgpuRolloutEngine } from '../engines/webgpu/index.js';

export default definePlugin({
  name: 'core',
  apiVersion: PLUGIN_API_VERSION,
  nodes: [debugLog, datasetLoad, datasetMap, datasetSynthetic, modelLoad, chatTemplate, loraApply, rolloutGenerate, rewardFormat, rewardCorrectness, rewardLength, rewardFile, rewardScore, advantageGroup, trainGrpo, evalAccuracy, exportAdapter, exportMerged, exportGgufNode, modelCreate, trainSft],
  rolloutEngines: [tfjsRolloutEngine, webgpuRolloutEngine],
});
