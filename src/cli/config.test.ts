import { describe, expect, it } from "vitest";
import { clientFrom, loadConfig } from "./config.js";

describe("the CLI's configuration from the environment", () => {
  it("places the client cache by SLIPWAY_CACHE, then XDG_CACHE_HOME, then HOME, and turns it off with SLIPWAY_CACHE=off", () => {
    const base = { SLIPWAY_TOKEN: "t", HOME: "/home/u" };
    expect(loadConfig({ ...base, SLIPWAY_CACHE: "/var/cache/sw" }).cacheDir).toBe("/var/cache/sw");
    expect(loadConfig({ ...base, XDG_CACHE_HOME: "/xdg" }).cacheDir).toBe("/xdg/slipway");
    expect(loadConfig(base).cacheDir).toBe("/home/u/.cache/slipway");
    expect(loadConfig({ ...base, SLIPWAY_CACHE: "off" }).cacheDir).toBeNull();
  });

  it("refuses a SLIPWAY_URL that is not an http(s) address, naming it", () => {
    for (const url of ["notaurl", "127.0.0.1:7700", "ftp://host", "http://"]) {
      expect(() => clientFrom(loadConfig({ SLIPWAY_TOKEN: "t", SLIPWAY_URL: url }))).toThrow(`SLIPWAY_URL ${JSON.stringify(url)} is not an http:// or https:// address`);
    }
    expect(clientFrom(loadConfig({ SLIPWAY_TOKEN: "t", SLIPWAY_URL: "http://127.0.0.1:7700/" })).url).toBe("http://127.0.0.1:7700");
  });
});
