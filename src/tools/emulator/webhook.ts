// Medplum's anonymous webhook route (packages/server/src/webhook/routes.ts and bots/execute.ts),
// as a function from an HTTP request to an HTTP answer:
//   unknown membership → 404; non-bot membership, membership without policy, bot without
//   publicWebhook → 403 with Medplum's exact texts; body parsed (raw text when Bot.rawBody, else
//   the parsed JSON; malformed JSON → 400 before the bot runs); the bot runs synchronously in the
//   vmcontext sandbox under its membership's AccessPolicy with the project secrets; an AuditEvent
//   is written (both by execute.ts, which the scheduled runs of scheduled.ts share); 200 with the returned value, or 400 with an OperationOutcome holding the thrown
//   message only (the console output goes to the AuditEvent). And, answered the same way, an
//   admin's `Bot/{id}/$execute` (handleExecute), which verify runs the records import through.
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { allOk, badRequest, ContentType, getStatus, notFound } from '@medplum/core';
import type { Binary, Bot, OperationOutcome, ProjectMembership } from '@medplum/fhirtypes';
import { EXECUTION_MESSAGES, executeBot } from './execute';
import type { ExecutionContext } from './execute';
import { findProjectMembership, SCHEDULED_MESSAGES } from './scheduled';
import type { BotExecutionResult } from './sandbox';
import { outcomeOfAnswer, outcomeOfConsole } from '../../runtime/summary';

export const MESSAGES = {
  notBot: 'ProjectMembership must be for a Bot resource',
  noPolicy: 'ProjectMembership must have an Access Policy',
  notPublic: 'Bot is not configured for public webhook access',
  unparsable: 'Content could not be parsed',
  botsDisabled: EXECUTION_MESSAGES.botsDisabled,
  vmContextDisabled: EXECUTION_MESSAGES.vmContextDisabled,
} as const;

/** Medplum's default JSON body limit is far above this; anything larger is not a Medblocks delivery. */
export const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

export interface WebhookRequest {
  readonly membershipId: string;
  /** Node's `req.headers`: names lower-cased, duplicates joined, as Medplum hands them to bots. */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Uint8Array;
}

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Uint8Array;
}

/** The shared execution context (execute.ts) plus the dev server's run log. */
export interface WebhookContext extends ExecutionContext {
  /** Called after each delivery (bot run or refusal before it), for the dev server's one-line log. */
  readonly onRun?: (run: WebhookRun) => void;
}

/** One delivery as `npm run dev` logs it: ids and outcomes only, never the payload. */
export interface WebhookRun {
  /** The bot's name; for a refusal before any bot ran, `membership <id>`. */
  readonly bot: string;
  readonly status: number;
  readonly success: boolean;
  readonly ms: number;
  /**
   * The bot's outcome from its console summary line (`processed`, `duplicate`, `stale`,
   * `quarantined:<reason>`, `rejected:<reason>`, `failed:<class>`), else from its answer; for a
   * refusal by the route itself, `refused:<status>`.
   */
  readonly outcome: string;
  /** The event id from the summary line, when the bot logged one. */
  readonly eventId?: string;
}

/** Handles one `POST /webhook/:membershipId` and reports it to `onRun`. Never throws. */
export async function handleWebhook(ctx: WebhookContext, req: WebhookRequest): Promise<HttpAnswer> {
  const started = Date.now();
  const { answer, run } = await handleWebhookRun(ctx, req);
  const ms = Date.now() - started;
  ctx.onRun?.(
    run
      ? { ...run, status: answer.status, ms }
      : {
          bot: `membership ${req.membershipId}`,
          status: answer.status,
          success: false,
          ms,
          outcome: `refused:${String(answer.status)}`,
        }
  );
  return answer;
}

const SUMMARY_EVENT_ID = /^medblocks .*?\bevt=(\S+)/m;

type RunReport = Omit<WebhookRun, 'status' | 'ms'>;

async function handleWebhookRun(
  ctx: WebhookContext,
  req: WebhookRequest
): Promise<{ answer: HttpAnswer; run?: RunReport }> {
  const startTime = new Date().toISOString();
  const { store } = ctx;

  const runAs = await store.repo
    .readResource<ProjectMembership>('ProjectMembership', req.membershipId)
    .catch(() => undefined);
  if (!runAs) {
    return { answer: outcomeAnswer(notFound) };
  }
  if (!runAs.profile.reference?.startsWith('Bot/')) {
    return { answer: textAnswer(403, MESSAGES.notBot) };
  }
  if (!runAs.access && !runAs.accessPolicy) {
    return { answer: textAnswer(403, MESSAGES.noPolicy) };
  }
  const bot = await store.repo.readReference<Bot>({ reference: runAs.profile.reference });
  if (!bot.publicWebhook) {
    return { answer: textAnswer(403, MESSAGES.notPublic) };
  }

  // A modelled server CPU (server-work.ts) serves the run itself first: request, sandbox, bot code, AuditEvent.
  await store.cores?.run();
  const ran = await parseAndExecute(ctx, { bot, runAs, rawBody: bot.rawBody === true }, req, startTime);
  if (!ran.result) return { answer: ran.answer };
  const { answer, result } = ran;
  const body = typeof answer.body === 'string' ? answer.body : '';
  const eventId = SUMMARY_EVENT_ID.exec(result.logResult)?.[1];
  return {
    answer,
    run: {
      bot: bot.name ?? bot.id,
      success: result.success,
      outcome: outcomeOfConsole(result.logResult) ?? outcomeOfAnswer(answer.status, body),
      ...(eventId ? { eventId } : {}),
    },
  };
}

/** One `POST /fhir/R4/Bot/{id}/$execute`, as the authenticated FHIR route hands it over. */
export interface ExecuteRequest {
  readonly botId: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Uint8Array;
}

