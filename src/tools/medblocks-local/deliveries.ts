// The local Medblocks' webhook deliveries, by Medblocks' published rules (contract ledger MB-D1,
// MB-D5): an event is recorded for every subscribed endpoint and sent, signed, to each active one;
// an attempt fails on any non-2xx answer or none within the deadline and is retried on the
// schedule; after the last attempt the endpoint is disabled. The signing and the schedule are the
// sender's (one implementation of the delivery rules). Every timer is cancelled by `close()`.
import { DELIVERY_DEADLINE_MS, MAX_RECORDED_RESPONSE_BYTES, RETRY_SCHEDULE_MS, signedRequest } from '../sender/sender';
import { iso } from './model';
import type { LocalDeliveryRecord, LocalMedblocksState, MedblocksEvent } from './model';

export class Deliveries {
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly controllers = new Set<AbortController>();
  private closed = false;

  constructor(
    private readonly state: LocalMedblocksState,
    /** How many times faster than real time the retry schedule runs. */
    private readonly timeScale: number,
    /** The `fetch` each attempt goes out through (the global one over HTTP; a test's in process). */
    private readonly send: typeof fetch = (input, init) => fetch(input, init)
  ) {}

  /** Records the event for every subscribed endpoint and starts its deliveries to the active ones. */
  emit(event: MedblocksEvent): void {
    this.state.bodies.set(event.id, JSON.stringify(event));
    for (const endpoint of this.state.endpoints.values()) {
      if (!endpoint.events.includes('*') && !endpoint.events.includes(event.type)) continue;
      const perEndpoint = this.state.deliveries.get(endpoint.id) ?? new Map<string, LocalDeliveryRecord>();
      this.state.deliveries.set(endpoint.id, perEndpoint);
      perEndpoint.set(event.id, {
        id: event.id,
        resource_type: 'event',
        webhook_endpoint_id: endpoint.id,
        type: event.type,
        api_version: endpoint.api_version,
        data: event['data'] ?? null,
        attempts: 0,
        next_attempt_at: null,
        delivered_at: null,
        last_status_code: null,
        last_response_body: null,
        last_redelivered_at: null,
        created_at: iso(this.state.now()),
      });
      if (endpoint.status === 'active') this.schedule(endpoint.id, event.id, 0);
    }
  }

  /** One attempt now, outside the schedule: what `POST /events/{id}/redeliver` starts (MB-6). */
  redeliver(endpointId: string, eventId: string): void {
    this.track(this.attempt(endpointId, eventId).then(() => undefined));
  }

  /** Resolves when no delivery attempt is pending or in flight. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  close(): void {
    this.closed = true;
    for (const [timer, release] of this.timers) {
      clearTimeout(timer);
      release(); // a cancelled attempt must not leave idle() waiting
    }
    this.timers.clear();
    for (const controller of this.controllers) controller.abort();
  }

  /** One signed POST; records its status and the start of its answer; the status, or null for none in time. */
  private async attempt(endpointId: string, eventId: string): Promise<number | null> {
    const endpoint = this.state.endpoints.get(endpointId);
    const record = this.state.deliveries.get(endpointId)?.get(eventId);
    const body = this.state.bodies.get(eventId);
    if (!endpoint || !record || body === undefined || this.closed) return null;
    const request = signedRequest({ body, secret: endpoint.secret }, this.state.now());
    const controller = new AbortController();
    this.controllers.add(controller);
    const timer = setTimeout(() => {
      controller.abort();
    }, DELIVERY_DEADLINE_MS);
    record.attempts += 1;
    let status: number | null;
    let text = '';
    try {
      const response = await this.send(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'medblocks-signature': request.header },
        body: request.body,
        signal: controller.signal,
        redirect: 'manual',
      });
      status = response.status;
      text = (await response.text()).slice(0, MAX_RECORDED_RESPONSE_BYTES);
    } catch {
      status = null;
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
    }
    record.last_status_code = status;
    record.last_response_body = status === null ? null : text;
    if (status !== null && status >= 200 && status < 300) {
      record.delivered_at = iso(this.state.now());
      record.next_attempt_at = null;
    }
    return status;
  }

  /** The `index`-th attempt of the schedule; after a failed last one, the endpoint is disabled. */
  private schedule(endpointId: string, eventId: string, index: number): void {
    if (this.closed) return;
    const record = this.state.deliveries.get(endpointId)?.get(eventId);
    if (!record) return;
    const wait = RETRY_SCHEDULE_MS[index] ?? 0;
    record.next_attempt_at = iso(this.state.now() + wait);
    let release: () => void = () => undefined;
    this.track(new Promise<void>((resolve) => (release = resolve)));
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(endpointId, eventId)
        .then(() => {
          this.afterAttempt(endpointId, eventId, index);
        })
        .finally(release);
    }, wait / this.timeScale);
    this.timers.set(timer, release);
  }

  private afterAttempt(endpointId: string, eventId: string, index: number): void {
    const current = this.state.deliveries.get(endpointId)?.get(eventId);
    const endpoint = this.state.endpoints.get(endpointId);
    if (!current || !endpoint || this.closed || current.delivered_at) return;
    if (index + 1 < RETRY_SCHEDULE_MS.length) {
      this.schedule(endpointId, eventId, index + 1);
    } else {
      current.next_attempt_at = null;
      endpoint.status = 'disabled';
      endpoint.updated_at = iso(this.state.now());
    }
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }
}
