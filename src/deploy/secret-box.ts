// Sealing secrets at rest: AES-256-GCM with one key per data directory (a 0600 file written on first start). A
// sealed value is `v1:<iv>:<tag>:<ciphertext>` in base64url; the app and key name are authenticated with it, so a
// sealed value copied to another key does not open.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { InternalError, InvalidError } from "../core/errors.js";

const KEY_BYTES = 32;

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** Opens the key file, creating it (mode 0600) when it does not exist yet. */
  static async open(path: string): Promise<SecretBox> {
    await writeFile(path, randomBytes(KEY_BYTES).toString("base64") + "\n", { mode: 0o600, flag: "wx" }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new InvalidError(`the secrets key ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`, { path });
    }
    const key = Buffer.from((await readFile(path, "utf8")).trim(), "base64");
    if (key.length !== KEY_BYTES) throw new InvalidError(`the secrets key ${path} is not ${KEY_BYTES} bytes of base64`, { path });
    return new SecretBox(key);
  }

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== KEY_BYTES) throw new InvalidError(`a secrets key is ${KEY_BYTES} bytes`);
    return new SecretBox(Buffer.from(key));
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return ["v1", iv.toString("base64url"), cipher.getAuthTag().toString("base64url"), data.toString("base64url")].join(":");
  }

  open(sealed: string, context: string): string {
    const [v, iv, tag, data] = sealed.split(":");
    if (v !== "v1" || iv === undefined || tag === undefined || data === undefined) throw new InternalError(`a sealed secret (${context}) is malformed`);
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
    } catch {
      throw new InternalError(`the secret ${context} does not open with this data directory's key (was the key file replaced?)`, { context });
    }
  }
}
