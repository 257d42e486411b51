// What a webhook answer says, in the bots' outcome vocabulary, whichever server gave it: a 200 is
// the bot's `{"status": …}`; a real Medplum answers a throwing bot with 400 and an OperationOutcome
// whose details.text is the thrown message only (never the console output, which holds the
// summary line), as the emulator does too. And, for what is not the bot's, the fix.
import { FAILURES, isFailureReason } from '../../runtime/failures';
import { outcomeOfAnswer } from '../../runtime/summary';

/** `processed`, `quarantined:<reason>`, `rejected:<reason>`, `failed:<reason>`, or `http:<status>` / `timeout` / `network` when the bot never answered. */
export function answerOutcome(status: number | undefined, body: string, error?: 'timeout' | 'network'): string {
  if (status === undefined) return error ?? 'network';
  const outcome = outcomeOfAnswer(status, body);
  if (outcome !== 'unknown' || (status >= 200 && status < 300)) return outcome;
  return `http:${String(status)}`;
}

/** The message in an answer: an OperationOutcome's first details.text or diagnostics, else the body. */
export function answerText(body: string): string {
  try {
    const parsed = JSON.parse(body) as {
      resourceType?: unknown;
      issue?: { details?: { text?: unknown }; diagnostics?: unknown }[];
    };
    if (parsed.resourceType === 'OperationOutcome') {
      const issue = parsed.issue?.[0];
      const text = issue?.details?.text ?? issue?.diagnostics;
      return typeof text === 'string' ? text : '';
    }
  } catch {
    // Not JSON: Medplum answers some refusals (403) in plain text.
  }
  return body;
}

const SERVER_HINTS: readonly [RegExp, string][] = [
  [
    /VM Context bots not enabled/i,
    'The bots run on vmcontext but the server does not enable it: set vmContextBotsEnabled: true in the server config, or npm run provision -- --runtime awslambda if it has Lambda.',
  ],
  [
    /^Bots not enabled/i,
    'The project lacks the "bots" feature: ask a super admin to add it (npm run provision checks this first).',
  ],
  [
    /Could not load credentials/i,
    'The bots run on awslambda but the server has no AWS: npm run provision -- --runtime vmcontext.',
  ],
  [/public webhook/i, 'Bot.publicWebhook is off: npm run provision.'],
  [/must have an Access Policy/i, 'The bot membership carries no AccessPolicy: npm run provision.'],
  [/must be for a Bot/i, 'The webhook URL names a membership that is not a bot: use the URL npm run provision prints.'],
];

/** The fix for an answer that was not what the story expected, when one is known. */
export function hintFor(
  outcome: string,
  expected: string,
  text: string,
  rawBodySupported: boolean | undefined
): string | undefined {
  for (const [pattern, hint] of SERVER_HINTS) if (pattern.test(text)) return hint;
  switch (outcome) {
    case 'rejected:no_secret_configured':
      return 'A bot has no signing secret: put MEDBLOCKS_WEBHOOK_SECRET_…=whsec_… in the environment or .env and run npm run provision, or set it in Project Admin → Secrets.';
    case 'rejected:body_not_raw':
      return rawBodySupported === false
        ? 'Medplum < 5.2 has no Bot.rawBody: upgrade, or set the project secret MEDBLOCKS_ALLOW_PARSED_BODY=true (see docs/going-live.md for its limits).'
        : 'Bot.rawBody is off: npm run provision.';
    case 'rejected:signature_mismatch':
      return expected === outcome
        ? undefined
        : 'The bot holds another signing secret than verify signed with: compare the project secret with the environment, or, on Medplum < 5.2, the parsed-body fallback could not reproduce the body.';
    case 'timeout':
      return 'No answer within Medblocks’ 5 s deadline: Medblocks would retry. A first run after deploy can be slow (Lambda cold start); run verify again.';
    case 'network':
      return 'The webhook URL did not answer: check MEDPLUM_BASE_URL and that the server is reachable from here.';
    default:
      if (outcome.startsWith('quarantined:')) {
        // Not the failure table's advice, which ends in `npm run redeliver`: Medblocks never sent
        // verify's events, so they cannot be redelivered, and verify closes their dead-letters.
        const reason = outcome.slice('quarantined:'.length);
        if (reason === 'patient_not_found') {
          return (
            'The project has MEDBLOCKS_CREATE_MISSING_PATIENTS=false and verify could not read its secrets to know it: ' +
            'with a project-admin client (Project Admin → Clients), verify creates its patient first.'
          );
        }
        const what = isFailureReason(reason) ? `${FAILURES[reason].meaning} ` : '';
        return `${what}Fix the cause, then run verify again (verify closed its own events' dead-letters: Medblocks never sent them).`;
      }
      return outcome.startsWith('failed:')
        ? 'A FHIR request of the bot failed: the bot’s AuditEvent (AuditEvent?entity=Bot/{id}&outcome=4) has its summary line; check its AccessPolicy.'
        : undefined;
  }
}
