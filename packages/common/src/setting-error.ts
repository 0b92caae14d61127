import { isAccessDenied } from './mysql/errors.js';
import { redactUrl } from './redact.js';

/**
 * A setting that passed validation but that the world refused when the service used it: MySQL
 * denies MYSQL_URL's user, another process holds PORT. No retry can help; the setting (or the
 * server's grants) must change. Its message is one line for a person, naming the variable and
 * never a secret; a service reports it as it reports a configuration error, without a stack
 * trace, and exits 1.
 */
export class SettingError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'SettingError';
  }
}

/** What the server said, as the rest of a sentence. */
function reason(err: unknown): string {
  const { sqlMessage, message } = (err ?? {}) as { sqlMessage?: string; message?: string };
  const text = (sqlMessage ?? message ?? String(err)).split('\n')[0] ?? '';
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * `err` as a SettingError naming MYSQL_URL (its password hidden) when MySQL refused the
 * credentials or a privilege (see isAccessDenied); null for any other error.
 */
export function databaseSettingError(url: string, err: unknown): SettingError | null {
  if (!isAccessDenied(err)) return null;
  return new SettingError(
    'MYSQL_URL',
    `MYSQL_URL=${redactUrl(url)}: ${reason(err)}; check the user, password and privileges`,
  );
}

/** `err` as a SettingError naming PORT when another process listens on it; null for any other error. */
export function listenSettingError(err: unknown, host: string, port: number): SettingError | null {
  if ((err as { code?: string } | null)?.code !== 'EADDRINUSE') return null;
  return new SettingError(
    'PORT',
    `PORT ${port} is already in use: another process listens on ${host}:${port}; stop it or set PORT to a free port`,
  );
}
