/*
 * muri_sha256: batched SHA-256 for the Merkle trees of docs/ENCODING.md, as an N-API addon.
 *
 * node:crypto costs ~2 µs per call here, and a 1 MiB fragment tree is 2047 small hashes, so the
 * tree is built level by level with one call each: leaves (0x00 ‖ 1024-byte chunk) and inner nodes
 * (0x01 ‖ left ‖ right) are hashed many at a time, one message per SIMD lane (AVX-512: 16 lanes,
 * AVX2: 8, portable C: 1), picked at load time from the CPU's features.
 *
 * Exports: kernel(), setKernel(name), hashLeaves(data, size, out), hashPairs(nodes, pairs, out),
 * sha256Many(messages, out). The TypeScript side (hash-backend.ts) checks every kernel against
 * node:crypto before use.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MURI_X86 1
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static const uint32_t IV256[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define MAX_LANES 16
static const uint8_t ZERO_BLOCK[1024] = {0};

/* ---------------- portable C, one lane ---------------- */
static inline uint32_t be32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
#define LANES 1
#define VEC uint32_t
#define SUFFIX _scalar
#define TARGET_ATTR
#define ADD(a, b) ((a) + (b))
#define SET1(x) ((uint32_t)(x))
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define SHR(x, n) ((x) >> (n))
#define SHL(x, n) ((x) << (n))
#define OR(a, b) ((a) | (b))
#define XOR3(a, b, c) ((a) ^ (b) ^ (c))
#define CH(e, f, g) (((e) & (f)) ^ (~(e) & (g)))
#define MAJ(a, b, c) (((a) & (b)) ^ ((a) & (c)) ^ ((b) & (c)))
#define LOAD_BLOCK(bases, off, w)                                    \
  do {                                                               \
    for (int t_ = 0; t_ < 16; t_++) (w)[t_] = be32((bases)[0] + (off) + 4 * t_); \
  } while (0)
#define STORE(p, v) (*(p) = (v))
#include "sha256_kernel.h"
#undef LANES
#undef VEC
#undef SUFFIX
#undef TARGET_ATTR
#undef ADD
#undef SET1
#undef ROR
#undef SHR
#undef SHL
#undef OR
#undef XOR3
#undef CH
#undef MAJ
#undef LOAD_BLOCK
#undef STORE

#ifdef MURI_X86
/* ---------------- AVX2, eight lanes ---------------- */
/*
 * Loads one 64-byte block per lane and transposes them, so that lane l of w[t] is word t of lane l.
 * (Gathers would do it in two instructions per word, but measured here they made the whole hash
 * about 2x slower than these loads + shuffles; microcode mitigations such as the one for Gather
 * Data Sampling make gathers slow on many Intel CPUs.)
 */
__attribute__((target("avx2"))) static inline void transpose8_avx2(const __m256i r[8], __m256i c[8]) {
  __m256i a[8], b[8];
  for (int i = 0; i < 4; i++) {
    a[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    b[4 * i + 0] = _mm256_unpacklo_epi64(a[4 * i + 0], a[4 * i + 2]);
    b[4 * i + 1] = _mm256_unpackhi_epi64(a[4 * i + 0], a[4 * i + 2]);
    b[4 * i + 2] = _mm256_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm256_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int col = 0; col < 4; col++) {
    c[col] = _mm256_permute2x128_si256(b[col], b[4 + col], 0x20);
    c[4 + col] = _mm256_permute2x128_si256(b[col], b[4 + col], 0x31);
  }
}
__attribute__((target("avx2"))) static inline void load_block_avx2(const uint8_t* const* bases, size_t off, __m256i w[16]) {
  const __m256i swap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11,
                                        10, 9, 8, 15, 14, 13, 12);
  __m256i r[8];
  for (int half = 0; half < 2; half++) {
    for (int l = 0; l < 8; l++) {
      r[l] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i*)(const void*)(bases[l] + off + 32 * half)), swap);
    }
    transpose8_avx2(r, w + 8 * half);
  }
}
#define LANES 8
#define VEC __m256i
#define SUFFIX _avx2
#define TARGET_ATTR __attribute__((target("avx2")))
#define ADD(a, b) _mm256_add_epi32((a), (b))
#define SET1(x) _mm256_set1_epi32((int)(x))
#define SHR(x, n) _mm256_srli_epi32((x), (n))
#define SHL(x, n) _mm256_slli_epi32((x), (n))
#define ROR(x, n) _mm256_or_si256(_mm256_srli_epi32((x), (n)), _mm256_slli_epi32((x), 32 - (n)))
#define OR(a, b) _mm256_or_si256((a), (b))
#define XOR3(a, b, c) _mm256_xor_si256(_mm256_xor_si256((a), (b)), (c))
#define CH(e, f, g) _mm256_xor_si256(_mm256_and_si256((e), (f)), _mm256_andnot_si256((e), (g)))
#define MAJ(a, b, c) _mm256_or_si256(_mm256_and_si256((a), (b)), _mm256_and_si256(_mm256_or_si256((a), (b)), (c)))
#define LOAD_BLOCK(bases, off, w) load_block_avx2((bases), (off), (w))
#define STORE(p, v) _mm256_storeu_si256((__m256i*)(void*)(p), (v))
#include "sha256_kernel.h"
#undef LANES
#undef VEC
#undef SUFFIX
#undef TARGET_ATTR
#undef ADD
#undef SET1
#undef ROR
#undef SHR
#undef SHL
#undef OR
#undef XOR3
#undef CH
#undef MAJ
#undef LOAD_BLOCK
#undef STORE

