// Who is calling and what they may do, for /api/v1 and /v2. Callers present a Slipway API token (Bearer, or as the
// password of Basic auth) or a short-lived registry token from the token endpoint. The registry side speaks the
// docker token protocol: a 401 carries `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client fetches
// GET <realm>?service=…&scope=… with Basic credentials (any username, an API token as password) and retries with
// the token it gets, so `docker login`, `podman login` and `skopeo --creds` work unchanged. The same endpoint takes
// POST, distribution's OAuth2 flow (containerd and BuildKit use it): `grant_type=password` with an API token as the
// password, and `grant_type=refresh_token` with a refresh token it issued for `access_type=offline`. A refresh token
// lives as long as its API token: revoking the API token ends both.
//
// The admin token is created on first start and written to <data>/admin-token (mode 0600).
import { createHmac, timingSafeEqual } from "node:crypto";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Access, AccessDecision, RegistryAuth } from "../registry/access.js";
import { scopeString } from "../registry/access.js";
import { isTokenSecret, type ApiToken, type TokenStore } from "../store/token-store.js";

export interface AuthSettings {
  /** Pulls without credentials (off by default). */
  anonymousPull: boolean;
  /** The service name in challenges and tokens. */
  service?: string;
  /** Lifetime of registry tokens. */
  tokenTtlSeconds?: number;
  /** Where clients reach the server (scheme://host:port); by default taken from each request's Host header. */
  publicUrl?: string;
  /** Path of the token endpoint (the registry plugin answers it at <prefix>/token). */
  tokenPath?: string;
}

export interface Principal {
  /** Who: the API token's name, or "anonymous". */
  subject: string;
  /** The API token behind the credential (null for anonymous). */
  tokenId: string | null;
  kind: "api-token" | "registry-token" | "anonymous";
  admin: boolean;
  /** What the credential grants: the API token's scopes, or the grants signed into a registry token. */
  scopes: string[];
}

export interface AdminToken {
  path: string;
  token: string;
  created: boolean;
}

type Grant = { type: string; name: string; actions: string[] };

const KEY_NAME = "registry-token";
/** Refresh tokens are signed with their own key, so neither kind of token can pass for the other. */
const REFRESH_KEY_NAME = "registry-refresh-token";

interface RefreshClaims {
  sub: string;
  tid: string;
  svc: string;
  iat: number;
}

export class Auth {
  private readonly key: Buffer;
  private readonly refreshKey: Buffer;
  private readonly service: string;
  private readonly ttlSeconds: number;
  private readonly tokenPath: string;
  readonly registry: RegistryAuth;

  constructor(
    private readonly tokens: TokenStore,
    private readonly settings: AuthSettings,
  ) {
    this.key = tokens.signingKey(KEY_NAME);
    this.refreshKey = tokens.signingKey(REFRESH_KEY_NAME);
    this.service = settings.service ?? "slipway";
    this.ttlSeconds = settings.tokenTtlSeconds ?? 900;
    this.tokenPath = settings.tokenPath ?? "/v2/token";
    this.registry = {
      check: (request, access) => this.check(request, access),
      challenge: (request, access, error) => this.challenge(request, access, error),
      catalogFilter: (request) => this.catalogFilter(request),
      tokenEndpoint: (request, reply, form) => (form ? this.oauthTokenEndpoint(request, reply, form) : this.tokenEndpoint(request, reply)),
    };
  }

  /**
   * The principal an Authorization header names: null when there is none; throws nothing. An invalid credential
   * is reported as `invalid`, so callers can tell "no credentials" from "wrong credentials".
   */
  authenticate(header: string | undefined): Principal | "invalid" | null {
    if (!header) return null;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (bearer) return this.fromApiToken(bearer) ?? this.fromRegistryToken(bearer) ?? "invalid";
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header)?.[1];
    if (basic) {
      const decoded = Buffer.from(basic, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      return (colon >= 0 ? this.fromApiToken(decoded.slice(colon + 1)) : null) ?? "invalid";
    }
    return "invalid";
  }

  /** For /api/v1: the API token a `Bearer` header carries, or null when it carries none that is valid. */
  verifyBearer(header: string | undefined): Principal | null {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
    return bearer ? this.fromApiToken(bearer) : null;
  }

