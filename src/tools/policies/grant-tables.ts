// SECURITY.md's grant tables ("What a compromised bot can and cannot do, grant by grant"), one per
// bot, rendered from the reasons each grant carries in policies.ts — as the README's failure table
// is rendered from runtime/failures.ts. Each table sits below a comment line naming its bot
// (grantTableMarker); `npm run policies` rewrites what follows it up to the table's last row, and
// test/security.test.ts fails when SECURITY.md differs. The prose around the tables stays by hand.
import type { AccessPolicyResource } from '@medplum/fhirtypes';
import type { BotName } from '../../runtime/registry';
import { explainedPolicies } from './policies';
import type { ExplainedGrant, ExplainedPolicy, GrantKind } from './policies';

/**
 * The comment line above a bot's rendered heading and table: it tells a reader of SECURITY.md not to
 * edit below it by hand, and tells the writer where the bot's region starts.
 */
export function grantTableMarker(bot: BotName): string {
  return `<!-- The heading and table below are src/tools/policies/policies.ts' reasons (grantTableMarkdown('${bot}')); npm run policies writes them, a test keeps them equal. -->`;
}

const MARKER_PATTERN = /^<!-- .*\(grantTableMarkdown\('([a-z0-9-]+)'\)\).* -->$/;

/**
 * The first column but the resource type, from the grant itself: its interactions and criteria (and
 * that it hides fields), so that a table cannot name a reach the policy file does not have.
 */
function labelTail(grant: AccessPolicyResource): string {
  const query = grant.criteria === undefined ? [] : (grant.criteria.split('?')[1] ?? '').split('&');
  const notes = [...query.map((param) => `\`${param}\``), ...(grant.hiddenFields?.length ? ['`hiddenFields`'] : [])];
  const interactions = (grant.interaction ?? []).join(', ');
  return notes.length > 0 ? `${interactions} (${notes.join(', ')})` : interactions;
}

interface Row {
  readonly kind: GrantKind;
  readonly types: readonly string[];
  readonly tail: string;
  readonly why: string;
  readonly abuse: string;
  readonly confinement: string;
}

/** Grants of one kind that differ only by resource type (the imported records') share a row. */
function rowsOf(grants: readonly ExplainedGrant[]): Row[] {
  const rows: Row[] = [];
  for (const { kind, grant, why, abuse, confinement } of grants) {
    const tail = labelTail(grant);
    const last = rows.at(-1);
    if (
      last?.kind === kind &&
      last.tail === tail &&
      last.why === why &&
      last.abuse === abuse &&
      last.confinement === confinement
    ) {
      rows[rows.length - 1] = { ...last, types: [...last.types, grant.resourceType] };
    } else {
      rows.push({ kind, types: [grant.resourceType], tail, why, abuse, confinement });
    }
  }
  return rows;
}

/** "patient flow completed bot", from the policy's name: how a later table points back to it. */
const botCalled = (policy: ExplainedPolicy): string => policy.name.replace(/^Medblocks: /, '');

/** A cell, or "as the <bot>'s" when an earlier table has the same text for the same kind of grant. */
function cell(
  text: string,
  kind: GrantKind,
  column: 'abuse' | 'confinement',
  earlier: readonly ExplainedPolicy[]
): string {
  const same = earlier.find((p) => p.grants.some((g) => g.kind === kind && g[column] === text));
  return same ? `as the ${botCalled(same)}'s` : text;
}

const escaped = (text: string): string => text.replaceAll('|', '\\|');

/**
 * One bot's subsection of SECURITY.md's grant-by-grant section: its heading and table. A cell an
 * earlier bot's table already says (in registry order) reads "as the … bot's", so a reader meets
 * each long text once and a difference between two bots' grants stands out.
 */
export function grantTableMarkdown(bot: BotName): string {
  const policies = explainedPolicies();
  const index = policies.findIndex((p) => p.bot === bot);
  const policy = policies[index]?.policy;
  if (!policy) throw new Error(`no policy for ${bot}`);
  const earlier = policies.slice(0, index).map((p) => p.policy);
  const rows = rowsOf(policy.grants).map((row) =>
    [
      `${row.types.join(', ')}: ${row.tail}`,
      row.why,
      cell(row.abuse, row.kind, 'abuse', earlier),
      cell(row.confinement, row.kind, 'confinement', earlier),
    ]
      .map(escaped)
      .join(' | ')
  );
  return [
    `### ${bot}`,
    '',
    '| grant | why the bot needs it | what an attacker holding it could do | what confines it |',
    '| --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}

/** A rendered region: the marker's line, and the lines after it up to the table's last row. */
export interface GrantTableRegion {
  readonly bot: string;
  readonly marker: number;
  /** The index of the first line after the region. */
  readonly end: number;
}

/**
 * Where SECURITY.md's rendered tables are, in the order it has them: the writer replaces exactly
 * these lines, and the test compares them, leaving the hand-written prose between them alone.
 */
export function grantTableRegions(lines: readonly string[]): GrantTableRegion[] {
  const regions: GrantTableRegion[] = [];
  lines.forEach((line, marker) => {
    const bot = MARKER_PATTERN.exec(line)?.[1];
    if (bot === undefined) return;
    const tableStart = lines.findIndex((l, i) => i > marker && l.startsWith('|'));
    let end = tableStart < 0 ? marker + 1 : tableStart;
    while (end < lines.length && lines[end]?.startsWith('|')) end += 1;
    regions.push({ bot, marker, end });
  });
  return regions;
}

/**
 * SECURITY.md with every bot's region rendered anew: a registered bot without one (a new event
 * type's) gets its region before the next bot's, or after the last; the text around them is kept.
 */
export function withGrantTables(security: string): string {
  const lines = security.split('\n');
  const regions = grantTableRegions(lines);
  if (regions.length === 0) throw new Error('SECURITY.md has no grant table marker');
  const bots = explainedPolicies().map((p) => p.bot);
  const out: string[] = [];
  let at = 0;
  const emit = (bot: BotName): void => {
    out.push(grantTableMarker(bot), '', grantTableMarkdown(bot));
  };
  const pending = bots.filter((bot) => !regions.some((r) => r.bot === bot));
  for (const region of regions) {
    out.push(...lines.slice(at, region.marker));
    const known = bots.find((bot) => bot === region.bot);
    // A missing bot's region goes before the region of the first bot after it.
    for (const bot of pending.filter((b) => known !== undefined && bots.indexOf(b) < bots.indexOf(known))) {
      emit(bot);
      out.push('');
      pending.splice(pending.indexOf(bot), 1);
    }
    if (known === undefined) out.push(...lines.slice(region.marker, region.end));
    else emit(known);
    at = region.end;
  }
  for (const bot of pending) {
    out.push('');
    emit(bot);
  }
  out.push(...lines.slice(at));
  return out.join('\n');
}
