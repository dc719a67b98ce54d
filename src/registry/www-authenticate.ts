// Parses `WWW-Authenticate` headers (RFC 9110 §11.6.1): one or more challenges, each a scheme and either comma-
// separated `key=value` parameters (values plain or quoted, commas allowed inside quotes) or a token68.

export interface Challenge {
  /** Lowercase: `bearer`, `basic`. */
  scheme: string;
  /** Parameter names lowercased; values unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/** Returns every challenge in the header; unparseable trailing text ends the list rather than guessing. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;

  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string | null => {
    // At the opening quote; backslash escapes the next character.
    let out = "";
    i++;
    while (i < n) {
      const c = header[i]!;
      if (c === "\\" && i + 1 < n) {
        out += header[i + 1];
        i += 2;
      } else if (c === '"') {
        i++;
        return out;
      } else {
        out += c;
        i++;
      }
    }
    return null;
  };
  /** Whether a `name=` (an auth-param, not a new challenge or a token68's padding) starts at i. */
  const paramAhead = (): boolean => {
    const save = i;
    const name = readToken();
    skipSpace();
    const isParam = name !== "" && header[i] === "=" && header[i + 1] !== "=";
    i = save;
    return isParam;
  };

  while (i < n) {
    while (i < n && (header[i] === "," || header[i] === " " || header[i] === "\t")) i++;
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === "") break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipSpace();
    if (i < n && header[i] !== "," && !paramAhead()) {
      const start = i;
      while (i < n && TOKEN68_CHAR.test(header[i]!)) i++;
      while (i < n && header[i] === "=") i++;
      challenge.token68 = header.slice(start, i);
      continue;
    }
    // Parameters until one that is not `name=value`: that is the next challenge's scheme.
    for (;;) {
      while (i < n && (header[i] === "," || header[i] === " " || header[i] === "\t")) i++;
      if (i >= n || !paramAhead()) break;
      const name = readToken().toLowerCase();
      skipSpace();
      i++; // "="
      skipSpace();
      let value: string | null;
      if (header[i] === '"') {
        value = readQuoted();
      } else {
        // Unquoted values should be tokens, but servers send bare URLs too: take everything up to the next comma.
        const start = i;
        while (i < n && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i++;
        value = header.slice(start, i);
      }
      if (value === null) return challenges;
      challenge.params[name] = value;
    }
  }
  return challenges;
}
