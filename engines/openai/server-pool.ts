// A fleet of OpenAI-compatible servers behind one call: each request goes to the least-loaded server that
// is up (round-robin among equals); a connection error, an HTTP 5xx/408/429 or a timeout sends it to
// another server after a backoff, and the failed server rests for a while. A request settles exactly once:
// its attempt's fetch is aborted before the next attempt starts, so a late answer is never counted.
import { setMaxListeners } from 'node:events';

/** A failed HTTP exchange; `retryable` says whether another attempt (on another server) may succeed. */
export class ServerError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ServerPoolOptions {
  baseUrls: string[];
  /** Requests in flight per server at most. */
  maxInflight: number;
  /** Attempts per request after the first. */
  maxRetries: number;
  /** One attempt's limit. */
  timeoutMs: number;
  /** First backoff; doubled per failure (capped at 30 × this). */
  backoffMs: number;
  apiKey?: string;
  /** Told about failures that are retried (a warning, not an error). */
  onRetry?: (message: string) => void;
}

export class Server {
  inflight = 0;
  /** Consecutive failures (reset by a success). */
  failures = 0;
  /** Not picked before this time (ms, performance.now()). */
  restUntil = 0;
  /** Per-server state the engine keeps (which adapter it has loaded). */
  loadedAdapter: string | undefined;
  adapterLoading: Promise<void> | undefined;

  constructor(readonly url: string) {}
}

export class ServerPool {
  readonly servers: Server[];
  private turn = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly options: ServerPoolOptions) {
    if (options.baseUrls.length === 0) throw new Error('no base_urls given');
    this.servers = options.baseUrls.map((url) => new Server(url.replace(/\/+$/, '')));
  }

  /**
   * Runs `attempt` on a server, re-running it on another after a retryable failure (at most maxRetries
   * times). `what` names the request in errors.
   */
  async request<T>(what: string, attempt: (server: Server, signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const failed = new Set<Server>();
    let lastError: Error | undefined;
    for (let tries = 0; tries <= this.options.maxRetries; tries++) {
      signal?.throwIfAborted();
      if (tries > 0) await sleep(Math.min(this.options.backoffMs * 2 ** (tries - 1), this.options.backoffMs * 30), signal);
      // Prefer a server this request has not failed on; fall back to any once all have failed.
      const server = await this.acquire(failed.size < this.servers.length ? failed : new Set(), signal);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new ServerError(`no answer within ${this.options.timeoutMs} ms`, true)), this.options.timeoutMs);
      const onAbort = () => controller.abort(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const result = await attempt(server, controller.signal);
        server.failures = 0;
        return result;
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        // Errors from call() and the timeout are ServerErrors; anything else (a bad answer) is not retried.
        const error = err instanceof ServerError ? err : new ServerError((err as Error).message, false);
        if (!error.retryable) throw new Error(`${what}: ${server.url}: ${error.message}`);
        lastError = error;
        failed.add(server);
        server.failures++;
        server.restUntil = performance.now() + Math.min(this.options.backoffMs * 2 ** server.failures, this.options.backoffMs * 30);
        this.options.onRetry?.(`${what}: ${server.url}: ${error.message}; ${tries < this.options.maxRetries ? 'retrying on another server' : 'giving up'}`);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        controller.abort(); // the attempt is over: a late answer is dropped
        this.release(server);
      }
    }
    throw new Error(`${what}: failed on every attempt (${this.options.maxRetries + 1}) across ${this.servers.length} server(s); last error: ${lastError?.message}`);
  }

  /** POSTs (or GETs, without a body) JSON to `server`; a non-2xx answer is a ServerError. */
  async call(server: Server, path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    try {
      response = await fetch(`${server.url}${path}`, { method: body === undefined ? 'GET' : 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      throw asServerError(err, signal);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw asServerError(err, signal);
    }
    if (!response.ok) {
      const status = response.status;
      throw new ServerError(`${path} answered HTTP ${status}: ${text.slice(0, 300)}`, status >= 500 || status === 408 || status === 429, status);
    }
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      // vLLM's LoRA endpoints answer plain text ("Success: ...").
      return text;
    }
  }

  /**
   * The least-loaded server not in `avoid` that is not resting and has a free slot; waits for one (a slot
   * freed, a rest over) rather than go back to a server this request already failed on.
   */
  private async acquire(avoid: Set<Server>, signal?: AbortSignal): Promise<Server> {
    for (;;) {
      signal?.throwIfAborted();
      const now = performance.now();
      const usable = this.servers.filter((s) => !avoid.has(s));
      const ready = usable.filter((s) => s.inflight < this.options.maxInflight && s.restUntil <= now);
      if (ready.length > 0) {
        // Round-robin start, so equally loaded servers take turns.
        const start = this.turn++ % this.servers.length;
        let best: Server | undefined;
        for (let k = 0; k < this.servers.length; k++) {
          const s = this.servers[(start + k) % this.servers.length];
          if (ready.includes(s) && (!best || s.inflight < best.inflight)) best = s;
        }
        best!.inflight++;
        return best!;
      }
      const restEnds = usable.filter((s) => s.inflight < this.options.maxInflight).map((s) => s.restUntil);
      const freed = new Promise<void>((resolve) => this.waiters.push(resolve));
      await (restEnds.length > 0 ? Promise.race([freed, sleep(Math.max(1, Math.min(...restEnds) - now), signal)]) : freed);
    }
  }

  private release(server: Server): void {
    server.inflight--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/**
 * A signal that follows `signal` and takes any number of listeners (one call fans out into a request per
 * prompt, each listening for the abort).
 */
export function fanOutSignal(signal: AbortSignal | undefined): AbortSignal | undefined {
  if (!signal) return undefined;
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  if (signal.aborted) controller.abort(signal.reason);
  else signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  return controller.signal;
}

function asServerError(err: unknown, signal: AbortSignal): ServerError {
  if (err instanceof ServerError) return err;
  if (signal.aborted && signal.reason instanceof ServerError) return signal.reason;
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  // fetch's network failures (refused, reset, closed mid-answer) are TypeErrors with the reason as cause.
  return new ServerError(`${e.message}${cause ? ` (${cause})` : ''}`, true);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
