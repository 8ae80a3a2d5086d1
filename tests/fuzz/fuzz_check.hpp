// tests/fuzz/fuzz_check.hpp — what the fuzz targets share: a check that aborts with a message (so
// libFuzzer records the input as a crash, and the replay tests fail), and an unescaper for the
// quoted input in ParseError messages.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

/// Aborts, naming the failed condition and its line, unless `cond` holds. A macro for #cond and
/// __LINE__ (std::source_location needs Clang 15 with libstdc++).
#define DEVCACHE_FUZZ_CHECK(cond)                                                      \
  do {                                                                                 \
    if (!(cond)) devcache::fuzz::check_failed(#cond, __FILE__, __LINE__); /* NOLINT */ \
  } while (false)

namespace devcache::fuzz {

/// What a target is doing, printed when a check fails (a target sets it as it goes).
inline std::string& check_context() {
  static std::string context;
  return context;
}

[[noreturn]] inline void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "fuzz check failed: %s\n  at %s:%d\n", condition, file, line);
  if (!check_context().empty()) std::fprintf(stderr, "  while: %s\n", check_context().c_str());
  std::abort();
}

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// A quoted string read back from a message, and the rest of the message after its closing quote.
struct Quoted {
  std::string text;
  std::string_view rest;
};

/// If `message` starts with `prefix` followed by a double-quoted, escaped string, returns that
/// string unescaped (\\ \" \' \0 \t \n \r \xNN); otherwise std::nullopt. Written from the messages'
/// documented form, independently of devcache's escapers, so that it checks them.
inline std::optional<Quoted> quoted_input(std::string_view message, std::string_view prefix) {
  if (message.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::size_t i = prefix.size();
  if (i >= message.size() || message[i] != '"') return std::nullopt;
  std::string out;
  for (++i; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '"') return Quoted{out, message.substr(i + 1)};
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == message.size()) return std::nullopt;
    switch (message[i]) {
      case '\\':
      case '"':
      case '\'':
        out += message[i];
        break;
      case '0':
        out += '\0';
        break;
      case 't':
        out += '\t';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 'x': {
        if (i + 2 >= message.size()) return std::nullopt;
        const int hi = hex_digit(message[i + 1]);
        const int lo = hex_digit(message[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;  // no closing quote
}

/// True if every byte of `text` is printable ASCII (messages must stay printable).
inline bool printable(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/// Checks a ParseError-style message for `input`: it starts with `prefix` and the quoted input
/// (its first `max_quoted` bytes, escaped), says it was truncated when it was, and is printable.
inline void check_message_quotes_input(std::string_view message, std::string_view prefix,
                                       std::string_view input, std::size_t max_quoted) {
  DEVCACHE_FUZZ_CHECK(printable(message));
  const std::optional<Quoted> quoted = quoted_input(message, prefix);
  DEVCACHE_FUZZ_CHECK(quoted.has_value());
  DEVCACHE_FUZZ_CHECK(quoted->text == input.substr(0, max_quoted));
  // Right after the closing quote: a truncation note exactly when the input was truncated, else
  // the ": reason".
  const bool truncated = input.size() > max_quoted;
  DEVCACHE_FUZZ_CHECK(quoted->rest.starts_with(truncated ? "... (" : ": "));
  if (truncated) {
    const std::string note = " of " + std::to_string(input.size()) + " bytes): ";
    DEVCACHE_FUZZ_CHECK(quoted->rest.find(note) != std::string_view::npos);
  }
}

}  // namespace devcache::fuzz
