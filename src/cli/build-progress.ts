// Build progress as people read it (one line per step: CACHED/BUILT, time, step, and why a miss missed; with
// --explain, why a hit hit), shared by `deploy` and `build`.
import type { Output } from "./output.js";

interface StepReport {
  index: number;
  text: string;
  status: string;
  durationMs: number;
  reason?: string;
}

export function showBuildEvent(out: Output, raw: unknown, options: { explainHits?: boolean } = {}): void {
  const e = raw as { type: string; image?: string; text?: string; lines?: string[]; event?: Record<string, unknown> };
  if (e.type === "message" && e.text) return out.progress(e.text);
  // What the client reused or redid before sending (its cache), shown with --explain.
  if (e.type === "client") {
    if (options.explainHits) for (const line of e.lines ?? []) out.progress(line);
    return;
  }
  if (e.type !== "build" || !e.event) return;
  const ev = e.event as { type: string; total: number; line?: string; text?: string; report?: StepReport };
  if (ev.type === "warning" && ev.text) return out.progress(`warning: ${ev.text}`);
  if (ev.type === "step-done" && ev.report) {
    const r = ev.report;
    const status = r.status === "hit" ? "CACHED" : "BUILT ";
    const why =
      r.status !== "hit" ? (r.reason ? `\n      miss: ${r.reason}` : "") : options.explainHits ? `\n      hit: ${r.reason ?? "step, inputs and earlier steps unchanged"}` : "";
    out.progress(`[${e.image} ${r.index + 1}/${ev.total}] ${status} ${(r.durationMs / 1000).toFixed(2)}s  ${r.text}${why}`);
  } else if (ev.type === "log" && ev.line !== undefined) {
    out.progress(`      │ ${ev.line}`);
  }
}