/* ---------------- AVX-512, sixteen lanes ---------------- */
/* 16x16 transpose of 32-bit words: rows r[l] (lane l's block) -> columns c[t] (word t of every lane). */
__attribute__((target("avx512f,avx512bw"))) static inline void transpose16_avx512(const __m512i r[16], __m512i c[16]) {
  __m512i a[16], b[16];
  for (int i = 0; i < 8; i++) {
    a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  /* b[4i + col], 128-bit chunk k: word 4k + col of rows 4i..4i+3 */
  for (int i = 0; i < 4; i++) {
    b[4 * i + 0] = _mm512_unpacklo_epi64(a[4 * i + 0], a[4 * i + 2]);
    b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i + 0], a[4 * i + 2]);
    b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
  }
  /* for each col: 4x4 transpose of 128-bit chunks across b[col], b[4+col], b[8+col], b[12+col] */
  for (int col = 0; col < 4; col++) {
    __m512i p0 = _mm512_shuffle_i32x4(b[col], b[4 + col], 0x44);
    __m512i p1 = _mm512_shuffle_i32x4(b[col], b[4 + col], 0xEE);
    __m512i p2 = _mm512_shuffle_i32x4(b[8 + col], b[12 + col], 0x44);
    __m512i p3 = _mm512_shuffle_i32x4(b[8 + col], b[12 + col], 0xEE);
    c[0 + col] = _mm512_shuffle_i32x4(p0, p2, 0x88);
    c[4 + col] = _mm512_shuffle_i32x4(p0, p2, 0xDD);
    c[8 + col] = _mm512_shuffle_i32x4(p1, p3, 0x88);
    c[12 + col] = _mm512_shuffle_i32x4(p1, p3, 0xDD);
  }
}
__attribute__((target("avx512f,avx512bw"))) static inline void load_block_avx512(const uint8_t* const* bases, size_t off, __m512i w[16]) {
  const __m512i swap = _mm512_set_epi8(60, 61, 62, 63, 56, 57, 58, 59, 52, 53, 54, 55, 48, 49, 50, 51, 44, 45, 46, 47, 40,
                                       41, 42, 43, 36, 37, 38, 39, 32, 33, 34, 35, 28, 29, 30, 31, 24, 25, 26, 27, 20, 21,
                                       22, 23, 16, 17, 18, 19, 12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  __m512i r[16];
  for (int l = 0; l < 16; l++) r[l] = _mm512_shuffle_epi8(_mm512_loadu_si512((const void*)(bases[l] + off)), swap);
  transpose16_avx512(r, w);
}
#define LANES 16
#define VEC __m512i
#define SUFFIX _avx512
#define TARGET_ATTR __attribute__((target("avx512f,avx512bw")))
#define ADD(a, b) _mm512_add_epi32((a), (b))
#define SET1(x) _mm512_set1_epi32((int)(x))
#define SHR(x, n) _mm512_srli_epi32((x), (n))
#define SHL(x, n) _mm512_slli_epi32((x), (n))
#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define OR(a, b) _mm512_or_si512((a), (b))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xCA)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xE8)
#define LOAD_BLOCK(bases, off, w) load_block_avx512((bases), (off), (w))
#define STORE(p, v) _mm512_storeu_si512((void*)(p), (v))
#include "sha256_kernel.h"
#undef LANES
#undef VEC
#undef SUFFIX
#undef TARGET_ATTR
#undef ADD
#undef SET1
#undef ROR
#undef SHR
#undef SHL
#undef OR
#undef XOR3
#undef CH
#undef MAJ
#undef LOAD_BLOCK
#undef STORE
#endif /* MURI_X86 */

/* ---------------- dispatch ---------------- */
typedef void (*prefixed_fn)(const uint8_t* const*, int, uint32_t, uint32_t*);
typedef void (*raw_fn)(const uint8_t* const*, size_t, uint32_t*);

static struct {
  const char* name;
  int lanes;
  prefixed_fn prefixed;
  raw_fn raw;
} g = {"scalar", 1, prefixed_scalar, raw_scalar};

static int select_kernel(const char* name) {
#ifdef MURI_X86
  __builtin_cpu_init();
  int has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  int has2 = __builtin_cpu_supports("avx2");
  if ((name == NULL || strcmp(name, "avx512") == 0) && has512) {
    g.name = "avx512", g.lanes = 16, g.prefixed = prefixed_avx512, g.raw = raw_avx512;
    return 1;
  }
  if ((name == NULL || strcmp(name, "avx2") == 0) && has2) {
    g.name = "avx2", g.lanes = 8, g.prefixed = prefixed_avx2, g.raw = raw_avx2;
    return 1;
  }
#endif
  if (name == NULL || strcmp(name, "scalar") == 0) {
    g.name = "scalar", g.lanes = 1, g.prefixed = prefixed_scalar, g.raw = raw_scalar;
    return 1;
  }
  return 0;
}

static void store_digests(const uint32_t* words, int lanes, int used, uint8_t* const* dst) {
  for (int l = 0; l < used; l++) {
    for (int i = 0; i < 8; i++) {
      uint32_t v = words[i * lanes + l];
      dst[l][4 * i] = (uint8_t)(v >> 24);
      dst[l][4 * i + 1] = (uint8_t)(v >> 16);
      dst[l][4 * i + 2] = (uint8_t)(v >> 8);
      dst[l][4 * i + 3] = (uint8_t)v;
    }
  }
}

/* Leaf hashes of data[0, size): count = max(1, ceil(size / 1024)) digests into out. */
static void hash_leaves(const uint8_t* data, size_t size, uint8_t* out) {
  size_t count = size == 0 ? 1 : (size + 1023) / 1024;
  size_t full = size / 1024;
  uint8_t partial[1024];
  if (count > full) {
    memset(partial, 0, sizeof partial);
    memcpy(partial, data + full * 1024, size - full * 1024);
  }
  const int lanes = g.lanes;
  uint32_t words[8 * MAX_LANES];
  const uint8_t* bases[MAX_LANES];
  uint8_t* dst[MAX_LANES];
  for (size_t i0 = 0; i0 < count; i0 += (size_t)lanes) {
    int used = 0;
    for (int l = 0; l < lanes; l++) {
      size_t idx = i0 + (size_t)l;
      bases[l] = idx < full ? data + idx * 1024 : idx < count ? partial : ZERO_BLOCK;
      if (idx < count) dst[used++] = out + idx * 32;
    }
    g.prefixed(bases, 16, 0x00, words);
    store_digests(words, lanes, used, dst);
  }
}

/* out[i] = H(0x01 ‖ nodes[64i, 64i+64)) for i < pairs; out may alias nodes. */
static void hash_pairs(const uint8_t* nodes, size_t pairs, uint8_t* out) {
  const int lanes = g.lanes;
  uint32_t words[8 * MAX_LANES];
  const uint8_t* bases[MAX_LANES];
  uint8_t* dst[MAX_LANES];
  for (size_t i0 = 0; i0 < pairs; i0 += (size_t)lanes) {
    int used = 0;
    for (int l = 0; l < lanes; l++) {
      size_t idx = i0 + (size_t)l;
      bases[l] = idx < pairs ? nodes + idx * 64 : ZERO_BLOCK;
      if (idx < pairs) dst[used++] = out + idx * 32;
    }
    g.prefixed(bases, 1, 0x01, words);
    store_digests(words, lanes, used, dst);
  }
}

/* ---------------- N-API glue ---------------- */
#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "ERR_MURI_SHA256", "N-API call failed");  \
      return NULL;                                                    \
    }                                                                 \
  } while (0)
