import { describe, expect, it } from "vitest";
import { App } from "./app.js";
import { Image } from "./image.js";

describe("App.function", () => {
  it("names the function and what is missing when an app file (plain JavaScript) leaves out its image or handler", () => {
    const app = new App("demo");
    const loose = (params: unknown) => () => app.function("f", params as never);
    expect(loose(undefined)).toThrow("function demo/f needs its settings: { image, handler }");
    expect(loose({ handler: "./h.ts" })).toThrow("function demo/f needs an image: Image.debian(…), Image.fromTarball(…) or Image.fromRegistry(…)");
    expect(loose({ image: {}, handler: "./h.ts" })).toThrow("function demo/f needs an image");
    expect(loose({ image: Image.fromTarball("./b.tar") })).toThrow("function demo/f needs a handler: the path of its module, relative to the app file");
    expect(app.function("f", { image: Image.fromTarball("./b.tar"), handler: "./h.ts" }).name).toBe("f");
  });
});