  /**
   * Whether a principal may do every access listed. Every API token may read the catalog, which shows it only the
   * repositories it may pull (catalogFilter); a registry token needs the catalog in its grants, as it asked for.
   */
  allows(principal: Principal, access: Access[]): boolean {
    if (principal.admin) return true;
    const grants = principal.scopes.map(parseGrant).filter((g): g is Grant => g !== null);
    return access.every(
      (a) => (a.type === "registry" && principal.kind === "api-token") || a.actions.every((action) => grants.some((g) => grantCovers(g, a, action))),
    );
  }

  /** The catalog a caller sees: judged by the API token behind its credential, since a registry token asked only for the catalog. */
  private catalogFilter(request: FastifyRequest): "all" | ((repository: string) => boolean) {
    const principal = this.authenticate(request.headers.authorization);
    const holder = principal === null || principal === "invalid" ? null : this.apiTokenBehind(principal);
    if (!holder) return () => false;
    if (holder.admin || holder.scopes.includes("registry:catalog:*")) return "all";
    return (repository) => this.allows(holder, [{ type: "repository", name: repository, actions: ["pull"] }]);
  }

  /** A registry token stands for the API token it was issued for (null for anonymous or revoked ones). */
  private apiTokenBehind(principal: Principal): Principal | null {
    if (principal.kind !== "registry-token") return principal.kind === "api-token" ? principal : null;
    const token = principal.tokenId === null ? null : this.tokens.get(principal.tokenId);
    return token && token.revokedAt === null ? principalOf(token) : null;
  }

  private fromApiToken(secret: string): Principal | null {
    const token = this.tokens.verify(secret);
    return token ? principalOf(token) : null;
  }

  private check(request: FastifyRequest, access: Access[]): AccessDecision {
    const principal = this.authenticate(request.headers.authorization);
    if (principal === "invalid") return { allowed: false, reason: "unauthenticated", message: "the credentials are not valid (use a Slipway API token)" };
    if (principal === null) {
      const pullOnly = access.length > 0 && access.every((a) => a.type === "repository" && a.actions.every((x) => x === "pull"));
      if (this.settings.anonymousPull && pullOnly) return { allowed: true, subject: "anonymous" };
      return { allowed: false, reason: "unauthenticated", message: "authentication required" };
    }
    if (this.allows(principal, access)) return { allowed: true, subject: principal.subject };
    const message = `${principal.subject} may not ${access.map(scopeString).join(" ")}`;
    // A registry token can be swapped for one with more grants; an API token's scopes are what they are.
    return { allowed: false, reason: principal.kind === "api-token" ? "denied" : "insufficient-scope", message };
  }

  private realm(request: FastifyRequest): string {
    const base = this.settings.publicUrl ?? `${request.protocol}://${request.headers.host ?? "127.0.0.1"}`;
    return `${base.replace(/\/$/, "")}${this.tokenPath}`;
  }

  private challenge(request: FastifyRequest, access: Access[], error?: "invalid_token" | "insufficient_scope"): string {
    let header = `Bearer realm="${this.realm(request)}",service="${this.service}"`;
    if (access.length > 0) header += `,scope="${access.map(scopeString).join(" ")}"`;
    if (error) header += `,error="${error}"`;
    return header;
  }