#define FAIL(msg)                                     \
  do {                                                \
    napi_throw_type_error(env, "ERR_MURI_SHA256", msg); \
    return NULL;                                      \
  } while (0)

static int get_bytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  size_t count;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &count, &ptr, &ab, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t*)ptr;
  *length = count;
  return 1;
}

static int get_size(napi_env env, napi_value value, size_t* out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) return 0;
  if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) return 0;
  *out = (size_t)d;
  return 1;
}

static napi_value js_kernel(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_create_string_utf8(env, g.name, NAPI_AUTO_LENGTH, &result));
  return result;
}

static napi_value js_set_kernel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[32];
  size_t len;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) FAIL("expected (name)");
  napi_value result;
  CHECK(napi_get_boolean(env, select_kernel(name), &result));
  return result;
}

static napi_value js_hash_leaves(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data, *out;
  size_t dataLen, outLen, size;
  if (argc < 3 || !get_bytes(env, argv[0], &data, &dataLen) || !get_size(env, argv[1], &size) ||
      !get_bytes(env, argv[2], &out, &outLen))
    FAIL("expected (Uint8Array data, number size, Uint8Array out)");
  size_t count = size == 0 ? 1 : (size + 1023) / 1024;
  if (size > dataLen) FAIL("size exceeds data length");
  if (outLen < count * 32) FAIL("out too small");
  hash_leaves(data, size, out);
  return NULL;
}

