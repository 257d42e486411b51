// What a Task kind is, as one value: its code, how its model is written onto a Task and read back,
// the stamp extensions it keeps beyond the frame's, how an event's report merges into it and, for
// the kinds a connection resolves, how it is resolved. Each kind's module (reconnect.ts,
// follow-up.ts, records-sync.ts) exports one; an event type names the kinds its bot writes, and the
// working set and the Task frame (../task.ts) only ever reach a kind through this interface — so no
// switch lists the kinds, and a bundle carries only the kinds its bot uses.
import type { Extension, Reference, Task } from '@medplum/fhirtypes';
import type { ConsentModel } from '../consent';
import type { EventStamp } from '../stamp';
import type { TaskCode } from '../systems';
import type { TaskModelBase, VisibleTaskState } from './parts';

/** The model of a Task of some kind: the frame's fields and the kind's code. */
export interface KindedTaskModel extends TaskModelBase {
  readonly kind: TaskCode;
}

/** What a kind's merge may ask of the delivery it runs in (the working set implements it). */
export interface MergeContext {
  /** The event being applied. */
  readonly stamp: EventStamp;
  /** The EHR's name when an Organization in the read batch names the source. */
  sourceName(sourceId: string): string | undefined;
  /** Marks the delivery stale when the stored state was written by a newer event. */
  noteStaleIfOlder(applied: EventStamp): void;
}

/** A Consent's activation: the newest event that reported its connection active. */
export interface Activation {
  readonly model: ConsentModel;
  readonly stamp: EventStamp;
  readonly ref: Reference;
}

export interface TaskKind<M extends KindedTaskModel, R> {
  readonly code: M['kind'];
  /** The statuses a Task of this kind is written with (its policy allows these and no other). */
  readonly statuses: readonly NonNullable<Task['status']>[];
  /** The newest event applied to the Task: its `lastModified` and `last-applied-event`. */
  lastEvent(model: M): EventStamp;
  /**
   * The kind's own stamp extensions, beside the frame's `last-applied-event` (always the same
   * URLs: the frame replaces the stored ones by them). A kind is a literal of functions and literals
   * only: a constant read from another module would keep every kind in every bundle.
   */
  stamps(model: M): Extension[];
  /** What the Task shows. */
  encode(model: M): VisibleTaskState;
  /** Reads back what `encode` and `stamps` wrote; undefined when the Task is not a well-formed one of this kind. */
  decode(
    task: Task,
    base: TaskModelBase,
    lastEvent: EventStamp,
    readStamp: (url: string) => EventStamp | undefined
  ): M | undefined;
  /** The business key of the Task an event's report is about. */
  key(report: R): string;
  /** The model after this event's report: `current` is the stored (or already planned) one. */
  merge(current: M | undefined, report: R, context: MergeContext): M;
  /**
   * The model resolved by the connections in view (a newer activation of the same patient), or
   * undefined when nothing changes; absent for kinds no connection resolves.
   */
  resolve?(model: M, activations: readonly Activation[]): M | undefined;
}

/**
 * Any Task kind, as the frame and the working set hold them (the interface's methods are
 * bivariant, so every kind is one). Holders only ever pass a kind the models it decoded.
 */
export type AnyTaskKind = TaskKind<KindedTaskModel, never>;
