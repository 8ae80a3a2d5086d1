// devcache/detail/quote.hpp — how error messages quote the text they reject (ParseError's
// messages for MAC, IP and CIDR text): printable, escaped, and truncated past a limit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace devcache::detail {

/// Inputs longer than this are truncated when quoted in an error message.
inline constexpr std::size_t message_max_input = 64;

/// Appends `c` so that the message stays printable: C escapes for \t \n \r, \xNN for every other
/// control or non-ASCII byte (NUL included), and a backslash before `quote` and before a
/// backslash. Throws: std::bad_alloc.
inline void append_escaped(std::string& out, char c, char quote) {
  const auto byte = static_cast<unsigned char>(c);
  if (c == quote || c == '\\') {
    out += '\\';
    out += c;
  } else if (c == '\t') {
    out += "\\t";
  } else if (c == '\n') {
    out += "\\n";
  } else if (c == '\r') {
    out += "\\r";
  } else if (byte < 0x20 || byte >= 0x7f) {
    constexpr std::string_view hex = "0123456789abcdef";
    out += "\\x";
    out += hex[byte >> 4];
    out += hex[byte & 0xf];
  } else {
    out += c;
  }
}

/// `c` in single quotes, escaped. Throws: std::bad_alloc.
inline std::string quote_char(char c) {
  std::string out = "'";
  append_escaped(out, c, '\'');
  out += '\'';
  return out;
}

/// `input` in double quotes, escaped; past message_max_input bytes truncated, with a note that
/// says so. Complexity: O(min(input.size(), message_max_input)). Throws: std::bad_alloc.
inline std::string quote_input(std::string_view input) {
  std::string out = "\"";
  for (const char c : input.substr(0, message_max_input)) append_escaped(out, c, '"');
  out += '"';
  if (input.size() > message_max_input) {
    out += "... (input truncated to its first " + std::to_string(message_max_input) + " of " +
           std::to_string(input.size()) + " bytes)";
  }
  return out;
}

}  // namespace devcache::detail
