// What every MQTT.js flow script of the tests shares: a failure type the
// scripts report and exit 1 on, a check, and a bounded wait.

export const WAIT_MS = 10_000

export class Failure extends Error {}

export function check (condition, what) {
  if (!condition) throw new Failure(what)
}

// Resolves as `promise` does, or rejects with a Failure after `ms`.
export function within (promise, what, ms = WAIT_MS) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Failure(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
