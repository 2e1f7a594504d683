// Fidelity against transformers/peft on the wasm backend.
import { fidelitySuite } from './fidelity-suite.js';

fidelitySuite('wasm');
