import { describe, expect, it } from 'vitest';
import { loadGraphText } from '../graph/load.js';
import { graphYaml, toyRegistry } from '../../test/engine/toy-nodes.js';
import { MetricsBus, type EventRecord } from './metrics-bus.js';
import type { MetricRecord } from '../ports.js';
import { envRedactor } from './redact.js';

describe('env values stay out of the run record', () => {
  it('the graph remembers the env values it read; the bus replaces them in metric names, messages and data', async () => {
    const text = graphYaml(`  src:\n    type: count\n    version: 1\n    with: { n: "\${env.COUNT}" }\n`, 'params:\n  token: ${env.API_TOKEN}\n');
    const { graph, diagnostics } = await loadGraphText(text, 'g.yaml', { registry: toyRegistry(), env: { API_TOKEN: 'sk-secret-123', COUNT: '3', UNUSED: 'other-secret' } });
    expect(diagnostics).toEqual([]);
    expect(graph!.envValues).toEqual({ API_TOKEN: 'sk-secret-123', COUNT: '3' });

    const bus = new MetricsBus(envRedactor(graph!.envValues!));
    const metrics: MetricRecord[] = [];
    const events: EventRecord[] = [];
    bus.metrics$.subscribe((m) => metrics.push(m));
    bus.events$.subscribe((e) => events.push(e));
    bus.publish('r', 1, { 'rewards/sk-secret-123/mean': 3 });
    bus.event('r', 'info', 'calling https://api/?key=sk-secret-123 3 times', { url: ['x sk-secret-123'] });
    expect(Object.keys(metrics[0].values)).toEqual(['rewards/${env.API_TOKEN}/mean']);
    expect(metrics[0].values['rewards/${env.API_TOKEN}/mean']).toBe(3); // numbers are left alone
    expect(events[0].message).toBe('calling https://api/?key=${env.API_TOKEN} 3 times'); // "3" (a number) is not a secret
    expect(events[0].data).toEqual({ url: ['x ${env.API_TOKEN}'] });
  });

  it('short values, numbers and booleans are not replaced', () => {
    const redact = envRedactor({ A: 'abc', B: '1e-5', C: 'true', D: 'longer-value' });
    expect(redact('abc 1e-5 true longer-value')).toBe('abc 1e-5 true ${env.D}');
  });
});
