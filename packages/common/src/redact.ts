/** Values that must never reach a log line or an error message as they are. */

/** Variables whose value is a secret: never shown, not even in a configuration error. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['API_TOKEN', 'REDIS_SENTINEL_PASSWORD']);

/**
 * The URL with its password replaced by `***` (`mysql://tasks:***@mysql:3306/tasks`). Works on
 * text that does not parse as a URL too, so a malformed URL is never shown with its password.
 * The user information ends at the last `@` of the authority, as URL parsers read it, so a
 * password with an unescaped `@` in it is hidden whole.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^/?#]*@/i, '$1:***@');
}

/** How a configuration error shows the value of `name`. */
export function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return '""';
  if (SECRET_VARIABLES.has(name)) return '"[redacted]"';
  return JSON.stringify(redactUrl(value));
}
