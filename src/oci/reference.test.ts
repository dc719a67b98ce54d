import { describe, expect, it } from "vitest";
import { InvalidError } from "../core/errors.js";
import type { Digest } from "./digest.js";
import { formatReference, parseReference, pinReference } from "./reference.js";

const D: Digest = `sha256:${"a".repeat(64)}`;

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function canonical(input: string): string {
  return formatReference(parseReference(input));
}

describe("parseReference (case EP2: short names)", () => {
  it("normalises Docker Hub short names to docker.io/library/…:latest", () => {
    for (const input of ["nginx", "docker.io/nginx", "index.docker.io/library/nginx", "docker.io/library/nginx:latest", "INDEX.DOCKER.IO/nginx"]) {
      expect(canonical(input), input).toBe("docker.io/library/nginx:latest");
    }
    expect(parseReference("nginx")).toEqual({ registry: "docker.io", repository: "library/nginx", tag: "latest" });
  });

  it("keeps user namespaces on Docker Hub", () => {
    expect(canonical("bitnami/redis:7.2")).toBe("docker.io/bitnami/redis:7.2");
  });

  it("treats the first part as a host only with '.', ':' or localhost", () => {
    expect(parseReference("ghcr.io/owner/app:v1")).toEqual({ registry: "ghcr.io", repository: "owner/app", tag: "v1" });
    expect(parseReference("localhost/app")).toMatchObject({ registry: "localhost", repository: "app" });
    expect(parseReference("localhost:5000/a/b/c")).toMatchObject({ registry: "localhost:5000", repository: "a/b/c" });
    expect(parseReference("127.0.0.1:40123/repo:tag")).toMatchObject({ registry: "127.0.0.1:40123", repository: "repo", tag: "tag" });
    expect(parseReference("[::1]:5000/repo")).toMatchObject({ registry: "[::1]:5000", repository: "repo" });
    expect(parseReference("registry/app")).toMatchObject({ registry: "docker.io", repository: "registry/app" });
    // A one-part name with a port-like tag is a Docker Hub image with a tag, as Docker reads it.
    expect(parseReference("localhost:5000")).toMatchObject({ registry: "docker.io", repository: "library/localhost", tag: "5000" });
    expect(parseReference("Example.COM/app").registry).toBe("example.com");
  });

  it("implies :latest only when there is no digest", () => {
    expect(parseReference(`nginx@${D}`)).toEqual({ registry: "docker.io", repository: "library/nginx", digest: D });
    expect(canonical(`nginx@${D}`)).toBe(`docker.io/library/nginx@${D}`);
  });

  it("allows a tag and a digest together", () => {
    expect(parseReference(`nginx:1.25@${D}`)).toEqual({ registry: "docker.io", repository: "library/nginx", tag: "1.25", digest: D });
    expect(canonical(`localhost:5000/x:1@${D}`)).toBe(`localhost:5000/x:1@${D}`);
  });

  it("refuses an uppercase repository name, saying so", () => {
    for (const input of ["Nginx", "docker.io/Library/nginx", "ghcr.io/Owner/app", "Foo/bar"]) {
      expect(() => parseReference(input), input).toThrow(InvalidError);
      expect(() => parseReference(input), input).toThrow(/must be lowercase/);
    }
  });

  it("refuses malformed references with a message naming the part", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /empty/],
      ["nginx:", /tag "" is invalid/],
      [`nginx:${"a".repeat(129)}`, /tag .* is invalid/],
      ["nginx:-x", /tag "-x" is invalid/],
      ["nginx@sha256:abc", /digest "sha256:abc" is malformed/],
      ["nginx@md5:" + "a".repeat(32), /digest .* is malformed/],
      ["nginx@", /digest "" is malformed/],
      ["a//b", /invalid part ""/],
      ["ghcr.io/", /repository name is empty/],
      ["ghcr.io/a/../b", /invalid part "\.\."/],
      ["-nginx", /invalid part "-nginx"/],
      ["ngi nx", /whitespace/],
      ["ex_ample.com/app", /registry host "ex_ample.com"/],
      [`ghcr.io/${"a".repeat(250)}`, /longer than 255/],
    ];
    for (const [input, message] of cases) {
      expect(() => parseReference(input), JSON.stringify(input)).toThrow(message);
    }
    const err = captureError(() => parseReference("Nginx"));
    expect(err).toBeInstanceOf(InvalidError);
    expect((err as InvalidError).message).toContain('"Nginx"');
    expect((err as InvalidError).details).toMatchObject({ reference: "Nginx", repository: "library/Nginx" });
  });

  it("pins a reference to a digest, keeping the tag as a note", () => {
    expect(formatReference(pinReference(parseReference("nginx:1.25"), D))).toBe(`docker.io/library/nginx:1.25@${D}`);
  });
});
