// Following a deploy through the status API until it ends: shared by `deploy --wait` and `status --wait`.
import { FailedError } from "../core/errors.js";
import type { Client } from "../sdk/client.js";
import type { Output } from "./output.js";

export interface DeployStatusView {
  id: string;
  app: string;
  deployment: string;
  promote: boolean;
  status: "pending" | "building" | "warming" | "live" | "created" | "failed";
  version: number | null;
  error: string | null;
}

export interface AppStatusView {
  app: string;
  deployments: Array<{ name: string; version: number | null; traffic: Array<{ version: number; weight: number }> | null; revision: number }>;
  versions: Array<{ version: number; routed: boolean; containers: { idle: number; busy: number; starting: number; total: number } }>;
}

const ENDED = new Set(["live", "created", "failed"]);

/** Polls a deploy until it is live, created or failed; a failed deploy throws with the server's reason. */
export async function waitForDeploy(client: Client, id: string, out: Output): Promise<{ deploy: DeployStatusView; app: AppStatusView; summary: string }> {
  let last = "";
  for (;;) {
    const d = await client.json<DeployStatusView>(`/api/v1/deploys/${encodeURIComponent(id)}`);
    if (d.status !== last) {
      out.progress(`deploy ${id}: ${d.status}${d.version ? ` (v${d.version})` : ""}`);
      last = d.status;
    }
    if (ENDED.has(d.status)) {
      if (d.status === "failed") throw new FailedError(`deploy ${id} failed: ${d.error ?? "no reason recorded"}`, { deploy: id });
      const app = await client.json<AppStatusView>(`/api/v1/apps/${encodeURIComponent(d.app)}/status`);
      return { deploy: d, app, summary: describeStatus(app, d) };
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function describeStatus(app: AppStatusView, d?: DeployStatusView): string {
  const lines: string[] = [];
  if (d) lines.push(`deploy ${d.id}: ${d.status}${d.version ? ` v${d.version}` : ""}${d.status === "live" ? ` on ${d.deployment}` : ""}`);
  for (const dep of app.deployments) {
    const on = dep.traffic ? dep.traffic.map((e) => `v${e.version}=${e.weight}%`).join(" ") : `v${dep.version}`;
    lines.push(`${dep.name.padEnd(12)} ${on}  (revision ${dep.revision})`);
  }
  for (const v of app.versions) {
    const c = v.containers;
    lines.push(`  v${v.version}${v.routed ? "" : " (draining)"}: ${c.total} container(s): ${c.idle} idle, ${c.busy} busy, ${c.starting} starting`);
  }
  return lines.join("\n");
}
