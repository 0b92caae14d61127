import { fileURLToPath } from 'node:url';
import { type RequestHandler, Router } from 'express';
import helmet from 'helmet';

/** `services/task-insert/public`, the same from `src/routes` and from `dist/routes`. */
export const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

/**
 * The dashboard: one static page whose script (a separate file, so the Content Security
 * Policy needs no 'unsafe-inline') reads /stats, /stats/throughput, /services, /dead-letters,
 * /tasks and /tasks/:id, retries failed tasks through POST /tasks/:id/redrive and
 * POST /dead-letters/redrive, and cancels a task through POST /tasks/:id/cancel. Served
 * with helmet's security headers, without `upgrade-insecure-requests` and HSTS: the API speaks
 * plain HTTP (TLS, when used, ends at a proxy in front of it).
 */
export function dashboardRoutes(): Router {
  const router = Router();
  const secure = helmet({
    contentSecurityPolicy: {
      directives: { styleSrc: ["'self'"], fontSrc: ["'self'"], upgradeInsecureRequests: null },
    },
    strictTransportSecurity: false,
  });
  const file =
    (name: string): RequestHandler =>
    (_req, res, next) => {
      res.sendFile(name, { root: PUBLIC_DIR, headers: { 'Cache-Control': 'no-cache' } }, (err) => {
        if (err) next(err);
      });
    };
  router.get('/', secure, file('index.html'));
  router.get('/dashboard.js', secure, file('dashboard.js'));
  router.get('/dashboard.css', secure, file('dashboard.css'));
  return router;
}
