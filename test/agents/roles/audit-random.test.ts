/**
 * The validator's audit targets come from node:crypto, not Math.random (issue 21: a predictable
 * generator lets a node learn which fragments will be audited and keep only those).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { auditRandom } from "../../../agents/roles/validator/validator.js";

test("auditRandom is uniform in [0, 1) and never consults Math.random", () => {
  const original = Math.random;
  Math.random = () => {
    throw new Error("Math.random was used for audit selection");
  };
  try {
    const draws = Array.from({ length: 4_000 }, () => auditRandom());
    assert.ok(draws.every((x) => x >= 0 && x < 1), "in [0, 1)");
    assert.ok(new Set(draws).size > 3_990, "not repeating");
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
    const lowHalf = draws.filter((x) => x < 0.5).length;
    assert.ok(lowHalf > 1_800 && lowHalf < 2_200, `${lowHalf} of 4,000 below 0.5`);
  } finally {
    Math.random = original;
  }
});
