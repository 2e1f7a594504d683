// The one place that imports TensorFlow.js. Everything else imports `tf` from here.
// `@tensorflow/tfjs` registers every gradient with tfjs-core (tfjs-core alone has none, and training
// would fail with "gradient not found"). Backends (wasm, webgpu, tfjs-node) attach to the same core.
import * as tf from '@tensorflow/tfjs';

export { tf };
