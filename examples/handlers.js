// An example handlers module: two task types beside the original's `simulated` work.
//
//   HANDLERS=./examples/handlers.js pnpm start
//   curl localhost:8000/tasks/ -H 'Content-Type: application/json' \
//     -d '{"type":"webhook","url":"https://example.com/hook","payload":{"hello":"world"}}'
//   curl localhost:8000/tasks/ -H 'Content-Type: application/json' -d '{"type":"primes","below":2000000}'
//
// The default export maps each type's name to its handler: a function (task, ctx) => result,
// or an object with `run` and the type's defaults. `task.data` is the task's stored body (the
// fields of the POST but `type` and `timeout_ms`). A thrown error fails the try; it is retried,
// then dead-lettered. `ctx.signal` aborts at the try's deadline and when the task is cancelled.
import { z } from 'zod';

/** @type {import('@tasks/sdk').Handlers} */
export default {
  // Calls a URL with a JSON payload: a 2xx completes the task, anything else fails the try.
  webhook: {
    schema: z.object({
      url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
      payload: z.unknown().optional(),
    }),
    timeoutMs: 10_000,
    maxAttempts: 5,
    backoffMs: 2_000,
    async run(task, ctx) {
      const res = await fetch(task.data.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(task.data.payload ?? null),
        signal: ctx.signal,
      });
      if (!res.ok) throw new Error(`${task.data.url} answered ${res.status}`);
      return { status: res.status };
    },
  },

  // CPU-bound: counts the primes below `below`. It runs in a worker thread, so a deadline or
  // a cancel terminates it even though it never looks at its signal.
  primes: {
    schema: z.object({ below: z.number().int().min(2).max(100_000_000) }),
    timeoutMs: 30_000,
    isolation: 'thread',
    run(task) {
      const { below } = task.data;
      const sieve = new Uint8Array(below);
      let count = 0;
      for (let n = 2; n < below; n++) {
        if (sieve[n]) continue;
        count++;
        for (let m = n * n; m < below; m += n) sieve[m] = 1;
      }
      return { below, primes: count };
    },
  },
};
