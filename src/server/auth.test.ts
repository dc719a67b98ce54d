// Auth for /v2 and /api/v1 against the real token store: the admin token file, the docker token flow (challenge →
// token endpoint with Basic auth → Bearer), its OAuth2 POST form (password and refresh-token grants), per-repository
// scopes, anonymous pull on and off, revocation.
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openRegistry, type TestRegistry } from "../../test/registry-support.js";
import { pushImage, sampleImage, type Send } from "../../test/registry-kit.js";
import { ensureAdminToken } from "./auth.js";

let registry: TestRegistry;
afterEach(async () => registry?.close());

function sender(authorization?: string): Send {
  return async ({ method, path, headers, body }) => {
    const res = await registry.app.inject({
      method: method as "GET",
      url: path,
      headers: { ...(authorization ? { authorization } : {}), ...headers },
      ...(body !== undefined ? { payload: body } : {}),
    });
    return { status: res.statusCode, headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])), body: res.rawPayload, json: <T>() => JSON.parse(res.body) as T };
  };
}

const basic = (password: string) => `Basic ${Buffer.from(`whoever:${password}`).toString("base64")}`;

async function tokenFor(password: string | null, scopes: string[]): Promise<{ status: number; token?: string; body: Record<string, unknown> }> {
  const query = scopes.map((s) => `scope=${encodeURIComponent(s)}`).join("&");
  const res = await sender(password === null ? undefined : basic(password))({ method: "GET", path: `/v2/token?service=slipway&${query}` });
  const body = res.json() as Record<string, unknown>;
  return { status: res.status, token: body.token as string | undefined, body };
}

describe("admin token", () => {
  it("is created on first start in <data>/admin-token with mode 0600, and kept across starts", async () => {
    registry = await openRegistry();
    const path = join(registry.dataDir, "admin-token");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, "utf8")).trim()).toBe(registry.adminToken);
    const again = await ensureAdminToken(registry.tokens, registry.dataDir);
    expect(again).toEqual({ path, token: registry.adminToken, created: false });
    expect(registry.auth.verifyBearer(`Bearer ${registry.adminToken}`)?.admin).toBe(true);
    expect(registry.auth.verifyBearer("Bearer sw_" + "1".repeat(48))).toBeNull();
  });

  it("adopts a token file written before tokens were stored, and replaces a revoked one", async () => {
    registry = await openRegistry();
    const path = join(registry.dataDir, "admin-token");
    const earlier = "sw_" + "ab".repeat(24);
    await writeFile(path, earlier + "\n", { mode: 0o600 });
    expect((await ensureAdminToken(registry.tokens, registry.dataDir)).token).toBe(earlier);
    expect(registry.auth.verifyBearer(`Bearer ${earlier}`)?.admin).toBe(true);
    registry.tokens.revoke(registry.tokens.verify(earlier)!.id);
    const fresh = await ensureAdminToken(registry.tokens, registry.dataDir);
    expect(fresh.created).toBe(true);
    expect(fresh.token).not.toBe(earlier);
    expect((await readFile(path, "utf8")).trim()).toBe(fresh.token);
  });
});

