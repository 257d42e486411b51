// Medplum bot: deletes dedupe markers older than the retention period (project secret
// MEDBLOCKS_MARKER_RETENTION_DAYS, default 90). Runs daily on a cron schedule that provisioning
// sets; it has no public webhook. See docs/going-live.md.
import { createSweeper } from '../src/runtime/sweeper/bot';

export const handler = createSweeper();
