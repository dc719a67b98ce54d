import { describe, expect, it } from "vitest";
import { checkSplit, keyBucket, primaryVersion, route } from "./traffic.js";

const exists = (v: number) => v >= 1 && v <= 9;

describe("traffic splits", () => {
  it("accepts whole percents summing to 100 over existing versions, sorted by version", () => {
    expect(checkSplit([{ version: 8, weight: 10 }, { version: 7, weight: 90 }], exists, "a/main")).toEqual([
      { version: 7, weight: 90 },
      { version: 8, weight: 10 },
    ]);
  });

  it("refuses sums other than 100, fractions, zero, duplicates and unknown versions, naming the problem", () => {
    expect(() => checkSplit([{ version: 7, weight: 90 }, { version: 8, weight: 5 }], exists, "a/main")).toThrow(/sums to 95%/);
    expect(() => checkSplit([{ version: 7, weight: 89.5 }, { version: 8, weight: 10.5 }], exists, "a/main")).toThrow(/whole percents/);
    expect(() => checkSplit([{ version: 7, weight: 100 }, { version: 8, weight: 0 }], exists, "a/main")).toThrow(/weight 0/);
    expect(() => checkSplit([{ version: 7, weight: 50 }, { version: 7, weight: 50 }], exists, "a/main")).toThrow(/v7 twice/);
    expect(() => checkSplit([{ version: 7, weight: 50 }, { version: 12, weight: 50 }], exists, "a/main")).toThrow(/v12 does not exist/);
    expect(() => checkSplit([], exists, "a/main")).toThrow(/at least one/);
  });

  it("names the heaviest version as the pointer's version, the newer on a tie", () => {
    expect(primaryVersion([{ version: 7, weight: 90 }, { version: 8, weight: 10 }])).toBe(7);
    expect(primaryVersion([{ version: 7, weight: 50 }, { version: 8, weight: 50 }])).toBe(8);
  });

  it("routes a key to the same version every time while the split is unchanged", () => {
    const split = [
      { version: 7, weight: 90 },
      { version: 8, weight: 10 },
    ];
    for (let k = 0; k < 200; k++) {
      const key = `user-${k}`;
      const first = route(split, keyBucket("app", "main", key));
      for (let i = 0; i < 5; i++) expect(route(split, keyBucket("app", "main", key))).toBe(first);
    }
    // Keys spread over the split too: roughly a tenth of many users land on the canary.
    let canary = 0;
    for (let k = 0; k < 5000; k++) if (route(split, keyBucket("app", "main", `user-${k}`)) === 8) canary++;
    expect(Math.abs(canary / 5000 - 0.1)).toBeLessThan(0.03);
  });

  it("without a key, the share over 10,000 calls is within 3 points of each weight", () => {
    const split = [
      { version: 3, weight: 20 },
      { version: 7, weight: 70 },
      { version: 8, weight: 10 },
    ];
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const v = route(split);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    for (const { version, weight } of split) expect(Math.abs(((counts.get(version) ?? 0) / 10_000) * 100 - weight)).toBeLessThan(3);
  });
});
