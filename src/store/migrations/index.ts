// Numbered schema migrations, applied in order. Never edit one that has shipped: add the next number.
import { m0001Core } from "./0001-core.js";
import { m0002Registry } from "./0002-registry.js";
import { m0003RegistryAuthUploads } from "./0003-registry-auth-uploads.js";
import { m0004DeployTrafficConfigEvents } from "./0004-deploy-traffic-config-events.js";

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [m0001Core, m0002Registry, m0003RegistryAuthUploads, m0004DeployTrafficConfigEvents];