  private async tokenEndpoint(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const principal = this.authenticate(request.headers.authorization);
    if (principal === "invalid" || (principal === null && !this.settings.anonymousPull)) {
      const message = principal === "invalid" ? "the credentials are not valid (use a Slipway API token as the password)" : "authentication required";
      return reply
        .status(401)
        .header("www-authenticate", `Basic realm="${this.service}"`)
        .header("content-type", "application/json")
        .send(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message }] }));
    }
    const holder: Principal = principal ?? { subject: "anonymous", tokenId: null, kind: "anonymous", admin: false, scopes: ["repository:*:pull"] };
    const query = request.query as Record<string, string | string[] | undefined>;
    const issued = this.issue(holder, ([] as string[]).concat(query.scope ?? []));
    return reply
      .status(200)
      .header("content-type", "application/json")
      .header("cache-control", "no-store")
      .send(JSON.stringify({ token: issued.token, access_token: issued.token, expires_in: this.ttlSeconds, issued_at: issued.issuedAt }));
  }

  /**
   * POST <prefix>/token with an OAuth2 form (RFC 6749 §4.3 and §6, as distribution's spec/auth/oauth.md profiles
   * them). Errors are RFC 6749's: 400 with `error` and `error_description`.
   */
  private async oauthTokenEndpoint(request: FastifyRequest, reply: FastifyReply, form: URLSearchParams): Promise<FastifyReply> {
    const refuse = (error: string, description: string) =>
      reply
        .status(400)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .send(JSON.stringify({ error, error_description: description }));
    if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(request.headers["content-type"] ?? "")) {
      return refuse("invalid_request", "the token request must be a form (Content-Type: application/x-www-form-urlencoded)");
    }
    const service = form.get("service");
    if (service !== this.service) return refuse("invalid_request", `service must be ${JSON.stringify(this.service)}, the service this registry's challenges name`);
    if (!form.get("client_id")) return refuse("invalid_request", "client_id is required (any name for the client, for auditing)");
    const grantType = form.get("grant_type");
    let holder: Principal | null;
    let refreshToken: string | undefined;
    if (grantType === "password") {
      const password = form.get("password");
      if (!form.get("username") || !password) return refuse("invalid_request", "grant_type=password needs username (any) and password (a Slipway API token)");
      holder = this.fromApiToken(password);
      if (!holder) return refuse("invalid_grant", "the password is not a valid Slipway API token (expired, revoked or mistyped)");
      if (form.get("access_type") === "offline") refreshToken = this.signRefresh(holder);
    } else if (grantType === "refresh_token") {
      const given = form.get("refresh_token");
      if (!given) return refuse("invalid_request", "grant_type=refresh_token needs refresh_token");
      holder = this.fromRefreshToken(given);
      if (!holder) return refuse("invalid_grant", "the refresh token is not valid here (its API token was revoked, or another registry issued it)");
      // A refresh grant hands back the same refresh token, never a new one.
      refreshToken = given;
    } else {
      return refuse("unsupported_grant_type", `grant_type ${JSON.stringify(grantType ?? "")} is not supported; use password or refresh_token`);
    }
    const issued = this.issue(holder, form.getAll("scope"));
    return reply
      .status(200)
      .header("content-type", "application/json")
      .header("cache-control", "no-store")
      .send(
        JSON.stringify({
          access_token: issued.token,
          scope: issued.access.map((g) => `${g.type}:${g.name}:${g.actions.join(",")}`).join(" "),
          expires_in: this.ttlSeconds,
          issued_at: issued.issuedAt,
          ...(refreshToken ? { refresh_token: refreshToken } : {}),
        }),
      );
  }

  /** A registry token for the scopes asked for (space-separated lists), cut down to what the holder may do. */
  private issue(holder: Principal, scopes: string[]): { token: string; access: Grant[]; issuedAt: string } {
    const requested = scopes.flatMap((s) => s.split(" ")).filter(Boolean);
    // Grant what was asked for, cut down to what the credential allows; the registry refuses the rest later.
    const access: Grant[] = [];
    for (const scope of requested) {
      const wanted = parseRequestedScope(scope);
      if (!wanted) continue;
      const granted = wanted.actions.filter((action) => this.allows(holder, [{ ...wanted, actions: [action] } as Access]));
      if (granted.length > 0) access.push({ type: wanted.type, name: wanted.name, actions: granted });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = sign("swr", this.key, { sub: holder.subject, tid: holder.tokenId, access, iat: now, exp: now + this.ttlSeconds });
    return { token, access, issuedAt: new Date(now * 1000).toISOString() };
  }

  private signRefresh(holder: Principal): string {
    const claims: RefreshClaims = { sub: holder.subject, tid: holder.tokenId!, svc: this.service, iat: Math.floor(Date.now() / 1000) };
    return sign("swf", this.refreshKey, claims);
  }

  /** The API token a refresh token stands for, with its current scopes; null if invalid or the token is revoked. */
  private fromRefreshToken(value: string): Principal | null {
    const claims = verifySigned<RefreshClaims>(value, "swf", this.refreshKey);
    if (!claims || claims.svc !== this.service || typeof claims.tid !== "string") return null;
    const token = this.tokens.get(claims.tid);
    return token && token.revokedAt === null ? principalOf(token) : null;
  }

  private fromRegistryToken(value: string): Principal | null {
    const claims = verifySigned<{ sub: string; tid: string | null; access: Grant[]; exp: number }>(value, "swr", this.key);
    if (!claims) return null;
    if (claims.exp * 1000 < Date.now()) return null;
    // Revoking the API token ends the registry tokens issued for it, without waiting for them to expire.
    if (claims.tid !== null) {
      const token = this.tokens.get(claims.tid);
      if (!token || token.revokedAt !== null) return null;
    }
    return {
      subject: claims.sub,
      tokenId: claims.tid,
      kind: "registry-token",
      admin: false,
      scopes: claims.access.map((g) => `${g.type}:${g.name}:${g.actions.join(",")}`),
    };
  }
}

