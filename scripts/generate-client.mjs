// Generates the TypeScript client of the tensorgrid program from the committed IDL with Codama
// (the Anchor 1.x / @solana/kit convention): `npm run generate-client` writes
// clients/ts/generated/. Hand-written helpers (PDAs whose seeds include arguments, event
// decoding, sending) live beside it in clients/ts/.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createFromRoot } from "codama";
import { rootNodeFromAnchor } from "@codama/nodes-from-anchor";
import { renderVisitor } from "@codama/renderers-js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const idl = JSON.parse(fs.readFileSync(path.join(root, "idl/tensorgrid.json"), "utf8"));
// `--check`: render into a scratch directory and fail if the committed client differs (CI).
const check = process.argv.includes("--check");
const committed = path.join(root, "clients/ts/generated");
const out = check ? fs.mkdtempSync(path.join(root, ".tsbuild-check-")) : committed;
const codama = createFromRoot(rootNodeFromAnchor(idl));
await codama.accept(
  renderVisitor(out, { deleteFolderBeforeRendering: true, formatCode: true, generatedFolder: ".", syncPackageJson: false }),
);
// Codama 1.9 types the program plugin's return more loosely than TypeScript 5.9 accepts; the
// value is right (extendClient returns exactly that shape).
const plugin = path.join(out, "programs/tensorgrid.ts");
const text = fs.readFileSync(plugin, "utf8");
const patched = text.replace(
  "    return extendClient(client, {",
  "    // @ts-expect-error TS 5.9 cannot relate the mapped type to Omit<T, ...> & {...}.\n    return extendClient(client, {",
);
if (patched === text) throw new Error("the plugin's extendClient call moved: update the patch");
fs.writeFileSync(plugin, patched);
if (check) {
  const list = (dir) =>
    fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
  const fresh = list(out);
  const stale = JSON.stringify(fresh) !== JSON.stringify(list(committed)) ||
    fresh.some((f) => !fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(committed, f))));
  fs.rmSync(out, { recursive: true, force: true });
  if (stale) {
    console.error("clients/ts/generated is not what the IDL generates: run `npm run generate-client`");
    process.exit(1);
  }
  console.log("clients/ts/generated matches the IDL");
} else {
  console.log(`generated ${out}`);
}