static napi_value js_hash_pairs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *nodes, *out;
  size_t nodesLen, outLen, pairs;
  if (argc < 3 || !get_bytes(env, argv[0], &nodes, &nodesLen) || !get_size(env, argv[1], &pairs) ||
      !get_bytes(env, argv[2], &out, &outLen))
    FAIL("expected (Uint8Array nodes, number pairs, Uint8Array out)");
  if (nodesLen < pairs * 64) FAIL("nodes too small");
  if (outLen < pairs * 32) FAIL("out too small");
  hash_pairs(nodes, pairs, out);
  return NULL;
}

static napi_value js_sha256_many(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false;
  uint8_t* out;
  size_t outLen;
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || !get_bytes(env, argv[1], &out, &outLen))
    FAIL("expected (Uint8Array[] messages, Uint8Array out)");
  uint32_t n;
  CHECK(napi_get_array_length(env, argv[0], &n));
  if (outLen < (size_t)n * 32) FAIL("out too small");
  const uint8_t** ptrs = malloc(sizeof(uint8_t*) * (n + 1));
  size_t* lens = malloc(sizeof(size_t) * (n + 1));
  uint8_t* done = calloc(n + 1, 1);
  if (ptrs == NULL || lens == NULL || done == NULL) {
    free(ptrs), free(lens), free(done);
    FAIL("out of memory");
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    uint8_t* p;
    size_t len;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok || !get_bytes(env, item, &p, &len)) {
      free(ptrs), free(lens), free(done);
      FAIL("messages must be Uint8Arrays");
    }
    ptrs[i] = p;
    lens[i] = len;
  }
  const int lanes = g.lanes;
  uint32_t words[8 * MAX_LANES];
  const uint8_t* bases[MAX_LANES];
  uint8_t* dst[MAX_LANES];
  for (uint32_t i = 0; i < n; i++) {
    if (done[i]) continue;
    int used = 0;
    for (uint32_t j = i; j < n && used < lanes; j++) {
      if (done[j] || lens[j] != lens[i]) continue;
      done[j] = 1;
      bases[used] = ptrs[j];
      dst[used] = out + (size_t)j * 32;
      used++;
    }
    for (int l = used; l < lanes; l++) bases[l] = bases[0];
    g.raw(bases, lens[i], words);
    store_digests(words, lanes, used, dst);
  }
  free(ptrs), free(lens), free(done);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const char* forced = getenv("MURI_SHA256_KERNEL");
  if (forced == NULL || !select_kernel(forced)) select_kernel(NULL);
  napi_property_descriptor props[] = {
      {"kernel", NULL, js_kernel, NULL, NULL, NULL, napi_default, NULL},
      {"setKernel", NULL, js_set_kernel, NULL, NULL, NULL, napi_default, NULL},
      {"hashLeaves", NULL, js_hash_leaves, NULL, NULL, NULL, napi_default, NULL},
      {"hashPairs", NULL, js_hash_pairs, NULL, NULL, NULL, napi_default, NULL},
      {"sha256Many", NULL, js_sha256_many, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
