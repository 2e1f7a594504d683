// Fidelity against transformers/peft on the cpu backend (the full-forward greedy loop, slow on cpu, for the base model only).
import { fidelitySuite } from './fidelity-suite.js';

fidelitySuite('cpu', ['chats']);
