// An image the builder writes lands in its repository whole: its blob links and its manifest in one transaction.
import { describe, expect, it } from "vitest";
import { sha256 } from "../oci/digest.js";
import { MetadataStore } from "./metadata-store.js";
import { RepositoryIndex } from "./repository-index.js";

describe("RepositoryIndex.putImage", () => {
  const layer = { digest: sha256("layer"), size: 5 };
  const config = { digest: sha256("config"), size: 6 };
  const manifest = { repo: "app", digest: sha256("manifest"), mediaType: "application/vnd.oci.image.manifest.v1+json", size: 8, refs: [config.digest, layer.digest] };

  it("links every blob and records the manifest", () => {
    const repos = new RepositoryIndex(MetadataStore.open(":memory:"));
    repos.putImage([layer, config], manifest);
    expect(repos.blobLink("app", layer.digest)?.size).toBe(5);
    expect(repos.blobLink("app", config.digest)?.size).toBe(6);
    expect(repos.manifest("app", manifest.digest)?.size).toBe(8);
  });

  it("links nothing when the manifest cannot be recorded", () => {
    const repos = new RepositoryIndex(MetadataStore.open(":memory:"));
    expect(() => repos.putImage([layer, config], { ...manifest, mediaType: null as unknown as string })).toThrow(/NOT NULL/);
    expect(repos.blobLink("app", layer.digest)).toBeNull();
    expect(repos.blobLink("app", config.digest)).toBeNull();
    expect(repos.manifest("app", manifest.digest)).toBeNull();
  });
});
