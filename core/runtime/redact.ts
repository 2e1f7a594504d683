// `${env.X}` values stay out of the run's record. A graph may take a token or a private URL from the
// environment (`${env.API_KEY}`); the value goes where the graph puts it (a node's config), but every
// name and message on the metrics bus (metrics.jsonl, events.log, the progress lines, the terminal UI)
// and the final error have it replaced by the reference text `${env.X}`.
//
// Only values that can be secrets are replaced: 4 characters or more, and not a number or true/false
// (replacing `8` or `true` everywhere would garble every log while protecting nothing).

export type Redactor = (text: string) => string;

const PLAIN_SCALAR = /^(?:[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?|true|false|null)$/i;

/** A redactor for the env values a graph used (name → value); the identity when there are none worth hiding. */
export function envRedactor(values: Record<string, string>): Redactor {
  const secrets = Object.entries(values)
    .filter(([, value]) => value.length >= 4 && !PLAIN_SCALAR.test(value.trim()))
    .sort(([, a], [, b]) => b.length - a.length); // longest first: a value containing another is replaced whole
  if (secrets.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const [name, value] of secrets) if (out.includes(value)) out = out.split(value).join(`\${env.${name}}`);
    return out;
  };
}

/** Applies `redact` to every string inside a JSON-like value (keys included). */
export function redactDeep<T>(value: T, redact: Redactor): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)])) as T;
  }
  return value;
}
