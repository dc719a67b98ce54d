import { describe, expect, it } from "vitest";
import { parseWwwAuthenticate } from "./www-authenticate.js";

describe("parseWwwAuthenticate (case EP3)", () => {
  it("reads a Bearer challenge with realm, service and scope", () => {
    expect(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'),
    ).toEqual([
      {
        scheme: "bearer",
        params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/nginx:pull" },
      },
    ]);
  });

  it("keeps commas, equals signs and escaped quotes inside quoted values", () => {
    const [c] = parseWwwAuthenticate(
      'Bearer realm="http://127.0.0.1:5001/token?a=1,2",service="svc, with comma",scope="repository:a/b:pull,push",note="say \\"hi\\""',
    );
    expect(c?.params).toEqual({
      realm: "http://127.0.0.1:5001/token?a=1,2",
      service: "svc, with comma",
      scope: "repository:a/b:pull,push",
      note: 'say "hi"',
    });
  });

  it("reads several challenges in one header, in order", () => {
    expect(parseWwwAuthenticate('Basic realm="basic-realm", Bearer realm="https://t/x",error="invalid_token"')).toEqual([
      { scheme: "basic", params: { realm: "basic-realm" } },
      { scheme: "bearer", params: { realm: "https://t/x", error: "invalid_token" } },
    ]);
  });

  it("is case-insensitive in scheme and parameter names, lenient with spaces and bare values", () => {
    expect(parseWwwAuthenticate('BEARER  Realm = "r" ,  Service=s, scope=https://x/y')).toEqual([
      { scheme: "bearer", params: { realm: "r", service: "s", scope: "https://x/y" } },
    ]);
  });

  it("reads token68 challenges and bare schemes", () => {
    expect(parseWwwAuthenticate("Negotiate abc+/def==, Basic")).toEqual([
      { scheme: "negotiate", params: {}, token68: "abc+/def==" },
      { scheme: "basic", params: {} },
    ]);
  });

  it("stops at an unterminated quoted value instead of guessing", () => {
    expect(parseWwwAuthenticate('Bearer service="s",realm="https://x')).toEqual([{ scheme: "bearer", params: { service: "s" } }]);
    expect(parseWwwAuthenticate("")).toEqual([]);
  });
});
