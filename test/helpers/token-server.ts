// A Docker token server for tests (the `realm` of a Bearer challenge): issues RS256 JWTs that distribution's token
// auth accepts (x5c chain to the registry's rootcertbundle), optionally only to Basic credentials, and records every
// request so tests can count token fetches per scope.
import { execFileSync } from "node:child_process";
import { createPrivateKey, sign, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";

export interface SigningCert {
  keyPem: string;
  certPem: string;
  certPath: string;
}

/** A self-signed RSA certificate (it is its own root in the registry's rootcertbundle). */
export function makeSigningCert(dir: string): SigningCert {
  const keyPath = join(dir, "token.key");
  const certPath = join(dir, "token.crt");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", "/CN=slipway-test-token"],
    { stdio: "ignore" },
  );
  return { keyPem: readFileSync(keyPath, "utf8"), certPem: readFileSync(certPath, "utf8"), certPath };
}

export interface TokenRequest {
  /** The query the client sent, realm's own parameters included. */
  query: Record<string, string>;
  scopes: string[];
  service: string | null;
  /** The Basic user, when the client sent credentials. */
  user: string | null;
}

export interface TokenServer {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  readonly requests: TokenRequest[];
  close(): Promise<void>;
}

export interface TokenServerOptions {
  cert: SigningCert;
  issuer: string;
  service: string;
  /** When set, only these users (Basic auth) get tokens; anonymous requests get 401. */
  users?: Record<string, string>;
  /** Which field carries the token (registries accept either). */
  field?: "token" | "access_token";
  expiresInS?: number;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(options.cert.keyPem);
  const certDer = new X509Certificate(options.cert.certPem).raw.toString("base64");
  const requests: TokenRequest[] = [];
  let counter = 0;

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const scopes = url.searchParams.getAll("scope");
    const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== "scope"));
    let user: string | null = null;
    const auth = req.headers.authorization;
    if (auth?.startsWith("Basic ")) {
      const [u, ...rest] = Buffer.from(auth.slice(6), "base64").toString().split(":");
      if (options.users && options.users[u!] !== rest.join(":")) {
        requests.push({ query, scopes, service: url.searchParams.get("service"), user: u ?? null });
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ details: "bad credentials" }));
        return;
      }
      user = u ?? null;
    }
    requests.push({ query, scopes, service: url.searchParams.get("service"), user });
    if (options.users && !user) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Basic realm="token"' }).end("{}");
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresInS ?? 300;
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = [s.slice(0, s.indexOf(":")), s.slice(s.indexOf(":") + 1, s.lastIndexOf(":")), s.slice(s.lastIndexOf(":") + 1)];
      return type === "repository" ? [{ type, name, actions: actions.split(",") }] : [];
    });
    const header = { typ: "JWT", alg: "RS256", x5c: [certDer] };
    const claims = {
      iss: options.issuer,
      sub: user ?? "",
      aud: options.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: `t${++counter}`,
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign("sha256", Buffer.from(signingInput), key))}`;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ [options.field ?? "token"]: token, expires_in: expiresIn }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("token server has no address");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
