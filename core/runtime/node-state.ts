// Per-node state for the UI: status, items in and out, and the depth of each input edge's queue.
import { BehaviorSubject, type Observable } from 'rxjs';

export type NodeStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

export interface EdgeQueueState {
  /** `producer.port`. */
  from: string;
  depth: number;
  capacity: number;
}

export interface NodeState {
  id: string;
  type: string;
  status: NodeStatus;
  itemsIn: number;
  itemsOut: number;
  /** Stream input edges by `port` (or `port[i]` for a multiple input). */
  queues: Record<string, EdgeQueueState>;
  error?: string;
}

export type NodeStates = Readonly<Record<string, NodeState>>;

export class NodeStateTracker {
  private states: Record<string, NodeState> = {};
  private readonly subject: BehaviorSubject<NodeStates>;
  readonly states$: Observable<NodeStates>;

  constructor(nodes: { id: string; type: string }[]) {
    for (const n of nodes) this.states[n.id] = { id: n.id, type: n.type, status: 'idle', itemsIn: 0, itemsOut: 0, queues: {} };
    this.subject = new BehaviorSubject<NodeStates>(this.states);
    this.states$ = this.subject.asObservable();
  }

  snapshot(): NodeStates {
    return this.states;
  }

  update(id: string, change: (state: NodeState) => Partial<NodeState>): void {
    const prev = this.states[id];
    if (!prev) return;
    // New objects on every change, so subscribers can compare by reference.
    this.states = { ...this.states, [id]: { ...prev, ...change(prev) } };
    this.subject.next(this.states);
  }

  complete(): void {
    this.subject.complete();
  }
}
