import { describe, expect, it } from 'vitest';
import { graphJsonSchema } from '../../core/graph/json-schema.js';
import { toyRegistry } from './toy-nodes.js';

describe('graph JSON Schema', () => {
  it('describes the file fields and each node type\'s config through if/then on `type` and `version`', () => {
    const schema = graphJsonSchema(toyRegistry()) as Record<string, any>;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.properties.backend.enum).toEqual(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
    const node = schema.properties.nodes.additionalProperties;
    expect(node.properties.type.enum).toContain('slow-sink');
    const rule = (type: string, version: number) =>
      node.allOf.find((r: any) => r.if.properties.type.const === type && JSON.stringify(r.if).includes(`"const":${version}`));
    const sink = rule('slow-sink', 1);
    // Issue 17 item 4: a typed field also takes a `${params.x}` / `${env.X}` reference (one shared definition).
    expect(sink.then.properties.with.properties.delayMs).toEqual({ default: 5, anyOf: [{ type: 'number', minimum: 0 }, { $ref: '#/$defs/reference' }] });
    expect(sink.then.properties.with.additionalProperties).toBe(false);
    // count has versions 1 and 2: the older one applies only when pinned; the latest also when unpinned.
    expect(rule('count', 1).if.required).toEqual(['type', 'version']);
    expect(rule('count', 2).if.anyOf[0]).toEqual({ not: { required: ['version'] } });
    expect(rule('count', 2).then.properties.with.required).toEqual(['n']);
  });
});
