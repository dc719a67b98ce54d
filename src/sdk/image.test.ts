import { describe, expect, it } from "vitest";
import { Image, shellQuote } from "./image.js";

describe("Image", () => {
  it("is immutable: every method returns a new image and leaves the old one as it was", () => {
    const base = Image.debian("bookworm");
    const withApt = base.aptInstall(["sox"]);
    const withEnv = withApt.env({ A: "1" });
    expect(base.steps).toHaveLength(1);
    expect(withApt.steps).toHaveLength(2);
    expect(withEnv.steps).toHaveLength(3);
    expect(withApt.steps).not.toBe(withEnv.steps);
  });

  it("quotes array commands for the shell", () => {
    expect(Image.scratch().run(["echo", "it's", "a b", "$HOME"]).steps[1]).toEqual({ op: "run", shell: `echo 'it'\\''s' 'a b' '$HOME'` });
    expect(shellQuote("plain-word_1.2")).toBe("plain-word_1.2");
  });

  it("keeps copy sources as a list and build args apart from the steps", () => {
    const img = Image.scratch().copy(["a", "b"], "/w/").arg("V", "1").withBuildArgs({ V: "2" });
    expect(img.steps[1]).toEqual({ op: "copy", src: ["a", "b"], dest: "/w/" });
    expect(img.buildArgs).toEqual({ V: "2" });
  });
});
