/** Queries per second of `search` over `queries`, `inFlight` at a time (bench/http.ts and its HTTP user). */
export async function qps(queries: readonly number[][], inFlight: number, search: (q: number[]) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < queries.length; i = next++) await search(queries[i]!);
    }),
  );
  return queries.length / ((performance.now() - start) / 1000);
}
