// Runtime configuration apart from code: environment values and secrets per app, in numbered revisions with their
// own history. A version names the revision it runs with, so a config change is a new version with the same
// images and code, and a rollback brings back the configuration of the version it returns to (DV1). Secrets are
// sealed at rest, masked whenever configuration is shown, and reach only the function's environment.
import { InvalidError, NotFoundError } from "../core/errors.js";
import type { ConfigChange, ConfigRevisionRow, ConfigStore, StoredEntry } from "../store/config-store.js";
import type { SecretBox } from "./secret-box.js";

export const MASK = "••••••";
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_VALUE_BYTES = 32 * 1024;

export interface ConfigEntryView {
  key: string;
  value: string;
  secret: boolean;
}

export interface ConfigRevisionView {
  app: string;
  revision: number;
  deployment: string;
  parent: number | null;
  entries: ConfigEntryView[];
  changes: ConfigChange[];
  actor: string;
  at: number;
}

export interface ConfigEdit {
  set?: Record<string, string>;
  unset?: string[];
  /** The keys in `set` are secrets. */
  secret?: boolean;
}

export class RuntimeConfig {
  /** Revisions never change, so their opened environments can be kept. */
  private readonly envCache = new Map<string, { env: Record<string, string>; secrets: string[] }>();

  constructor(
    private readonly store: ConfigStore,
    private readonly box: SecretBox,
  ) {}

  /**
   * Writes the revision that applies `edit` to `base` (the revision the deployment runs now); null when the edit
   * changes nothing. Call inside the transaction that makes the version using it.
   */
  revise(app: string, deployment: string, base: number | null, edit: ConfigEdit, actor: string): ConfigRevisionRow | null {
    const set = edit.set ?? {};
    const unset = edit.unset ?? [];
    if (Object.keys(set).length === 0 && unset.length === 0) throw new InvalidError("give at least one KEY=VALUE to set or KEY to unset");
    for (const key of [...Object.keys(set), ...unset]) checkKey(key);
    for (const [key, value] of Object.entries(set)) {
      if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new InvalidError(`config value of ${key} is over ${MAX_VALUE_BYTES} bytes`, { key });
      if (value.includes("\0")) throw new InvalidError(`config value of ${key} contains a NUL byte`, { key });
    }
    const clash = unset.find((k) => k in set);
    if (clash) throw new InvalidError(`config key ${clash} is both set and unset in one change`, { key: clash });

    const before = base === null ? {} : this.require(app, base).entries;
    const entries: Record<string, StoredEntry> = { ...before };
    const changes: ConfigChange[] = [];
    for (const [key, value] of Object.entries(set)) {
      const old = before[key];
      if (old && !edit.secret && "value" in old && old.value === value) continue;
      if (old && edit.secret && "sealed" in old && this.box.open(old.sealed, context(app, key)) === value) continue;
      entries[key] = edit.secret ? { sealed: this.box.seal(value, context(app, key)) } : { value };
      changes.push({ key, op: "set", secret: Boolean(edit.secret) });
    }
    for (const key of unset) {
      if (!(key in entries)) continue;
      const wasSecret = "sealed" in entries[key]!;
      delete entries[key];
      changes.push({ key, op: "unset", secret: wasSecret });
    }
    if (changes.length === 0) return null;
    return this.store.insert({ app, deployment, parent: base, entries, changes, actor, at: Date.now() });
  }

  /** A revision as the API shows it: secrets masked. */
  view(app: string, revision: number | null, deployment = "main"): ConfigRevisionView {
    if (revision === null) return { app, revision: 0, deployment, parent: null, entries: [], changes: [], actor: "", at: 0 };
    return toView(this.require(app, revision));
  }

  history(app: string, deployment?: string): ConfigRevisionView[] {
    return this.store.list(app, deployment).map(toView);
  }

  /** The environment a version's functions get from its configuration revision, secrets opened. */
  env(app: string, revision: number | null): Record<string, string> {
    return this.opened(app, revision).env;
  }

  /** Every secret value of a revision, so that output can be scrubbed of them. */
  secretValues(app: string, revision: number | null): string[] {
    return this.opened(app, revision).secrets;
  }

  private opened(app: string, revision: number | null): { env: Record<string, string>; secrets: string[] } {
    if (revision === null) return { env: {}, secrets: [] };
    const cacheKey = `${app}\0${revision}`;
    let hit = this.envCache.get(cacheKey);
    if (!hit) {
      const env: Record<string, string> = {};
      const secrets: string[] = [];
      for (const [key, entry] of Object.entries(this.require(app, revision).entries)) {
        if ("sealed" in entry) {
          env[key] = this.box.open(entry.sealed, context(app, key));
          if (env[key]) secrets.push(env[key]);
        } else {
          env[key] = entry.value;
        }
      }
      hit = { env, secrets };
      this.envCache.set(cacheKey, hit);
    }
    return hit;
  }

  private require(app: string, revision: number): ConfigRevisionRow {
    const row = this.store.get(app, revision);
    if (!row) throw new NotFoundError(`app ${app} has no config revision ${revision}`, { app, revision });
    return row;
  }
}

/** Replaces every secret value in a text with the mask. */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (s.length >= 3) out = out.split(s).join(MASK);
  return out;
}

/** The same, through every string in a JSON-like value. */
export function scrubDeep(value: unknown, secrets: string[]): unknown {
  if (typeof value === "string") return scrub(value, secrets);
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, secrets)]));
  return value;
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new InvalidError(`config key ${JSON.stringify(key)} is invalid: use letters, digits and _ (not starting with a digit)`, { key });
  if (key.startsWith("SLIPWAY_")) throw new InvalidError(`config key ${key} is reserved: SLIPWAY_* variables are set by the runtime`, { key });
}

function context(app: string, key: string): string {
  return `config:${app}:${key}`;
}

function toView(r: ConfigRevisionRow): ConfigRevisionView {
  return {
    app: r.app,
    revision: r.revision,
    deployment: r.deployment,
    parent: r.parent,
    entries: Object.entries(r.entries)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, e]) => ("sealed" in e ? { key, value: MASK, secret: true } : { key, value: e.value, secret: false })),
    changes: r.changes,
    actor: r.actor,
    at: r.at,
  };
}
