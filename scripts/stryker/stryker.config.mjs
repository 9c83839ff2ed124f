// The Stryker config of `npm run mutate`: the target comes from MURI_MUTATE_TARGET (see base.mjs).
import { configFor } from "./base.mjs";

export default configFor(process.env.MURI_MUTATE_TARGET ?? "");
