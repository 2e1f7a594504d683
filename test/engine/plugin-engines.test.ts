// Plugins register rollout engines, architectures and chat templates the way they register nodes.
import { describe, expect, it } from 'vitest';
import type { RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import type { ModelEngineDefinition } from '../../core/engine/model-engine.js';
import { architectureTraits, resolveArchitecture } from '../../core/llm/architectures/index.js';
import { ChatTemplate } from '../../core/llm/chat-template.js';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugin.js';
import { NodeRegistry, PluginLoadError } from '../../core/registry.js';

const engine = (name: string): RolloutEngineDefinition => ({
  name,
  description: 'a test engine',
  threads: ['main'],
  create: () => Promise.reject(new Error('not started in this test')),
});

describe('plugin registration beyond nodes', () => {
  it('rollout engines: found by name, listed, and a second engine of the same name is refused', () => {
    const registry = new NodeRegistry();
    registry.register(definePlugin({ name: 'one', apiVersion: PLUGIN_API_VERSION, nodes: [], rolloutEngines: [engine('fast')] }), 'one.ts');
    expect(registry.engine('fast')?.def.description).toBe('a test engine');
    expect(registry.engine('fast')?.plugin).toBe('one');
    expect(registry.listEngines().map((e) => e.def.name)).toEqual(['fast']);
    expect(registry.clone().engine('fast')).toBeDefined();
    let error: unknown;
    try {
      registry.register(definePlugin({ name: 'two', apiVersion: PLUGIN_API_VERSION, nodes: [], rolloutEngines: [engine('fast')] }), 'two.ts');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PluginLoadError);
    expect((error as PluginLoadError).message).toMatch(/rollout engine `fast` from two.ts is already registered by one.ts/);
    expect(registry.hasPlugin('two')).toBe(false); // nothing of a refused plugin is registered
  });

  it('model engines: found by name, listed, copied with the registry; a duplicate or an invalid one is refused', () => {
    const modelEngine = (name: string) => ({ name, description: 'a test model engine', load: () => Promise.reject(new Error('unused')), policyTrainer: () => { throw new Error('unused'); } }) as unknown as ModelEngineDefinition;
    const registry = new NodeRegistry();
    registry.register(definePlugin({ name: 'one', apiVersion: PLUGIN_API_VERSION, nodes: [], modelEngines: [modelEngine('m')] }), 'one.ts');
    expect(registry.modelEngine('m')).toMatchObject({ plugin: 'one', origin: 'one.ts' });
    expect(registry.listModelEngines().map((e) => e.def.name)).toEqual(['m']);
    expect(registry.clone().modelEngine('m')).toBeDefined();
    expect(() => registry.register(definePlugin({ name: 'two', apiVersion: PLUGIN_API_VERSION, nodes: [], modelEngines: [modelEngine('m')] }), 'two.ts')).toThrow(
      /model engine `m` from two.ts is already registered by one.ts/,
    );
    expect(() => registry.register(definePlugin({ name: 'three', apiVersion: PLUGIN_API_VERSION, nodes: [], modelEngines: [{ name: 'bad' } as ModelEngineDefinition] }), 'three.ts')).toThrow(
      /a model engine of plugin `three` is not a valid ModelEngineDefinition/,
    );
    expect(registry.hasPlugin('two') || registry.hasPlugin('three')).toBe(false);
  });

  it('architectures and chat templates: a plugin adds them, loaders and `chat.template` find them by name', () => {
    const registry = new NodeRegistry();
    const family = { name: 'TinyTestForCausalLM', modelType: 'tiny-test', qkvBias: () => true, outputBias: () => false, mlpBias: () => false, qkNorm: true };
    const template = { name: 'test-chat', source: 'test', template: '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}', endOfTurn: '</s>' };
    registry.register(definePlugin({ name: 'family', apiVersion: PLUGIN_API_VERSION, nodes: [], architectures: [family], chatTemplates: [template] }), 'family.ts');
    expect(resolveArchitecture({ architectures: ['TinyTestForCausalLM'] }, 'config.json').traits).toBe(family);
    expect(resolveArchitecture({ model_type: 'tiny-test' }, 'config.json').name).toBe('TinyTestForCausalLM');
    expect(architectureTraits('LlamaForCausalLM')?.modelType).toBe('llama'); // the built-ins stay
    expect(ChatTemplate.builtin('test-chat').render([{ role: 'user', content: 'hi' }])).toBe('<user>hi');
    expect(ChatTemplate.builtinNames()).toContain('test-chat');
    // Another plugin naming the same family is refused, naming both.
    const other = { ...family };
    expect(() => new NodeRegistry().register(definePlugin({ name: 'again', apiVersion: PLUGIN_API_VERSION, nodes: [], architectures: [other] }), 'again.ts')).toThrow(
      /architecture TinyTestForCausalLM from plugin `again` \(again.ts\) is already registered by plugin `family` \(family.ts\)/,
    );
  });
});
