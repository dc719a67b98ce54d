// API tokens: created with a name and scopes, shown once, kept only as a SHA-256 of the secret (the secrets are
// 192 random bits, so a fast hash is enough), revocable. Also holds the keys that sign short-lived registry tokens.
//
// Scopes (strings):
//   admin                               everything, on /api/v1 and /v2
//   repository:<pattern>:<actions>      pull, push, delete or * on matching repositories; <pattern> is a name, or a
//                                       prefix ending in "*" ("myapp/*", "*"). push includes pull.
//   registry:catalog:*                  every repository in the registry's catalog (any token may read the catalog,
//                                       which without this scope lists only the repositories the token may pull)
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { InvalidError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { MetadataStore } from "./metadata-store.js";

export interface ApiToken {
  id: string;
  name: string;
  scopes: string[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

type Row = { id: string; name: string; scopes: string; created_at: number; last_used_at: number | null; revoked_at: number | null };

const SCOPE_RE = /^(admin|registry:catalog:\*|repository:[a-z0-9._\-/]*\*?:(pull|push|delete|\*)(,(pull|push|delete|\*))*)$/;
const SECRET_RE = /^sw_[a-f0-9]{48}$/;
/** How stale last_used_at may get before a use refreshes it (keeps verification read-only on hot paths). */
const TOUCH_EVERY_MS = 60_000;

export function checkScopes(scopes: string[]): string[] {
  if (scopes.length === 0) throw new InvalidError("a token needs at least one scope (admin, repository:<name>:<actions>, registry:catalog:*)");
  for (const scope of scopes) {
    if (!SCOPE_RE.test(scope)) {
      throw new InvalidError(`token scope ${JSON.stringify(scope)} is invalid: use admin, registry:catalog:* or repository:<name or prefix*>:<pull,push,delete,*>`, {
        scope,
      });
    }
  }
  return scopes;
}

export function isTokenSecret(value: string): boolean {
  return SECRET_RE.test(value);
}

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export class TokenStore {
  constructor(private readonly meta: MetadataStore) {}

  /** Creates a token; the secret is returned here and never again. */
  create(name: string, scopes: string[]): { token: string; record: ApiToken } {
    const token = `sw_${randomBytes(24).toString("hex")}`;
    return { token, record: this.adopt(token, name, scopes) };
  }

  /** Records a secret made elsewhere (an admin token file written before tokens were kept here). */
  adopt(secret: string, name: string, scopes: string[]): ApiToken {
    if (!SECRET_RE.test(secret)) throw new InvalidError("a token secret is sw_ followed by 48 hex digits");
    checkScopes(scopes);
    const id = newId("tok");
    const now = Date.now();
    this.meta
      .statement("INSERT INTO api_tokens (id, name, secret_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(id, name, hashSecret(secret), JSON.stringify(scopes), now);
    return { id, name, scopes, createdAt: now, lastUsedAt: null, revokedAt: null };
  }

  /** The live token a secret belongs to, or null (unknown, malformed or revoked). */
  verify(secret: string): ApiToken | null {
    if (!SECRET_RE.test(secret)) return null;
    const hash = hashSecret(secret);
    const row = this.meta.statement("SELECT * FROM api_tokens WHERE secret_hash = ?").get(hash) as (Row & { secret_hash: string }) | undefined;
    // The lookup is by hash, so timing reveals nothing of the secret; compare anyway to keep the check explicit.
    if (!row || !timingSafeEqual(Buffer.from(row.secret_hash), Buffer.from(hash)) || row.revoked_at !== null) return null;
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at > TOUCH_EVERY_MS) {
      this.meta.statement("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").run(now, row.id);
    }
    return toToken(row);
  }

  /** Whether a secret was ever issued (live or revoked). */
  isKnown(secret: string): boolean {
    return this.meta.statement("SELECT 1 FROM api_tokens WHERE secret_hash = ?").get(hashSecret(secret)) !== undefined;
  }

  get(id: string): ApiToken | null {
    const row = this.meta.statement("SELECT * FROM api_tokens WHERE id = ?").get(id) as Row | undefined;
    return row ? toToken(row) : null;
  }

  list(): ApiToken[] {
    return (this.meta.statement("SELECT * FROM api_tokens ORDER BY created_at").all() as Row[]).map(toToken);
  }

  revoke(id: string): boolean {
    return this.meta.statement("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").run(Date.now(), id).changes > 0;
  }

  /** A named signing key, created on first use and kept so signed tokens outlive a restart. */
  signingKey(name: string): Buffer {
    const row = this.meta.statement("SELECT key FROM auth_keys WHERE name = ?").get(name) as { key: Buffer } | undefined;
    if (row) return row.key;
    this.meta.statement("INSERT OR IGNORE INTO auth_keys (name, key, created_at) VALUES (?, ?, ?)").run(name, randomBytes(32), Date.now());
    return (this.meta.statement("SELECT key FROM auth_keys WHERE name = ?").get(name) as { key: Buffer }).key;
  }
}

function toToken(row: Row): ApiToken {
  return {
    id: row.id,
    name: row.name,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
