import { describe, expect, it } from "vitest";
import { parseKeyValues } from "./key-values.js";

describe("KEY=VALUE arguments", () => {
  it("split at the first =, so values may hold more", () => {
    expect(parseKeyValues(["A=1", "URL=http://x/?a=b", "EMPTY="], "--build-arg")).toEqual({ A: "1", URL: "http://x/?a=b", EMPTY: "" });
    expect(parseKeyValues(undefined, "--build-arg")).toEqual({});
  });

  it("name the flag and the bad argument", () => {
    expect(() => parseKeyValues(["NOEQUALS"], "--build-arg")).toThrow('--build-arg "NOEQUALS" must be KEY=VALUE');
    expect(() => parseKeyValues(["=x"], "config value")).toThrow('config value "=x" must be KEY=VALUE');
  });
});
