// `npm run monitor -- --html FILE`: the same report as one self-contained page — per bot, runs and
// failures per hour (stacked bars), p50/p95 latency per hour (lines), failures by reason, the
// Medblocks endpoints, and the open dead-letters with the exact command that brings them back. No
// network: inline CSS and SVG, nothing fetched. Every number is the report's (the `--json` output);
// every text from outside (reasons, ids) is HTML-escaped.
import type { HourStats } from './analyse';
import type { BotReport, MonitorReport } from './monitor';

const CHART_WIDTH = 720;
const CHART_HEIGHT = 160;
const PADDING = 28;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);
}

const ms = (value: number | undefined): string => (value === undefined ? '–' : `${String(Math.round(value))} ms`);

/** Stacked bars per hour: successful runs grey, failures red, each bar carrying its numbers. */
function runsChart(bot: BotReport): string {
  const hours = bot.hourly;
  if (hours.length === 0) return '<p class="empty">No runs in the window.</p>';
  const max = Math.max(1, ...hours.map((h) => h.runs));
  const slot = (CHART_WIDTH - 2 * PADDING) / hours.length;
  const scale = (CHART_HEIGHT - 2 * PADDING) / max;
  const bars = hours
    .map((h, i) => {
      const x = PADDING + i * slot + slot * 0.1;
      const w = Math.max(1, slot * 0.8);
      const okHeight = (h.runs - h.failures) * scale;
      const failHeight = h.failures * scale;
      const base = CHART_HEIGHT - PADDING;
      const reasons = Object.entries(h.failuresByReason)
        .map(([r, n]) => `${String(n)} × ${r}`)
        .join(', ');
      return (
        `<g data-hour="${escapeHtml(h.hour)}" data-runs="${String(h.runs)}" data-failures="${String(h.failures)}">` +
        `<title>${escapeHtml(`${h.hour}:00 UTC: ${String(h.runs)} runs, ${String(h.failures)} failed${reasons ? ` (${reasons})` : ''}`)}</title>` +
        `<rect class="ok" x="${x.toFixed(1)}" y="${(base - okHeight).toFixed(1)}" width="${w.toFixed(1)}" height="${okHeight.toFixed(1)}"/>` +
        `<rect class="failed" x="${x.toFixed(1)}" y="${(base - okHeight - failHeight).toFixed(1)}" width="${w.toFixed(1)}" height="${failHeight.toFixed(1)}"/>` +
        '</g>'
      );
    })
    .join('');
  return chartFrame('runs', bot.name, `${String(max)} runs`, hours, bars);
}

/** p50 and p95 per hour as two lines. */
function latencyChart(bot: BotReport): string {
  const hours = bot.hourly.filter((h) => h.p95Ms !== undefined);
  if (hours.length === 0) return '';
  const max = Math.max(1, ...hours.map((h) => h.p95Ms ?? 0));
  const slot = (CHART_WIDTH - 2 * PADDING) / hours.length;
  const point = (h: HourStats, i: number, value: number | undefined): string =>
    `${(PADDING + i * slot + slot / 2).toFixed(1)},${(CHART_HEIGHT - PADDING - ((value ?? 0) * (CHART_HEIGHT - 2 * PADDING)) / max).toFixed(1)}`;
  const line = (series: 'p50' | 'p95'): string =>
    `<polyline class="${series}" data-series="${series}" data-values="${hours.map((h) => String(Math.round((series === 'p50' ? h.p50Ms : h.p95Ms) ?? 0))).join(' ')}" points="${hours
      .map((h, i) => point(h, i, series === 'p50' ? h.p50Ms : h.p95Ms))
      .join(' ')}"/>`;
  return chartFrame('latency', bot.name, ms(max), hours, line('p50') + line('p95'));
}

function chartFrame(kind: string, bot: string, top: string, hours: readonly HourStats[], body: string): string {
  const first = hours[0]?.hour ?? '';
  const last = hours.at(-1)?.hour ?? '';
  return (
    `<svg data-chart="${kind}" data-bot="${escapeHtml(bot)}" viewBox="0 0 ${String(CHART_WIDTH)} ${String(CHART_HEIGHT)}" width="${String(CHART_WIDTH)}" height="${String(CHART_HEIGHT)}" role="img">` +
    `<line class="axis" x1="${String(PADDING)}" y1="${String(CHART_HEIGHT - PADDING)}" x2="${String(CHART_WIDTH - PADDING)}" y2="${String(CHART_HEIGHT - PADDING)}"/>` +
    `<text x="${String(PADDING)}" y="${String(PADDING - 10)}">${escapeHtml(top)}</text>` +
    `<text x="${String(PADDING)}" y="${String(CHART_HEIGHT - 8)}">${escapeHtml(`${first}:00`)}</text>` +
    `<text x="${String(CHART_WIDTH - PADDING)}" y="${String(CHART_HEIGHT - 8)}" text-anchor="end">${escapeHtml(`${last}:00 UTC`)}</text>` +
    body +
    '</svg>'
  );
}

