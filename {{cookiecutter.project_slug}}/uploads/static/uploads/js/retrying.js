/*
 * Which failures go away by themselves, and how long to wait before trying
 * again. The server's table of refusals (the HTTP contract) says which it may
 * retry: 503 (with Retry-After) and 507 are retried, and so are a lost
 * connection, a timeout and a gateway's 502/504; a refusal that cannot change
 * (400, 403, 404, 413, 415) is not.
 */

const TRANSIENT = new Set([0, 408, 500, 502, 503, 504, 507]);
const FIRST_DELAY_MS = 1000;
const LONGEST_DELAY_MS = 30_000;
// Retries stop after this long without a byte getting through: a server that
// is down for a deploy, a train in a tunnel, a laptop closed for a while.
export const GIVE_UP_MS = 15 * 60_000;

export function isTransient(status) {
  return TRANSIENT.has(status || 0);
}

// The wait before attempt number `failures` (0 for the first retry): doubling,
// at most LONGEST_DELAY_MS, never shorter than the server's Retry-After.
export function retryDelay(failures, retryAfterSeconds) {
  const backoff = Math.min(LONGEST_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
  const asked = Number(retryAfterSeconds) * 1000;
  return Number.isFinite(asked) && asked > backoff ? asked : backoff;
}
