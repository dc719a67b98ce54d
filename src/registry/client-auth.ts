// The credential side of the registry client: answers a registry's 401 challenge (Bearer: a token from the realm,
// configured credentials sent there as Basic; Basic: the credentials themselves) and caches tokens per scope until
// they expire. One instance per set of credentials, so a token never serves a caller that lacks them.
import { UnauthorizedError, UnavailableError } from "../core/errors.js";
import { parseWwwAuthenticate, type Challenge } from "./www-authenticate.js";

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface ClientAuthOptions {
  /** Credentials for a registry, by its normalised host name. */
  credentials: (registry: string) => RegistryCredentials | undefined;
  /** Whether plain http may carry tokens and credentials to this host (loopback, or configured as insecure). */
  allowHttp: (host: string) => boolean;
  timeoutMs: number;
  userAgent: string;
  now?: () => number;
}

interface CachedToken {
  header: string;
  expiresAtMs: number;
}

/** Docker's token spec: a token without `expires_in` lasts 60 seconds. */
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class ClientAuth {
  /** The scheme (and, for Bearer, the realm) each registry asked for last, so later scopes skip the 401 round trip. */
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;

  constructor(private readonly options: ClientAuthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The Authorization header to send before any challenge, when an earlier one tells what this registry wants. */
  async preemptive(registry: string, scope: string): Promise<string | undefined> {
    const challenge = this.challenges.get(registry);
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") return this.basicHeader(registry);
    // The remembered challenge named another request's scope; this one asks for its own.
    return (await this.token(registry, scope, scope, challenge, undefined)).header;
  }

  /**
   * Answers a 401: returns the Authorization header for one retry. `rejected` is the header the registry just
   * refused; a cached token that was refused is dropped and fetched again, refused credentials are final.
   */
  async answer(registry: string, scope: string, wwwAuthenticate: string | null, rejected: string | undefined): Promise<string> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate ?? "");
    const challenge = challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
    if (!challenge) {
      throw new UnauthorizedError(
        `registry ${registry} refused the request without a Bearer or Basic challenge (WWW-Authenticate: ${JSON.stringify(wwwAuthenticate ?? "")})`,
        { registry },
      );
    }
    this.challenges.set(registry, challenge);
    if (challenge.scheme === "basic") {
      const header = this.basicHeader(registry);
      if (header === rejected) throw this.refused(registry, `registry ${registry}`);
      return header;
    }
    const key = cacheKey(registry, scope);
    const cached = this.tokens.get(key);
    if (cached && cached.header === rejected) this.tokens.delete(key);
    // The challenge's scope is what the registry wants for this request (several arrive space-separated).
    const fresh = await this.token(registry, scope, challenge.params.scope ?? scope, challenge, rejected);
    if (fresh.header === rejected) throw this.refused(registry, `registry ${registry}`);
    return fresh.header;
  }

  private basicHeader(registry: string): string {
    const creds = this.options.credentials(registry);
    if (!creds) {
      throw new UnauthorizedError(`registry ${registry} asks for a username and password (Basic auth); configure credentials for ${registry}`, {
        registry,
      });
    }
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
  }

  /** The error for refused access, saying whose credentials (or that there were none) and what to do. */
  refused(registry: string, by: string): UnauthorizedError {
    const creds = this.options.credentials(registry);
    return new UnauthorizedError(
      creds
        ? `${by} refused the credentials configured for ${registry} (user ${JSON.stringify(creds.username)})`
        : `${by} refused anonymous access to ${registry}; configure credentials for ${registry} if the image is private`,
      { registry },
    );
  }

  /** A cached token for the scope, or one fetched now; concurrent callers share one request to the realm. */
  private async token(registry: string, scope: string, requested: string, challenge: Challenge, rejected: string | undefined): Promise<CachedToken> {
    const key = cacheKey(registry, scope);
    const cached = this.tokens.get(key);
    if (cached && cached.header !== rejected && cached.expiresAtMs > this.now()) return cached;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(registry, requested, challenge)
        .then((token) => {
          this.tokens.set(key, token);
          return token;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async fetchToken(registry: string, scopes: string, challenge: Challenge): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new UnauthorizedError(`registry ${registry} sent a Bearer challenge without a realm`, { registry });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UnauthorizedError(`registry ${registry} sent a Bearer realm that is not a URL: ${JSON.stringify(realm)}`, { registry, realm });
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.options.allowHttp(url.host))) {
      throw new UnauthorizedError(
        `registry ${registry} sends clients for tokens to ${url.origin}; Slipway only uses https for that (or http on loopback or an insecure host)`,
        { registry, realm },
      );
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const s of scopes.split(" ").filter(Boolean)) url.searchParams.append("scope", s);

    const headers: Record<string, string> = { "user-agent": this.options.userAgent, accept: "application/json" };
    const creds = this.options.credentials(registry);
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    const issuedMs = this.now();
    let res: Response;
    try {
      res = await fetch(url, { headers, redirect: "error", signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (err) {
      throw new UnavailableError(`cannot get a token for ${registry} from ${url.origin}: ${describeFetchError(err)}`, { registry, realm }, { cause: err });
    }
    const text = await res.text().catch(() => "");
    if (res.status === 401 || res.status === 403) throw this.refused(registry, `the token server ${url.origin}`);
    if (!res.ok) {
      throw new UnavailableError(`the token server ${url.origin} for ${registry} answered HTTP ${res.status}: ${text.slice(0, 200)}`, { registry, status: res.status });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new UnavailableError(`the token server ${url.origin} for ${registry} answered with something other than JSON`, { registry });
    }
    const token = typeof body.token === "string" && body.token ? body.token : typeof body.access_token === "string" ? body.access_token : "";
    if (!token) throw new UnavailableError(`the token server ${url.origin} for ${registry} answered without a token`, { registry });
    const lifetimeMs =
      (typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    // Measured from when we asked (no reliance on the server's clock), less a margin for the request in flight.
    return { header: `Bearer ${token}`, expiresAtMs: issuedMs + lifetimeMs - Math.min(10_000, lifetimeMs / 4) };
  }
}

function cacheKey(registry: string, scope: string): string {
  return `${registry} ${scope}`;
}

/** fetch's errors say "fetch failed"; the cause says what happened (ECONNREFUSED, ENOTFOUND, a timeout). */
export function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return "timed out";
  if (e.cause?.code) return `${e.cause.code}${e.cause.message ? ` (${e.cause.message})` : ""}`;
  return e.cause?.message ?? e.message ?? String(err);
}