function botSection(bot: BotReport): string {
  const status = bot.issues.length > 0 || bot.failures > 0 ? 'attention' : 'ok';
  const reasons = Object.entries(bot.failuresByReason);
  return (
    `<section class="bot ${status}" data-bot="${escapeHtml(bot.name)}">` +
    `<h2>${escapeHtml(bot.name)} <span class="status">${status === 'ok' ? 'ok' : 'needs attention'}</span></h2>` +
    `<p><span data-field="runs">${String(bot.runs)}</span> runs, <span data-field="failures">${String(bot.failures)}</span> failed; p50 ${ms(bot.p50Ms)}, p95 ${ms(bot.p95Ms)}</p>` +
    runsChart(bot) +
    latencyChart(bot) +
    (reasons.length > 0
      ? `<table class="reasons"><tr><th>failure</th><th>count</th></tr>${reasons
          .map(([r, n]) => `<tr><td>${escapeHtml(r)}</td><td data-reason="${escapeHtml(r)}">${String(n)}</td></tr>`)
          .join('')}</table>`
      : '') +
    [...bot.issues, ...bot.warnings].map((i) => `<p class="issue">${escapeHtml(i)}</p>`).join('') +
    '</section>'
  );
}

/** The page. `generatedAt` is when the report was read (ISO). */
export function renderMonitorHtml(report: MonitorReport, generatedAt: string): string {
  const endpoints =
    report.endpoints === undefined
      ? '<p>Medblocks endpoints not checked (set MEDBLOCKS_API_KEY).</p>'
      : `<table class="endpoints"><tr><th>endpoint</th><th>event</th><th>bot</th><th>status</th><th>undelivered</th></tr>${report.endpoints
          .map(
            (e) =>
              `<tr data-endpoint="${escapeHtml(e.id)}"><td>${escapeHtml(e.id)}</td><td>${escapeHtml(e.event)}</td><td>${escapeHtml(e.bot)}</td><td>${escapeHtml(e.status)}</td><td>${String(e.undelivered)}</td></tr>`
          )
          .join('')}</table>`;
  const q = report.quarantined;
  const quarantined =
    q.total === 0
      ? '<p data-field="quarantined">No open dead-letters.</p>'
      : `<p><span data-field="quarantined">${String(q.total)}${q.more ? '+' : ''}</span> quarantined event(s) wait as open dead-letter Tasks. After fixing the cause: <code>npm run redeliver -- --quarantined</code></p>` +
        `<table><tr><th>reason</th><th>count</th></tr>${Object.entries(q.byReason)
          .map(([r, n]) => `<tr><td>${escapeHtml(r)}</td><td>${String(n)}</td></tr>`)
          .join('')}</table>`;
  const imports = report.imports;
  const importsHtml = `<p>Records imports: <span data-field="imports-failed">${String(imports.failed)}</span> failed, <span data-field="imports-in-progress">${String(imports.inProgress)}</span> in progress${imports.more ? ' (at least)' : ''}.${imports.failed > 0 ? ` See each Task's reason: <code>Task?code=urn:medblocks:code|records-import&amp;status=failed</code>` : ''}</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Medblocks bots — health since ${escapeHtml(report.since)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.status{font-size:12px;padding:2px 6px;border-radius:4px;background:#dfd}.attention .status{background:#fdd}
svg{display:block;margin:8px 0;background:#fafafa}rect.ok{fill:#9aa}rect.failed{fill:#d33}.axis{stroke:#888}
polyline{fill:none;stroke-width:2}.p50{stroke:#36c}.p95{stroke:#c63}text{font-size:11px;fill:#555}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.issue{color:#a00}
</style></head><body>
<h1>Medblocks bots — <span data-field="attention">${report.attention ? 'needs attention' : 'all good'}</span></h1>
<p>Window: since ${escapeHtml(report.since)}; Medplum ${escapeHtml(report.medplumVersion ?? 'version unknown')}; generated ${escapeHtml(generatedAt)}.</p>
${report.projectIssues.map((i) => `<p class="issue">${escapeHtml(i)}</p>`).join('')}
${report.bots.map(botSection).join('\n')}
<h2>Medblocks endpoints</h2>${endpoints}
<h2>Quarantined events</h2>${quarantined}
<h2>Records imports</h2>${importsHtml}
</body></html>
`;
}
