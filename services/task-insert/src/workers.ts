import cluster, { type Worker } from 'node:cluster';
import { failureBackoffMs, type Logger, onParentGone } from '@tasks/common';

/** The message the primary sends a worker to stop it (see `stopOnPrimaryRequest`). */
const STOP = 'stop';
/** A worker that lived at least this long before dying is replaced at once; quicker deaths back off. */
const STABLE_MS = 10_000;
/** How long a worker has to notice a Ctrl-C from its terminal itself before the primary asks it to stop. */
const SIGNAL_GRACE_MS = 200;

/**
 * The primary of `count` API workers (node:cluster): they share the port, the primary hands
 * each new connection to the next. A worker that dies is replaced (at once after a stable
 * run, with growing delays while they keep dying early). The first SIGTERM or SIGINT asks
 * every worker to stop gracefully and exits with 0 once they have (1 if one failed to); a
 * second one kills them and exits at once; the parent's going away (see onParentGone) stops
 * them as SIGTERM does. The primary holds no connection of its own, and exits once its workers
 * have.
 */
export function superviseWorkers(count: number, logger: Logger): void {
  const startedAt = new Map<Worker, number>();
  let quickDeaths = 0;
  let stopping = false;
  let failedToStop = false;

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
    startedAt.delete(worker);
    if (stopping) {
      if (code !== 0) failedToStop = true;
      if (startedAt.size === 0) finish();
      return;
    }
    quickDeaths = lived >= STABLE_MS ? 0 : quickDeaths + 1;
    const delay = quickDeaths === 0 ? 0 : failureBackoffMs(quickDeaths, 250);
    logger.error(
      { workerPid: worker.process.pid, code, signal, restartInMs: delay },
      'API worker exited; replacing it',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delay);
  });

  const finish = () => {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    forgetParent();
    logger.info({ exitCode: failedToStop ? 1 : 0 }, 'API workers stopped');
    if (failedToStop) process.exitCode = 1;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: killing the API workers');
      for (const worker of startedAt.keys()) worker.process.kill('SIGKILL');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal, workers: startedAt.size }, 'stopping the API workers');
    if (startedAt.size === 0) return finish();
    // A Ctrl-C reaches the workers from the terminal too: give them a moment to have seen it,
    // so that the primary's request does not count as their second signal.
    const delay = signal === 'SIGINT' ? SIGNAL_GRACE_MS : 0;
    setTimeout(() => {
      for (const worker of startedAt.keys()) if (worker.isConnected()) worker.send(STOP);
    }, delay);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const forgetParent = onParentGone(() => {
    if (!stopping) onSignal('SIGTERM');
  });

  logger.info({ workers: count }, 'starting API workers');
  for (let i = 0; i < count; i++) fork();
}

/**
 * In a worker: stop as on SIGTERM when the primary asks, unless a signal already reached
 * this process (a Ctrl-C at the terminal reaches every process of the group). Call
 * `leaveCluster` once stopped: the channel to the primary would keep the process alive.
 */
export function stopOnPrimaryRequest(): void {
  let signalled = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => (signalled = true));
  process.on('message', (message) => {
    if (message === STOP && !signalled) process.kill(process.pid, 'SIGTERM');
  });
}

/** In a worker that has stopped serving: closes its channel to the primary, so it can exit. */
export function leaveCluster(): void {
  if (cluster.isWorker && cluster.worker?.isConnected()) cluster.worker.disconnect();
}
