// `KEY=VALUE` arguments (`--build-arg`, `config set`): parsed in one place, with the same error for both.
import { InvalidError } from "../core/errors.js";

export function parseKeyValues(pairs: readonly string[] | undefined, what: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      const shown = pair.length > 40 ? `${pair.slice(0, 40)}…` : pair;
      throw new InvalidError(`${what} ${JSON.stringify(shown)} must be KEY=VALUE`);
    }
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return values;
}
