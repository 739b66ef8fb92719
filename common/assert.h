/* assert.h - invariants that hold in every build.
 * TL_ASSERT is on in release builds too: a crit line, then abort. Restarting and
 * recovering from disk beats serving wrong data. TL_ASSERT_DEBUG is for hot loops
 * and compiles away unless TL_DEBUG is defined. Bad bytes from a peer or a file are
 * an error return, never an assertion. */
#ifndef TL_COMMON_ASSERT_H
#define TL_COMMON_ASSERT_H

_Noreturn void tl_assert_fail(const char *expr, const char *file, int line);

#define TL_ASSERT(expr) ((expr) ? (void)0 : tl_assert_fail(#expr, __FILE__, __LINE__))

#ifdef TL_DEBUG
#define TL_ASSERT_DEBUG(expr) TL_ASSERT(expr)
#else
#define TL_ASSERT_DEBUG(expr) ((void)0)
#endif

#define TL_STATIC_ASSERT(expr, why) _Static_assert(expr, why)

#define TL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TL_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define TL_MAX(a, b)     ((a) > (b) ? (a) : (b))
#define TL_UNUSED(x)     ((void)(x))

#endif
