// Ignore files for COPY sources: `.slipwayignore` (or `.dockerignore`) in the app directory, with .dockerignore's
// pattern rules (globs with *, ?, **, [a-z], leading ! to re-include, later lines win). Ignored files change nothing.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidError } from "../core/errors.js";

interface Rule {
  negate: boolean;
  re: RegExp;
}

export class IgnoreRules {
  private constructor(
    private readonly rules: Rule[],
    /** The file the rules came from (for messages). */
    readonly file: string = "the ignore rules",
  ) {}

  static async load(dir: string): Promise<IgnoreRules> {
    for (const name of [".slipwayignore", ".dockerignore"]) {
      const text = readOrNull(join(dir, name));
      if (text !== null) return IgnoreRules.parse(text, name);
    }
    return new IgnoreRules([]);
  }

  static parse(text: string, file?: string): IgnoreRules {
    const rules: Rule[] = [];
    for (const [index, raw] of text.split("\n").entries()) {
      let line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const negate = line.startsWith("!");
      if (negate) line = line.slice(1).trim();
      line = line.replace(/^\/+/, "").replace(/\/+$/, "");
      if (!line) continue;
      const re = globToRegExp(line);
      if (!re) throw new InvalidError(`${file ?? "ignore rules"} line ${index + 1}: ${JSON.stringify(raw.trim())} has a [ with no closing ]`, { file, line: index + 1 });
      rules.push({ negate, re });
    }
    return new IgnoreRules(rules, file);
  }

  /** Whether a path relative to the app directory is excluded. A path under an excluded directory is too. */
  ignores(path: string): boolean {
    if (this.rules.length === 0) return false;
    const above = parents(path);
    let ignored = false;
    for (const rule of this.rules) {
      if (rule.re.test(path) || above.some((p) => rule.re.test(p))) ignored = !rule.negate;
    }
    return ignored;
  }
}

function parents(path: string): string[] {
  const parts = path.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/**
 * A glob as a regular expression over paths: `*` and `?` within one name, `**` across names, `[abc]`, `[a-z]` and
 * `[!abc]` (or `[^abc]`) for one character of a name. Null when a `[` is never closed.
 */
function globToRegExp(glob: string): RegExp | null {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        re += ".*";
        i++;
        if (glob[i + 1] === "/") i++;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const close = glob.indexOf("]", i + 2);
      if (close < 0) return null;
      let set = glob.slice(i + 1, close);
      const negated = set.startsWith("!") || set.startsWith("^");
      if (negated) set = set.slice(1);
      re += `(?!/)[${negated ? "^" : ""}${set.replace(/[\\^\]]/g, "\\$&")}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Synchronous: node:fs/promises costs a client command on Bun ~4 ms to load, and an ignore file is small. */
function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}
