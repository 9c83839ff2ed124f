/**
 * The SDK cannot drift from the HTTP API: agents/sdk/api-types.ts is exactly what
 * scripts/gen-sdk-types.ts writes from the OpenAPI document `muri serve` serves (the e2e test
 * e2e-access compares it with the document a running daemon serves, too), and the generator reads
 * the document's schemas, parameters and responses as they are.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { openApiDocument } from "../../../agents/roles/client/http-api.js";
import { SDK_TYPES_FILE, sdkTypes } from "../../../scripts/gen-sdk-types.js";

test("agents/sdk/api-types.ts is what the generator writes from the OpenAPI document (npm run gen:sdk)", async () => {
  assert.equal(await readFile(SDK_TYPES_FILE, "utf8"), sdkTypes(openApiDocument()));
});

test("the generator follows the document: a changed schema or route changes the types", () => {
  const doc = openApiDocument() as { components: { schemas: Record<string, { properties: Record<string, unknown>; required: string[] }> }; paths: Record<string, unknown> };
  const before = sdkTypes(doc);
  assert.match(before, /export type PutResult = \{\n {2}maguId: string;\n {2}manifestCid: string;\n {2}fileSize: number;/);
  assert.match(before, /"\/v1\/magus\/\{id\}\/search": \{\n {4}\/\*\* [^\n]+\*\/\n {4}post: \{\n {6}path: \{/);
  doc.components.schemas.PutResult!.properties.note = { type: ["string", "null"], description: "a new field" };
  doc.paths["/v1/extra"] = { get: { summary: "a new route", responses: { "200": { description: "ok", content: { "application/json": { schema: { type: "array", items: { $ref: "#/components/schemas/PutResult" } } } } } } } };
  const after = sdkTypes(doc);
  assert.match(after, / {2}\/\*\* a new field \*\/\n {2}note\?: string \| null;/);
  assert.match(after, /"\/v1\/extra": \{\n {4}\/\*\* a new route \*\/\n {4}get: \{\n {6}responses: \{\n {8}200: Array<PutResult>;/);
});