describe("docker token flow", () => {
  it("challenges, issues a token for Basic credentials (any username, an API token as password) and accepts it", async () => {
    registry = await openRegistry();
    const anonymous = await sender()({ method: "GET", path: "/v2/" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toMatch(/^Bearer realm="http:\/\/localhost:80\/v2\/token",service="slipway"$/);
    const issued = await tokenFor(registry.adminToken, ["repository:team/app:pull,push"]);
    expect(issued.status).toBe(200);
    expect(issued.body.access_token).toBe(issued.token);
    expect(issued.body.expires_in).toBe(900);
    const send = sender(`Bearer ${issued.token}`);
    expect((await send({ method: "GET", path: "/v2/" })).status).toBe(200);
    await pushImage(send, "team/app", "v1", sampleImage("flow"));
    // The token covers what was asked for, not more: another repository needs another token.
    const other = await send({ method: "GET", path: "/v2/team/other/tags/list" });
    expect(other.status).toBe(401);
    expect(other.headers["www-authenticate"]).toContain('scope="repository:team/other:pull",error="insufficient_scope"');
    expect((await tokenFor("sw_" + "2".repeat(48), [])).status).toBe(401);
    expect((await tokenFor(null, ["repository:team/app:pull"])).status).toBe(401);
  });

  it("grants per repository what the API token's scopes allow; push implies pull", async () => {
    registry = await openRegistry();
    await pushImage(sender(registry.bearer), "team/app", "v1", sampleImage("scopes"));
    await pushImage(sender(registry.bearer), "other/app", "v1", sampleImage("scopes"));
    const { token } = registry.tokens.create("ci", ["repository:team/*:push"]);
    const issued = await tokenFor(token, ["repository:team/app:pull,push", "repository:other/app:pull,push", "registry:catalog:*"]);
    const parsed = JSON.parse(Buffer.from(issued.token!.split(".")[1]!, "base64url").toString()) as { access: unknown[] };
    // The catalog is granted to every API token: it lists only what the token may pull.
    expect(parsed.access).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    const viaRegistryToken = sender(`Bearer ${issued.token}`);
    expect((await viaRegistryToken({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(200);
    expect((await viaRegistryToken({ method: "GET", path: "/v2/other/app/manifests/v1" })).status).toBe(401);
    // The API token itself, presented directly: refused with 403 DENIED, since no other token would do better.
    const direct = sender(`Bearer ${token}`);
    expect((await direct({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(200);
    const denied = await direct({ method: "DELETE", path: "/v2/team/app/manifests/v1" });
    expect(denied.status).toBe(403);
    expect((denied.json() as { errors: Array<{ code: string }> }).errors[0]!.code).toBe("DENIED");
    const catalog = await direct({ method: "GET", path: "/v2/_catalog" });
    expect(catalog.status).toBe(200);
    expect(catalog.json()).toEqual({ repositories: ["team/app"] });
    // Revoking the API token ends the registry tokens issued for it.
    registry.tokens.revoke(registry.tokens.verify(token)!.id);
    expect((await viaRegistryToken({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(401);
  });
});

async function postToken(form: Record<string, string>, contentType = "application/x-www-form-urlencoded"): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await registry.app.inject({ method: "POST", url: "/v2/token", headers: { "content-type": contentType }, payload: new URLSearchParams(form).toString() });
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
}

const oauth = { service: "slipway", client_id: "containerd-client" };

describe("OAuth2 token endpoint (POST)", () => {
  it("grant_type=password takes an API token as the password and grants what its scopes allow, naming the grants", async () => {
    registry = await openRegistry();
    await pushImage(sender(registry.bearer), "team/app", "v1", sampleImage("oauth"));
    const { token } = registry.tokens.create("ci", ["repository:team/*:pull"]);
    const issued = await postToken({ ...oauth, grant_type: "password", username: "ci", password: token, scope: "repository:team/app:pull,push repository:other/app:pull" });
    expect(issued.status).toBe(200);
    expect(issued.body.scope).toBe("repository:team/app:pull");
    expect(issued.body.expires_in).toBe(900);
    expect(typeof issued.body.issued_at).toBe("string");
    expect(issued.body.refresh_token).toBeUndefined();
    const send = sender(`Bearer ${String(issued.body.access_token)}`);
    expect((await send({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(200);
    expect((await send({ method: "POST", path: "/v2/team/app/blobs/uploads/" })).status).toBe(401);
  });

  it("access_type=offline adds a refresh token; grant_type=refresh_token trades it for access tokens until the API token is revoked", async () => {
    registry = await openRegistry();
    await pushImage(sender(registry.bearer), "team/app", "v1", sampleImage("refresh"));
    const { token, record } = registry.tokens.create("builder", ["repository:team/*:push"]);
    const login = await postToken({ ...oauth, grant_type: "password", username: "builder", password: token, access_type: "offline" });
    expect(login.status).toBe(200);
    expect(login.body.scope).toBe("");
    const refresh = login.body.refresh_token as string;
    expect(refresh).toMatch(/^swf\./);
    expect(refresh).not.toContain(token);

    const pushGrant = await postToken({ ...oauth, grant_type: "refresh_token", refresh_token: refresh, scope: "repository:team/app:pull,push" });
    expect(pushGrant.status).toBe(200);
    expect(pushGrant.body.scope).toBe("repository:team/app:pull,push");
    expect(pushGrant.body.refresh_token).toBe(refresh);
    const send = sender(`Bearer ${String(pushGrant.body.access_token)}`);
    expect((await send({ method: "POST", path: "/v2/team/app/blobs/uploads/" })).status).toBe(202);

    // Neither kind of token passes for the other.
    expect((await sender(`Bearer ${refresh}`)({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(401);
    const accessAsRefresh = await postToken({ ...oauth, grant_type: "refresh_token", refresh_token: String(pushGrant.body.access_token) });
    expect(accessAsRefresh).toMatchObject({ status: 400, body: { error: "invalid_grant" } });

    registry.tokens.revoke(record.id);
    const afterRevoke = await postToken({ ...oauth, grant_type: "refresh_token", refresh_token: refresh, scope: "repository:team/app:pull" });
    expect(afterRevoke).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await send({ method: "GET", path: "/v2/team/app/manifests/v1" })).status).toBe(401);
  });

  it("refuses bad requests with RFC 6749 errors", async () => {
    registry = await openRegistry();
    const password = { ...oauth, grant_type: "password", username: "x" };
    expect(await postToken({ ...password, password: "sw_" + "3".repeat(48) })).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect(await postToken({ ...password })).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    expect(await postToken({ ...oauth, grant_type: "client_credentials" })).toMatchObject({ status: 400, body: { error: "unsupported_grant_type" } });
    expect(await postToken({ ...password, password: registry.adminToken, service: "elsewhere" })).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    expect(await postToken({ grant_type: "password", username: "x", password: registry.adminToken, service: "slipway" })).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    expect(await postToken({ ...password, password: registry.adminToken }, "application/json")).toMatchObject({ status: 400, body: { error: "invalid_request" } });
    const admin = await postToken({ ...password, password: registry.adminToken, scope: "repository:any/repo:pull,push,delete" });
    expect(admin).toMatchObject({ status: 200, body: { scope: "repository:any/repo:pull,push,delete" } });
  });
});

describe("catalog", () => {
  const repositories = ["alpha/x", "team/app", "team/lib", "zeta/y"];
  async function pushAll(): Promise<void> {
    for (const repo of repositories) await pushImage(sender(registry.bearer), repo, "v1", sampleImage(`catalog-${repo}`, 1));
  }
  const list = async (send: Send, path = "/v2/_catalog") => {
    const res = await send({ method: "GET", path });
    return { status: res.status, repositories: res.status === 200 ? (res.json() as { repositories: string[] }).repositories : undefined, link: res.headers.link };
  };

  it("lists only the repositories the caller's token may pull, paged over what it may see; admin sees all", async () => {
    registry = await openRegistry();
    await pushAll();
    expect(await list(sender(registry.bearer))).toMatchObject({ status: 200, repositories });

    const team = sender(`Bearer ${registry.tokens.create("team", ["repository:team/*:pull"]).token}`);
    expect(await list(team)).toMatchObject({ status: 200, repositories: ["team/app", "team/lib"] });
    const first = await list(team, "/v2/_catalog?n=1");
    expect(first).toMatchObject({ repositories: ["team/app"], link: '</v2/_catalog?n=1&last=team%2Fapp>; rel="next"' });
    // zeta/y follows team/lib in the index, but this token cannot see it: no link to an empty page.
    const second = await list(team, "/v2/_catalog?n=1&last=team%2Fapp");
    expect(second).toMatchObject({ repositories: ["team/lib"], link: undefined });

    const pusher = sender(`Bearer ${registry.tokens.create("pusher", ["repository:zeta/y:push"]).token}`);
    expect((await list(pusher)).repositories).toEqual(["zeta/y"]);
    const stranger = sender(`Bearer ${registry.tokens.create("stranger", ["repository:nobody/*:pull"]).token}`);
    expect(await list(stranger)).toMatchObject({ status: 200, repositories: [], link: undefined });
    // A token its creator granted the catalog itself lists every repository.
    const lister = sender(`Bearer ${registry.tokens.create("lister", ["registry:catalog:*"]).token}`);
    expect((await list(lister)).repositories).toEqual(repositories);
  });

  it("through the docker token flow: a registry token for the catalog lists what its API token may pull", async () => {
    registry = await openRegistry();
    await pushAll();
    const anonymous = await sender()({ method: "GET", path: "/v2/_catalog" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["www-authenticate"]).toContain('scope="registry:catalog:*"');

    const { token, record } = registry.tokens.create("team", ["repository:team/*:pull"]);
    const forCatalog = await tokenFor(token, ["registry:catalog:*"]);
    const viaCatalogToken = sender(`Bearer ${forCatalog.token}`);
    expect((await list(viaCatalogToken)).repositories).toEqual(["team/app", "team/lib"]);

    // A registry token issued for a repository alone is sent back for one that names the catalog.
    const forRepo = await tokenFor(token, ["repository:team/app:pull"]);
    const refused = await sender(`Bearer ${forRepo.token}`)({ method: "GET", path: "/v2/_catalog" });
    expect(refused.status).toBe(401);
    expect(refused.headers["www-authenticate"]).toContain('scope="registry:catalog:*",error="insufficient_scope"');

    registry.tokens.revoke(record.id);
    expect((await list(viaCatalogToken)).status).toBe(401);
  });
});

describe("anonymous pull", () => {
  it("is off by default", async () => {
    registry = await openRegistry();
    await pushImage(sender(registry.bearer), "pub/app", "v1", sampleImage("anon"));
    expect((await sender()({ method: "GET", path: "/v2/pub/app/manifests/v1" })).status).toBe(401);
  });

  it("when on, pulls need no credentials and the token endpoint hands out pull-only tokens", async () => {
    registry = await openRegistry({ anonymousPull: true });
    await pushImage(sender(registry.bearer), "pub/app", "v1", sampleImage("anon"));
    const send = sender();
    expect((await send({ method: "GET", path: "/v2/pub/app/manifests/v1" })).status).toBe(200);
    expect((await send({ method: "POST", path: "/v2/pub/app/blobs/uploads/" })).status).toBe(401);
    const issued = await tokenFor(null, ["repository:pub/app:pull,push"]);
    expect(issued.status).toBe(200);
    const parsed = JSON.parse(Buffer.from(issued.token!.split(".")[1]!, "base64url").toString()) as { access: unknown[] };
    expect(parsed.access).toEqual([{ type: "repository", name: "pub/app", actions: ["pull"] }]);
    expect((await sender(`Bearer ${issued.token}`)({ method: "POST", path: "/v2/pub/app/blobs/uploads/" })).status).toBe(401);
  });
});
