/** Bounds of the read and operate routes' query parameters, shared by the routes and /openapi.json. */
export const LIST_LIMIT = { min: 1, max: 500, default: 50 } as const;
export const THROUGHPUT_MINUTES = { min: 1, max: 1_440, default: 30 } as const;
