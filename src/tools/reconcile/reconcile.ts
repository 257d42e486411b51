// `npm run reconcile`'s side of reconciliation: the run itself is src/runtime/reconcile/reconcile.ts
// (shared with the scheduled medblocks-reconciler bot); here it gets the tools' Medblocks client and
// a progress line with an estimate while patients are read.
import { reconcile as reconcileCore } from '../../runtime/reconcile/reconcile';
import type { ReconcileOptions as CoreOptions, ReconcileSummary } from '../../runtime/reconcile/reconcile';
import { Progress } from '../progress';

export { formatReconcileSummary, snapshotStamp } from '../../runtime/reconcile/reconcile';
export type { ReconcileSummary } from '../../runtime/reconcile/reconcile';

export interface ReconcileOptions extends Omit<CoreOptions, 'onPatientDone' | 'onStart'> {
  /** How far the patients are read, with an estimate (the CLI: stderr); `print` by default. */
  readonly progress?: (line: string) => void;
  readonly now?: () => number;
}

/** A progress line at least this often while patients are read (and every 50 patients). */
const PROGRESS_EVERY_MS = 10_000;

/** Runs the reconciliation with progress lines; one line per connection that changes. */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileSummary> {
  const now = options.now ?? Date.now;
  const sayProgress = options.progress ?? options.print;
  let progress: Progress | undefined;
  let lastSaid = now();
  return reconcileCore({
    ...options,
    onStart: (total) => {
      progress = new Progress(total, now, 'patients');
      lastSaid = now();
    },
    onPatientDone: (done, total) => {
      if (progress && done < total && (done % 50 === 0 || now() - lastSaid >= PROGRESS_EVERY_MS)) {
        sayProgress(`… ${progress.describe(done)}`);
        lastSaid = now();
      }
    },
  });
}
