// The podcast example: Debian bookworm with espeak-ng and sox; `render` speaks a text and equalises it.
import { App, Image } from "slipway";

const image = Image.debian("bookworm")
  .aptInstall(["sox", "espeak-ng"])
  .env({ LANG: "C.UTF-8" });

export const app = new App("podcast");

export const render = app.function("render", {
  image,
  handler: "./render.ts",
  cpu: 1,
  memoryMiB: 512,
  timeoutMs: 60_000,
});
