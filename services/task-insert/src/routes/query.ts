import type { Request } from 'express';
import { z } from 'zod';
import { HttpError } from '../http-errors.js';

/** Query parameters: how they are read, and how a bad one is told. */

/** A whole number written in digits only (query strings are text). */
export const digits = (min: number, max: number) =>
  z
    .string({ error: 'must be given once' })
    .regex(/^\d{1,16}$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );

export function parseQuery<T extends z.ZodType>(schema: T, req: Request): z.output<T> {
  const parsed = schema.safeParse(req.query);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => ({ field: k, message: 'is not a known parameter' }))
      : [{ field: issue.path.join('.') || 'query', message: issue.message }],
  );
  throw new HttpError(400, 'invalid_query', details.map((d) => `${d.field} ${d.message}`).join('; '), details);
}
