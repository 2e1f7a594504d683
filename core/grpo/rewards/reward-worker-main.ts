// Inside a reward worker thread: loads one user reward module and scores batches on request. The main
// thread times each request and terminates this thread when it overruns (see sandboxed.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { loadRewardModule } from './load.js';
import type { RewardRequest, RewardResponse, RewardWorkerData } from './sandboxed.js';

const port = parentPort!;
const data = workerData as RewardWorkerData;
const post = (message: RewardResponse) => port.postMessage(message);

try {
  const reward = await loadRewardModule(data.path, data.exportName);
  post({ type: 'ready', name: reward.name });
  port.on('message', async (request: RewardRequest) => {
    try {
      const values = await reward.score(request.args);
      post({ type: 'scored', id: request.id, values });
    } catch (error) {
      post({ type: 'failed', id: request.id, message: error instanceof Error ? error.message : String(error) });
    }
  });
} catch (error) {
  post({ type: 'load-failed', message: (error as Error).message });
}
