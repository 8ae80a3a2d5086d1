// tests/sanitizers.hpp — which sanitizer a test binary is built with, so that tests can run
// fewer operations where every memory access costs several times more.
#pragma once

namespace devcache::test {

// GCC defines __SANITIZE_THREAD__ / __SANITIZE_ADDRESS__; Clang answers __has_feature.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool thread_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool thread_sanitizer = true;
#else
inline constexpr bool thread_sanitizer = false;
#endif
#else
inline constexpr bool thread_sanitizer = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool address_sanitizer = true;
#else
inline constexpr bool address_sanitizer = false;
#endif
#else
inline constexpr bool address_sanitizer = false;
#endif

/// Built with ThreadSanitizer or AddressSanitizer.
inline constexpr bool sanitized = thread_sanitizer || address_sanitizer;

}  // namespace devcache::test
