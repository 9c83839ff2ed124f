/*
 * Multi-buffer SHA-256 (FIPS 180-4), one message per SIMD lane. Included once per instruction
 * set by sha256_mb.c with these macros defined:
 *   LANES, VEC, SUFFIX, TARGET_ATTR, ADD, SET1, ROR, SHR, SHL, OR, XOR3, CH, MAJ,
 *   LOAD_BLOCK(bases, offset, w), STORE(u32ptr, vec)
 * LOAD_BLOCK fills w[0..15] so that lane l of w[t] is the big-endian 32-bit word at
 * bases[l] + offset + 4t (one 64-byte block per lane, transposed into lanes).
 */
#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)
#define FN(name) KCAT(name, SUFFIX)

TARGET_ATTR static inline void FN(compress)(VEC st[8], VEC w[16]) {
  VEC a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
#pragma GCC unroll 64
  for (int t = 0; t < 64; t++) {
    if (t >= 16) {
      VEC w15 = w[(t - 15) & 15];
      VEC w2 = w[(t - 2) & 15];
      VEC s0 = XOR3(ROR(w15, 7), ROR(w15, 18), SHR(w15, 3));
      VEC s1 = XOR3(ROR(w2, 17), ROR(w2, 19), SHR(w2, 10));
      w[t & 15] = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));
    }
    VEC bigS1 = XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25));
    VEC t1 = ADD(ADD(h, bigS1), ADD(CH(e, f, g), ADD(SET1(K256[t]), w[t & 15])));
    VEC bigS0 = XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22));
    VEC t2 = ADD(bigS0, MAJ(a, b, c));
    h = g;
    g = f;
    f = e;
    e = ADD(d, t1);
    d = c;
    c = b;
    b = a;
    a = ADD(t1, t2);
  }
  st[0] = ADD(st[0], a);
  st[1] = ADD(st[1], b);
  st[2] = ADD(st[2], c);
  st[3] = ADD(st[3], d);
  st[4] = ADD(st[4], e);
  st[5] = ADD(st[5], f);
  st[6] = ADD(st[6], g);
  st[7] = ADD(st[7], h);
}

/*
 * SHA-256 of (prefix byte ‖ blocks·64 payload bytes at bases[l]) for every lane. The payload is
 * read as aligned words and shifted by one byte on the fly, so no copy is made.
 * Digest word i of lane l goes to out[i·LANES + l].
 */
TARGET_ATTR static void FN(prefixed)(const uint8_t* const* bases, int blocks, uint32_t prefix, uint32_t* out) {
  VEC st[8];
  VEC w[16];
  VEC g[16];
  for (int i = 0; i < 8; i++) st[i] = SET1(IV256[i]);
  VEC high = SET1(prefix << 24);
  for (int blk = 0; blk < blocks; blk++) {
    LOAD_BLOCK(bases, (size_t)blk * 64, g);
    for (int t = 0; t < 16; t++) {
      w[t] = OR(high, SHR(g[t], 8));
      high = SHL(g[t], 24);
    }
    FN(compress)(st, w);
  }
  w[0] = OR(high, SET1(0x00800000u));
  for (int t = 1; t < 15; t++) w[t] = SET1(0);
  w[15] = SET1((uint32_t)(((uint64_t)blocks * 64 + 1) * 8));
  FN(compress)(st, w);
  for (int i = 0; i < 8; i++) STORE(out + i * LANES, st[i]);
}

/* SHA-256 of `len` bytes at bases[l] for every lane (all lanes the same length). */
TARGET_ATTR static void FN(raw)(const uint8_t* const* bases, size_t len, uint32_t* out) {
  VEC st[8];
  VEC w[16];
  for (int i = 0; i < 8; i++) st[i] = SET1(IV256[i]);
  size_t full = len / 64;
  for (size_t blk = 0; blk < full; blk++) {
    LOAD_BLOCK(bases, blk * 64, w);
    FN(compress)(st, w);
  }
  size_t rest = len - full * 64;
  int tailBlocks = rest + 9 <= 64 ? 1 : 2;
  static __thread uint8_t tail[LANES][128] __attribute__((aligned(64)));
  const uint8_t* tails[LANES];
  uint64_t bits = (uint64_t)len * 8;
  for (int l = 0; l < LANES; l++) {
    memset(tail[l], 0, sizeof tail[l]);
    memcpy(tail[l], bases[l] + full * 64, rest);
    tail[l][rest] = 0x80;
    for (int i = 0; i < 8; i++) tail[l][tailBlocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    tails[l] = tail[l];
  }
  for (int blk = 0; blk < tailBlocks; blk++) {
    LOAD_BLOCK(tails, (size_t)blk * 64, w);
    FN(compress)(st, w);
  }
  for (int i = 0; i < 8; i++) STORE(out + i * LANES, st[i]);
}

#undef FN
#undef KCAT
#undef KCAT2
