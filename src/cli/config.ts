// The CLI's one reader of the environment: SLIPWAY_URL, SLIPWAY_TOKEN, SLIPWAY_DATA, SLIPWAY_CACHE (with
// XDG_CACHE_HOME and HOME for its default) and, for `slipway server` in crash tests only, SLIPWAY_FAULT (see
// server/faults.ts), validated once and passed down as options.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { nodeOs } from "../core/builtins.js";
import { InvalidError } from "../core/errors.js";
import { Client } from "../sdk/client.js";

export interface CliConfig {
  url: string;
  token: string | undefined;
  dataDir: string;
  /** Raw SLIPWAY_FAULT; `slipway server` parses it with server/faults.ts. */
  fault: string | undefined;
  /** The client's cache of hashes and bundles; null when SLIPWAY_CACHE=off. */
  cacheDir: string | null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const dataDir = resolve(env.SLIPWAY_DATA ?? ".slipway");
  let token = env.SLIPWAY_TOKEN?.trim() || undefined;
  if (!token) {
    try {
      token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    } catch {
      token = undefined;
    }
  }
  const cacheDir =
    env.SLIPWAY_CACHE === "off" ? null : resolve(env.SLIPWAY_CACHE || join(env.XDG_CACHE_HOME || join(env.HOME || nodeOs().homedir(), ".cache"), "slipway"));
  return { url: env.SLIPWAY_URL ?? "http://127.0.0.1:7700", token, dataDir, fault: env.SLIPWAY_FAULT?.trim() || undefined, cacheDir };
}

/** The client of the server at SLIPWAY_URL, which must be an http(s) address. */
export function clientFrom(config: CliConfig): Client {
  if (!/^https?:\/\/[^/]/.test(config.url) || !URL.canParse(config.url)) {
    throw new InvalidError(`SLIPWAY_URL ${JSON.stringify(config.url)} is not an http:// or https:// address, such as http://127.0.0.1:7700`);
  }
  return new Client({ url: config.url, token: config.token });
}