/** A signed token: `<prefix>.<base64url JSON claims>.<HMAC-SHA256 of the claims part>`. */
function sign(prefix: string, key: Buffer, claims: object): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${prefix}.${payload}.${createHmac("sha256", key).update(payload).digest("base64url")}`;
}

/** The claims of a token made by sign() with this prefix and key, or null when it is not one. */
function verifySigned<T>(value: string, prefix: string, key: Buffer): T | null {
  const m = new RegExp(`^${prefix}\\.([A-Za-z0-9_-]+)\\.([A-Za-z0-9_-]+)$`).exec(value);
  if (!m) return null;
  const expected = createHmac("sha256", key).update(m[1]!).digest();
  const given = Buffer.from(m[2]!, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    return JSON.parse(Buffer.from(m[1]!, "base64url").toString("utf8")) as T;
  } catch {
    return null;
  }
}

function principalOf(token: ApiToken): Principal {
  return { subject: token.name, tokenId: token.id, kind: "api-token", admin: token.scopes.includes("admin"), scopes: token.scopes };
}

/** A scope string (an API token's, or one signed into a registry token) as a grant. */
function parseGrant(scope: string): Grant | null {
  const m = /^(repository|registry):(.+):([a-z*,]+)$/.exec(scope);
  return m ? { type: m[1]!, name: m[2]!, actions: m[3]!.split(",") } : null;
}

/** A scope a client asks the token endpoint for: `repository:<name>:<actions>` or `registry:catalog:*`. */
function parseRequestedScope(scope: string): { type: "repository" | "registry"; name: string; actions: string[] } | null {
  const m = /^(repository|registry):([^:]+):([a-z*,]+)$/.exec(scope);
  if (!m) return null;
  const actions = m[3]!.split(",").filter((a) => ["pull", "push", "delete", "*"].includes(a));
  return { type: m[1] as "repository" | "registry", name: m[2]!, actions };
}

function grantCovers(grant: Grant, access: Access, action: string): boolean {
  if (grant.type !== access.type) return false;
  const nameMatches = grant.name.endsWith("*") ? access.name.startsWith(grant.name.slice(0, -1)) : grant.name === access.name;
  if (!nameMatches) return false;
  if (grant.actions.includes("*") || grant.actions.includes(action)) return true;
  // Whoever may write a repository may read it.
  return action === "pull" && grant.actions.includes("push");
}

/**
 * The admin token: created on first start and written to <data>/admin-token (0600). A token file left by an
 * earlier start is kept (and recorded if the store does not know it yet); a missing file gets a new token.
 */
export async function ensureAdminToken(tokens: TokenStore, dataDir: string): Promise<AdminToken> {
  const path = join(dataDir, "admin-token");
  const existing = (await readFile(path, "utf8").catch(() => "")).trim();
  if (existing && tokens.verify(existing)) return { path, token: existing, created: false };
  if (existing && isTokenSecret(existing) && !tokens.isKnown(existing)) {
    tokens.adopt(existing, "admin", ["admin"]);
    return { path, token: existing, created: false };
  }
  // No file, or one whose token was revoked or is malformed: issue a new one in its place.
  const { token } = tokens.create("admin", ["admin"]);
  await writeFile(path, token + "\n", { mode: 0o600 });
  await chmod(path, 0o600);
  return { path, token, created: true };
}

export function createAuth(tokens: TokenStore, settings: AuthSettings): Auth {
  return new Auth(tokens, settings);
}
