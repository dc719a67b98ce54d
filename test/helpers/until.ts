// Polls until a condition holds: tests that wait on another process (a server's log, a file it writes, a delivery).

/** Resolves with `check`'s first truthy value; throws, naming `what`, once `timeoutMs` has passed without one. */
export async function until<T>(what: string, check: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
