import { describe, expect, it } from "vitest";
import { hostCommand } from "./host-commands.js";
import { tempDirs } from "../../test/helpers/temp-dirs.js";

const temp = tempDirs();

describe("host commands through one shell", () => {
  it("pass every argument through untouched, quotes, spaces and $ included", async () => {
    const args = ["it's", "two words", "$HOME", "`id`", "a\\b", ""];
    expect(await hostCommand("printf", ["%s|", ...args])).toBe(args.map((a) => `${a}|`).join(""));
  });

  it("run in the given directory, and keep stdout and stderr", async () => {
    const dir = await temp("slipway-hostcmd-");
    expect(await hostCommand("pwd", [], { cwd: dir })).toBe(`${dir}\n`);
    expect(await hostCommand("sh", ["-c", "echo out; echo err >&2"])).toBe("out\nerr\n");
  });

  it("reject with the exit code and output of a failing command, and go on with the next", async () => {
    await expect(hostCommand("sh", ["-c", "echo nope; exit 3"])).rejects.toMatchObject({ code: 3, output: "nope\n" });
    await expect(hostCommand("/nonexistent/command", [])).rejects.toMatchObject({ code: 127 });
    expect(await hostCommand("echo", ["still here"])).toBe("still here\n");
  });

  it("answer many concurrent calls in order", async () => {
    const outs = await Promise.all(Array.from({ length: 50 }, (_, i) => hostCommand("echo", [String(i)])));
    expect(outs).toEqual(Array.from({ length: 50 }, (_, i) => `${i}\n`));
  });

  it("refuse arguments with newlines instead of mangling them", async () => {
    await expect(hostCommand("echo", ["a\nb"])).rejects.toThrow(/newlines/);
  });

  it("kill a command that hangs, fail what waited behind it, and start a fresh shell for the next", async () => {
    const hung = hostCommand("sleep", ["30"], { timeoutMs: 300 });
    const behind = hostCommand("echo", ["behind"]);
    await expect(hung).rejects.toThrow(/sleep: the command shell gave no answer in 0.3 s/);
    await expect(behind).rejects.toThrow(/gave no answer/);
    expect(await hostCommand("echo", ["fresh"])).toBe("fresh\n");
  });
});
