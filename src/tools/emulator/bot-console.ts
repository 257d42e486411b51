// The console a bot sees inside the sandbox. Like Medplum's MockConsole, every method appends one
// line (arguments joined by a space) and nothing reaches the emulator's own stdout: what a bot
// logs becomes AuditEvent.outcomeDesc and, when it throws, the body of the 400 answer.

export class BotConsole {
  readonly messages: string[] = [];
  private readonly counts = new Map<string, number>();
  private readonly timers = new Map<string, number>();

  log(...params: unknown[]): void {
    this.messages.push(params.map(String).join(' '));
  }
  info(...params: unknown[]): void {
    this.log(...params);
  }
  warn(...params: unknown[]): void {
    this.log(...params);
  }
  error(...params: unknown[]): void {
    this.log(...params);
  }
  debug(...params: unknown[]): void {
    this.log(...params);
  }
  trace(...params: unknown[]): void {
    this.log(...params);
  }
  dir(...params: unknown[]): void {
    this.log(...params);
  }
  table(...params: unknown[]): void {
    this.log(...params);
  }
  assert(condition: unknown, ...params: unknown[]): void {
    if (!condition) this.log('Assertion failed:', ...params);
  }
  count(label = 'default'): void {
    const count = (this.counts.get(label) ?? 0) + 1;
    this.counts.set(label, count);
    this.log(`${label}: ${count}`);
  }
  time(label = 'default'): void {
    this.timers.set(label, Date.now());
  }
  timeEnd(label = 'default'): void {
    const start = this.timers.get(label);
    if (start !== undefined) {
      this.log(`${label}: ${Date.now() - start}ms`);
      this.timers.delete(label);
    }
  }

  toString(): string {
    return this.messages.join('\n');
  }
}
