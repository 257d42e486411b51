// Runs a bot bundle the way Medplum's vmcontext runtime does (packages/server/src/bots/vmcontext.ts):
// the code is wrapped with `const exports = {}; const module = {exports};`, evaluated with
// `vm.runInNewContext` in a context holding exactly vmcontext's globals, and its `exports.handler`
// is called with a MedplumClient built inside the sandbox. What the real sandbox lacks (the
// `Buffer`, `crypto`, timer and `atob`/`btoa` globals) is absent here too, so a bundle that
// relies on them fails locally before it fails in production.
//
// Which code runs (webhook.ts, ADM-13): after `$deploy` (e.g. by `npm run provision` against
// `npm run dev`), the Binary `Bot.executableCode` points at, exactly as a server runs it; a bot the
// emulator seeded from dist/ and nobody deployed runs its bundle file, re-read on every run. Both go
// through this same wrapper and globals.
import { builtinModules, createRequire } from 'node:module';
import vm from 'node:vm';
import type * as MedplumCore from '@medplum/core';
import type { OperationOutcome, ProjectSetting, Reference } from '@medplum/fhirtypes';
import { BotConsole } from './bot-console';

/** The default vmcontext timeout; like Medplum's, it only bounds synchronous work. */
export const DEFAULT_SANDBOX_TIMEOUT_MS = 10_000;

/** The only packages `require` resolves besides Node builtins; the server provides its own copy. */
const PROVIDED_PACKAGES = new Set(['@medplum/core']);

const hostRequire = createRequire(import.meta.url);

/** The emulator's own @medplum/core, loaded the way a bundle's `require('@medplum/core')` loads it. */
const core = hostRequire('@medplum/core') as typeof MedplumCore;

export interface SandboxEvent {
  readonly bot: Reference;
  readonly baseUrl: string;
  readonly accessToken: string;
  readonly requester?: Reference;
  readonly input: unknown;
  readonly contentType: string;
  readonly secrets: Record<string, ProjectSetting>;
  /** Undefined for a scheduled run: the cron worker runs outside any HTTP request. */
  readonly traceId?: string;
  /** The webhook request's headers; undefined for a scheduled run, as Medplum's cron worker passes none. */
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly defaultHeaders?: Record<string, string>;
}

export interface SandboxRun {
  /** The bundle's source, as deployed to `Bot.executableCode`. */
  readonly code: string;
  readonly event: SandboxEvent;
  /** The sandbox's `fetch` global; the bot's MedplumClient sends every FHIR request through it. */
  readonly fetch: typeof fetch;
  readonly timeoutMs?: number;
  /** Shown in stack traces instead of `evalmachine.<anonymous>`. */
  readonly filename?: string;
}

/** Medplum's BotExecutionResult: success, the captured console output, and what the handler returned. */
export interface BotExecutionResult {
  readonly success: boolean;
  readonly logResult: string;
  readonly returnValue?: unknown;
  /**
   * A failed run's error as the server normalises it (`normalizeOperationOutcome`): a thrown Error
   * becomes a 400 carrying its message only; a thrown OperationOutcomeError keeps its outcome and
   * status (ANS-1).
   */
  readonly errorOutcome?: OperationOutcome;
}

/**
 * The wrapper vmcontext puts around the bundle, kept as close to Medplum's text as possible:
 * top-level `exports`/`module`, a MedplumClient that sends through the sandbox's `fetch` with
 * trace headers, the handler's error logged as "Unhandled error: …" and rethrown.
 */
function wrap(code: string): string {
  return `
  const exports = {};
  const module = {exports};

  // Start user code
  ${code}
  // End user code

  (async () => {
    const { bot, baseUrl, accessToken, requester, contentType, secrets, traceId, headers, defaultHeaders } = event;
    const medplum = new MedplumClient({
      baseUrl,
      defaultHeaders,
      fetch: function(url, options = {}) {
        options.headers ||= {};
        options.headers['X-Trace-Id'] = traceId;
        options.headers['traceparent'] = traceId;
        return fetch(url, options);
      },
    });
    medplum.setAccessToken(accessToken);
    try {
      let input = event.input;
      if (contentType === ContentType.HL7_V2 && input) {
        input = Hl7Message.parse(input);
      }
      let result = await exports.handler(medplum, { bot, requester, input, contentType, secrets, traceId, headers });
      if (contentType === ContentType.HL7_V2 && result) {
        result = result.toString();
      }
      return result;
    } catch (err) {
      if (err instanceof Error) {
        console.log("Unhandled error: " + err.message + "\\n" + err.stack);
      } else if (typeof err === "object") {
        console.log("Unhandled error: " + JSON.stringify(err, undefined, 2));
      } else {
        console.log("Unhandled error: " + err);
      }
      throw err;
    }
  })();
  `;
}

/**
 * `require` inside the sandbox: Node builtins (with or without `node:`) and @medplum/core. Medplum's
 * resolves anything installed on the server; refusing the rest here catches a bundle that forgot
 * to bundle a dependency, which would fail on Lambda (only the bot layer's packages exist there).
 */
export function sandboxRequire(id: string): unknown {
  const bare = id.startsWith('node:') ? id.slice('node:'.length) : id;
  if (PROVIDED_PACKAGES.has(id) || builtinModules.includes(bare)) {
    return hostRequire(id);
  }
  const error = new Error(
    `Cannot find module '${id}' (the emulated vmcontext provides only node: builtins and @medplum/core; bundle everything else)`
  );
  (error as Error & { code: string }).code = 'MODULE_NOT_FOUND';
  throw error;
}

/** vmcontext gives bots a `process` with the host's identity and an empty environment. */
function processShim(): Record<string, unknown> {
  return {
    env: {},
    version: process.version,
    versions: process.versions,
    platform: process.platform,
    arch: process.arch,
    nextTick: process.nextTick.bind(process),
  };
}

/**
 * The globals of Medplum's vmcontext sandbox, and nothing else: the globals every version we know
 * has. A 5.1.x server (observed, ledger WH-4) has no Headers, Request, Response or web-stream
 * globals, which newer source adds; a bot that works with this set works on both.
 */
export function sandboxGlobals(run: Pick<SandboxRun, 'event' | 'fetch'>, botConsole: BotConsole): vm.Context {
  return {
    console: botConsole,
    fetch: run.fetch,
    require: sandboxRequire,
    process: processShim(),
    ContentType: core.ContentType,
    Hl7Message: core.Hl7Message,
    MedplumClient: core.MedplumClient,
    TextDecoder,
    TextEncoder,
    URL,
    URLSearchParams,
    event: run.event,
  };
}

/**
 * Executes one bot run. Never throws: like Medplum, a failure becomes `success: false` with the
 * console output (which then ends with the error) as `logResult`.
 */
export async function runInSandbox(run: SandboxRun): Promise<BotExecutionResult> {
  const botConsole = new BotConsole();
  const options: vm.RunningScriptOptions = {
    timeout: run.timeoutMs ?? DEFAULT_SANDBOX_TIMEOUT_MS,
    filename: run.filename,
  };
  try {
    const returnValue: unknown = await vm.runInNewContext(wrap(run.code), sandboxGlobals(run, botConsole), options);
    return { success: true, logResult: botConsole.toString(), returnValue };
  } catch (err) {
    botConsole.log('Error', core.normalizeErrorString(err));
    return { success: false, logResult: botConsole.toString(), errorOutcome: core.normalizeOperationOutcome(err) };
  }
}