/**
 * Medplum's `$execute` (server `fhir/operations/execute.ts`, `bots/utils.ts`) for an admin who runs a
 * bot by hand: the bot as its own membership (one without is refused here, where Medplum would fall
 * back to the caller's; `runAsUser` is not modelled), the body as input, answered as a webhook run
 * is (ANS-1, ANS-2; EXEC-1). It is how `npm run verify` runs the records import once instead of
 * waiting for its cron job.
 */
export async function handleExecute(ctx: ExecutionContext, req: ExecuteRequest): Promise<HttpAnswer> {
  const startTime = new Date().toISOString();
  const bot = (await ctx.store.repo.readResource<Bot>('Bot', req.botId).catch(() => undefined)) as
    (Bot & { id: string }) | undefined;
  if (!bot) return outcomeAnswer(notFound);
  const runAs = await findProjectMembership(ctx, bot.meta?.project ?? '', `Bot/${bot.id}`);
  if (!runAs) return outcomeAnswer(badRequest(SCHEDULED_MESSAGES.noMembership));
  return (await parseAndExecute(ctx, { bot, runAs, rawBody: false }, req, startTime)).answer;
}

/**
 * The body parsed as Medplum's parser does (a malformed one refused before any code runs), then
 * the bot run and its answer: what the webhook route and `$execute` share.
 */
async function parseAndExecute(
  ctx: ExecutionContext,
  run: { readonly bot: Bot & { id: string }; readonly runAs: ProjectMembership; readonly rawBody: boolean },
  req: { readonly headers: WebhookRequest['headers']; readonly body: Uint8Array },
  startTime: string
): Promise<{ answer: HttpAnswer; result?: BotExecutionResult }> {
  const contentType = headerValue(req.headers['content-type']) ?? '';
  let input: unknown;
  try {
    input = parseBody(req.body, contentType, headerValue(req.headers['content-encoding']), run.rawBody);
  } catch {
    return { answer: outcomeAnswer(badRequest(MESSAGES.unparsable)) };
  }
  const { result } = await executeBot(ctx, {
    bot: run.bot,
    runAs: run.runAs,
    input,
    contentType,
    headers: req.headers,
    traceId: randomUUID(),
    requestTime: startTime,
  });
  return { answer: answerFor(result, contentType), result };
}

/**
 * The body a bot receives. JSON content types: the original UTF-8 text when `rawBody` is on,
 * otherwise the parsed value; malformed JSON is refused either way, as Medplum's parser does.
 * Text content types arrive as strings; a gzip body is decompressed first.
 */
export function parseBody(
  body: Uint8Array,
  contentType: string,
  encoding: string | undefined,
  rawBody: boolean
): unknown {
  const bytes = encoding?.toLowerCase() === 'gzip' ? gunzipSync(body) : body;
  const text = new TextDecoder('utf-8').decode(bytes);
  const mime = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (isJsonType(mime)) {
    const stripped = text.replace(/^\uFEFF/, '');
    if (stripped.trim().length === 0) {
      return rawBody ? text : {};
    }
    if (!/^[ \t\r\n]*[{[]/.test(stripped)) {
      throw new Error('not a JSON object or array');
    }
    const parsed: unknown = JSON.parse(stripped);
    return rawBody ? text : parsed;
  }
  if (mime === 'application/x-www-form-urlencoded') {
    return Object.fromEntries(new URLSearchParams(text));
  }
  return text;
}

function isJsonType(mime: string): boolean {
  return mime === 'application/json' || mime === ContentType.FHIR_JSON || mime.endsWith('+json');
}

/**
 * Medplum: a returned value → 200 with it; nothing → 200 "All OK"; failure → the normalised error
 * as an OperationOutcome (`application/fhir+json`): 400 with the thrown message only for an Error,
 * the outcome's own status for an OperationOutcomeError (a 409 conflict stays 409), never the
 * console output (ANS-1, observed on 5.1.29). The console output goes to the AuditEvent only.
 */
function answerFor(result: BotExecutionResult, requestContentType: string): HttpAnswer {
  const contentType = responseContentType(requestContentType);
  if (!result.success) {
    const outcome = result.errorOutcome ?? badRequest('Bot execution failed');
    return outcomeAnswer(outcome, getStatus(outcome), ContentType.FHIR_JSON);
  }
  const value = result.returnValue;
  if (isBinary(value)) {
    return {
      status: 200,
      contentType: value.contentType,
      body: decodeBase64(value.data ?? ''),
    };
  }
  if (value === undefined) {
    return outcomeAnswer(allOk, 200, contentType);
  }
  if (typeof value === 'string') {
    return { status: 200, contentType, body: value };
  }
  if (typeof value === 'number') {
    return { status: 200, contentType, body: String(value) };
  }
  return { status: 200, contentType, body: JSON.stringify(value) };
}

/** Text and HL7 requests are answered in kind; everything else as JSON. */
function responseContentType(requestContentType: string): string {
  const mirrored: string[] = [ContentType.TEXT, ContentType.HL7_V2];
  return mirrored.includes(requestContentType) ? requestContentType : ContentType.JSON;
}

function outcomeAnswer(
  outcome: OperationOutcome,
  status = getStatus(outcome),
  contentType: string = ContentType.JSON
): HttpAnswer {
  return { status, contentType, body: JSON.stringify(outcome) };
}

function textAnswer(status: number, text: string): HttpAnswer {
  return { status, contentType: 'text/html; charset=utf-8', body: text };
}

function isBinary(value: unknown): value is Binary {
  return typeof value === 'object' && value !== null && (value as Partial<Binary>).resourceType === 'Binary';
}

function decodeBase64(data: string): Uint8Array {
  return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
