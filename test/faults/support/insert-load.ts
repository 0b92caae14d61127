/**
 * Steady inserts over HTTP, as a client that follows the API's contract sends them: each task
 * with an Idempotency-Key of its own, and a 503 (or a connection the API dropped) retried with
 * the same key until it is answered 201. What each request was answered, and when, is kept.
 */

/** What a request was answered: an HTTP status, or `network` when no answer came. */
export interface Answer {
  status: number | 'network';
  /** ms since the epoch. */
  at: number;
}

export interface InsertRequest {
  key: string;
  message: string;
  answers: Answer[];
  /** The id of the 201, once answered. */
  id: number | null;
  /** Whether the 201 was a replay of a task an earlier try had stored (`Idempotent-Replayed`). */
  replayed: boolean;
}

/** How long a client keeps retrying one task. */
const GIVE_UP_MS = 60_000;
const RETRY_AFTER_MS = 200;
const TRANSIENT = new Set<number | 'network'>([503, 'network']);

export class InsertLoad {
  readonly requests: InsertRequest[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private sender: Promise<void> | null = null;

  constructor(
    private readonly port: number,
    private readonly perSecond: number,
    private readonly label: string,
  ) {}

  /** Starts sending `perSecond` new tasks a second, on a fixed schedule whatever the answers take. */
  start(): void {
    this.sender = this.send();
  }

  /** Stops sending new tasks and waits until every task sent is answered 201 or given up. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.sender;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async send(): Promise<void> {
    const started = Date.now();
    for (let n = 0; !this.stopped; n++) {
      const due = started + (n * 1_000) / this.perSecond;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const request: InsertRequest = {
        key: `${this.label}-${n}`,
        message: `${this.label} task ${n}`,
        answers: [],
        id: null,
        replayed: false,
      };
      this.requests.push(request);
      const done = this.insert(request).finally(() => this.inFlight.delete(done));
      this.inFlight.add(done);
    }
  }

  private async insert(request: InsertRequest): Promise<void> {
    const giveUpAt = Date.now() + GIVE_UP_MS;
    while (Date.now() < giveUpAt) {
      let status: number | 'network';
      let body: { id?: number } = {};
      let replayed = false;
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': request.key },
          body: JSON.stringify({ message: request.message, time: 0 }),
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        replayed = res.headers.get('idempotent-replayed') === 'true';
        body = (await res.json().catch(() => ({}))) as { id?: number };
      } catch {
        status = 'network';
      }
      request.answers.push({ status, at: Date.now() });
      if (status === 201) {
        request.id = Number(body.id);
        request.replayed = replayed;
        return;
      }
      if (!TRANSIENT.has(status)) return;
      await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
    }
  }

  /** Every answer, in the order they came. */
  answers(): Answer[] {
    return this.requests.flatMap((r) => r.answers).sort((a, b) => a.at - b.at);
  }

  /**
   * What a fault at `faultAt` cost the clients: how many answers were 503 or no answer, over
   * which window, and when inserts resumed (the first 201 after the last of those; the first
   * 201 after the fault when there were none), counted from the fault.
   */
  outage(faultAt: number): {
    unavailable: number;
    firstUnavailableMs: number | null;
    lastUnavailableMs: number | null;
    resumedMs: number | null;
  } {
    const answers = this.answers();
    const unavailable = answers.filter((a) => TRANSIENT.has(a.status));
    const last = unavailable.at(-1)?.at ?? faultAt;
    const resumed = answers.find((a) => a.status === 201 && a.at > last && a.at > faultAt);
    return {
      unavailable: unavailable.length,
      firstUnavailableMs: unavailable[0] ? unavailable[0].at - faultAt : null,
      lastUnavailableMs: unavailable.length > 0 ? last - faultAt : null,
      resumedMs: resumed ? resumed.at - faultAt : null,
    };
  }

  /** Answers that a client following the contract cannot act on (anything but 201, 503 or no answer). */
  unexpected(): { key: string; status: number | 'network' }[] {
    return this.requests.flatMap((r) =>
      r.answers
        .filter((a) => a.status !== 201 && !TRANSIENT.has(a.status))
        .map((a) => ({ key: r.key, status: a.status })),
    );
  }
}
