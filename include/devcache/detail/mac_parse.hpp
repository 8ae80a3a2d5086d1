// devcache/detail/mac_parse.hpp — the one MAC address parser behind MacAddress::parse, try_parse
// and the _mac literal.
//
// parse_mac() is constexpr, never allocates and never throws: it returns a MacParseResult holding
// either the 48-bit value or an error code with the byte position where the input went wrong.
// try_parse() only looks at the code; parse() hands a failure to throw_mac_parse_error(), which
// builds the message on that cold path. Sharing one parser is what keeps parse and try_parse in
// exact agreement, and keeping it constexpr is what lets a malformed literal fail to compile.
//
// How the parser reads its input (the accepted spellings are listed in mac_address.hpp):
//   * hex digits accumulate into the current group; ':', '-' and '.' end a group;
//   * the first separator and the size of the first group fix the form (six groups of 1-2 digits,
//     three of 4, or two of 6), and every later group must match that form and separator;
//   * no separator at all means the bare form of exactly 12 digits;
//   * an input that would be valid with eight (or four, or 16 digits) instead of six (three, 12)
//     is reported as an EUI-64 address rather than as "too many groups";
//   * errors are reported left to right: the first thing wrong is the thing reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <devcache/detail/quote.hpp>
#include <devcache/errors.hpp>

namespace devcache::detail {

/// What went wrong; MacParseErrc::none means the parse succeeded.
enum class MacParseErrc : std::uint8_t {
  none,
  empty,                // the input is empty
  invalid_character,    // a character that is neither a hex digit nor a separator
  leading_garbage,      // the input does not start with a hex digit (space, separator, ...)
  trailing_whitespace,  // the input ends in whitespace
  trailing_garbage,     // characters after a complete address
  trailing_separator,   // the input ends with a separator
  empty_group,          // two separators in a row
  mixed_separators,     // a separator other than the first one
  bad_group_size,       // a group has the wrong number of digits for its form
  bad_digit_count,      // no separators, and not exactly 12 digits
  too_few_groups,
  too_many_groups,
  eui64,  // a well-formed 64-bit EUI-64 address
};

/// The separated spellings; `bare` is the 12-digit form without separators.
enum class MacForm : std::uint8_t {
  unknown,
  bare,
  colon6,
  hyphen6,
  hyphen3,
  dot3,
  colon2,
  hyphen2
};

/// The shape of one form: separator, group count, digits per group, and the group count of the
/// matching EUI-64 spelling (0 if there is none).
struct MacFormInfo {
  char separator = 0;
  std::size_t groups = 0;
  std::size_t min_digits = 0;
  std::size_t max_digits = 0;
  std::size_t eui64_groups = 0;
  std::string_view pattern;
};

constexpr MacFormInfo mac_form_info(MacForm form) noexcept {
  switch (form) {
    case MacForm::bare:
      return {0, 1, 12, 12, 0, "xxxxxxxxxxxx"};
    case MacForm::colon6:
      return {':', 6, 1, 2, 8, "xx:xx:xx:xx:xx:xx"};
    case MacForm::hyphen6:
      return {'-', 6, 1, 2, 8, "xx-xx-xx-xx-xx-xx"};
    case MacForm::hyphen3:
      return {'-', 3, 4, 4, 4, "xxxx-xxxx-xxxx"};
    case MacForm::dot3:
      return {'.', 3, 4, 4, 4, "xxxx.xxxx.xxxx"};
    case MacForm::colon2:
      return {':', 2, 6, 6, 0, "xxxxxx:xxxxxx"};
    case MacForm::hyphen2:
      return {'-', 2, 6, 6, 0, "xxxxxx-xxxxxx"};
    case MacForm::unknown:
      break;
  }
  return {};
}

/// The form a first group of `digits` hex digits followed by `separator` starts, if any.
constexpr MacForm mac_infer_form(char separator, std::size_t digits) noexcept {
  switch (separator) {
    case ':':
      return digits == 1 || digits == 2 ? MacForm::colon6
             : digits == 6              ? MacForm::colon2
                                        : MacForm::unknown;
    case '-':
      return digits == 1 || digits == 2 ? MacForm::hyphen6
             : digits == 4              ? MacForm::hyphen3
             : digits == 6              ? MacForm::hyphen2
                                        : MacForm::unknown;
    case '.':
      return digits == 4 ? MacForm::dot3 : MacForm::unknown;
    default:
      return MacForm::unknown;
  }
}

/// The outcome of parse_mac(). Which fields beyond `error` and `position` mean something depends
/// on the error; make_mac_parse_message() is the reference.
struct MacParseResult {
  std::uint64_t value = 0;                  // the address, if error == none
  MacParseErrc error = MacParseErrc::none;  //
  std::size_t position = 0;                 // byte offset the error refers to
  char character = 0;                       // the offending character or separator
  MacForm form = MacForm::unknown;          // the form inferred so far
  std::size_t group = 0;           // 1-based group number, or the group count for count errors
  std::size_t digits = 0;          // the digit count of the offending group
  std::size_t first_position = 0;  // where the first separator is (mixed_separators)
  char first_separator = 0;        // the first separator (mixed_separators)

  [[nodiscard]] constexpr bool ok() const noexcept { return error == MacParseErrc::none; }
};

constexpr int mac_hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool mac_is_separator(char c) noexcept { return c == ':' || c == '-' || c == '.'; }

constexpr bool mac_is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

constexpr bool mac_is_alnum(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// Parses every spelling MacAddress::parse accepts. Never throws, never allocates.
/// Complexity: O(text size), one pass (plus one look-ahead over trailing whitespace).
constexpr MacParseResult parse_mac(std::string_view text) noexcept {
  MacParseResult r;
  const auto fail = [&r](MacParseErrc error, std::size_t position, char character = 0) {
    r.error = error;
    r.position = position;
    r.character = character;
    return r;
  };
  if (text.empty()) return fail(MacParseErrc::empty, 0);

  MacFormInfo info;                // valid once r.form != unknown
  std::size_t group = 0;           // 0-based index of the current group
  std::size_t digits = 0;          // hex digits seen in the current group
  std::size_t group_start = 0;     // where the current group starts
  std::uint64_t group_value = 0;   // the current group's digits (wraps harmlessly if too long)
  std::uint64_t value = 0;         // the groups closed so far
  std::size_t extra_start = 0;     // where the first group beyond the form's count starts
  bool extra_groups_valid = true;  // every group beyond the form's count has the form's size

  // Ends group `group` (never the first one) under the known form. Returns false on a size error.
  const auto close_group = [&]() {
    const bool size_ok = digits >= info.min_digits && digits <= info.max_digits;
    if (group < info.groups) {
      if (!size_ok) {
        fail(MacParseErrc::bad_group_size, group_start);
        r.group = group + 1;
        r.digits = digits;
        return false;
      }
      value = (value << (48 / info.groups)) | group_value;
    } else {
      if (group == info.groups) extra_start = group_start;
      extra_groups_valid = extra_groups_valid && size_ok;
    }
    return true;
  };
  // True if text[0, i) is a complete address whose last group cannot take another digit, so
  // whatever comes next is trailing garbage rather than a bad digit inside the address.
  const auto complete_and_full = [&]() {
    if (r.form == MacForm::unknown) return digits == 12;
    return group + 1 == info.groups && digits == info.max_digits;
  };

  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (const int h = mac_hex_value(c); h >= 0) {
      group_value = group_value * 16 + static_cast<std::uint64_t>(h);
      ++digits;
      continue;
    }
    if (mac_is_separator(c)) {
      if (digits == 0) {
        if (i == 0) return fail(MacParseErrc::leading_garbage, i, c);
        fail(MacParseErrc::empty_group, i, c);
        r.group = group + 1;
        return r;
      }
      if (r.form == MacForm::unknown) {
        r.form = mac_infer_form(c, digits);
        if (r.form == MacForm::unknown) {
          if (digits == 12) return fail(MacParseErrc::trailing_garbage, i, c);  // "001122334455:"
          fail(MacParseErrc::bad_group_size, 0, c);
          r.group = 1;
          r.digits = digits;
          return r;
        }
        info = mac_form_info(r.form);
        r.first_position = i;
        r.first_separator = c;
        value = group_value;
      } else {
        if (!close_group()) return r;
        if (c != info.separator) return fail(MacParseErrc::mixed_separators, i, c);
      }
      ++group;
      digits = 0;
      group_value = 0;
      group_start = i + 1;
      continue;
    }
    // Neither a hex digit nor a separator.
    if (i == 0) {
      return fail(mac_is_alnum(c) ? MacParseErrc::invalid_character : MacParseErrc::leading_garbage,
                  i, c);
    }
    if (mac_is_space(c)) {
      bool only_space_follows = true;
      for (std::size_t j = i + 1; j < text.size(); ++j) {
        only_space_follows = only_space_follows && mac_is_space(text[j]);
      }
      if (only_space_follows) return fail(MacParseErrc::trailing_whitespace, i, c);
    }
    if (complete_and_full()) return fail(MacParseErrc::trailing_garbage, i, c);
    return fail(MacParseErrc::invalid_character, i, c);
  }

  if (digits == 0) return fail(MacParseErrc::trailing_separator, text.size() - 1, text.back());
  if (r.form == MacForm::unknown) {
    r.form = MacForm::bare;
    if (digits == 16) return fail(MacParseErrc::eui64, 0);
    if (digits != 12) {
      fail(MacParseErrc::bad_digit_count, 0);
      r.digits = digits;
      return r;
    }
    r.value = group_value;
    return r;
  }
  if (!close_group()) return r;
  const std::size_t count = group + 1;
  if (count < info.groups) {
    fail(MacParseErrc::too_few_groups, text.size());
    r.group = count;
    return r;
  }
  if (count > info.groups) {
    if (count == info.eui64_groups && extra_groups_valid) return fail(MacParseErrc::eui64, 0);
    fail(MacParseErrc::too_many_groups, extra_start);
    r.group = count;
    return r;
  }
  r.value = value;
  return r;
}

/// The full ParseError message for a failed parse_mac(input).
/// Complexity: O(min(input size, message_max_input)). Throws: std::bad_alloc.
inline std::string make_mac_parse_message(std::string_view input, const MacParseResult& r) {
  using std::to_string;
  std::string m = "invalid MAC address " + quote_input(input);
  m += ": ";
  const std::string at = " at position " + to_string(r.position);
  const MacFormInfo info = mac_form_info(r.form);
  const std::string in_form = " in the " + std::string(info.pattern) + " form";
  switch (r.error) {
    case MacParseErrc::none:
      m += "no error";
      break;
    case MacParseErrc::empty:
      m += "empty input";
      break;
    case MacParseErrc::invalid_character:
      m += quote_char(r.character) + at + " is not a hex digit";
      break;
    case MacParseErrc::leading_garbage:
      m += "unexpected " + quote_char(r.character) + at + " before the first hex digit";
      break;
    case MacParseErrc::trailing_whitespace:
      m += "unexpected trailing whitespace " + quote_char(r.character) + at;
      break;
    case MacParseErrc::trailing_garbage:
      m += "unexpected " + quote_char(r.character) + at + " after a complete address";
      break;
    case MacParseErrc::trailing_separator:
      m += "input ends with separator " + quote_char(r.character) + at;
      break;
    case MacParseErrc::empty_group:
      m += "group " + to_string(r.group) + " is empty: separator " + quote_char(r.character) + at +
           " follows another separator";
      break;
    case MacParseErrc::mixed_separators:
      m += "mixed separators: " + quote_char(r.character) + at +
           " does not match the first separator " + quote_char(r.first_separator) +
           " at position " + to_string(r.first_position);
      break;
    case MacParseErrc::bad_group_size: {
      m += "group " + to_string(r.group) + at + " has " + to_string(r.digits) +
           (r.digits == 1 ? " hex digit" : " hex digits") + ", expected ";
      if (r.form != MacForm::unknown) {
        m += info.max_digits == 2 ? "1 or 2" : to_string(info.max_digits);
        m += in_form;
      } else {
        m += r.character == ':' ? "1, 2 or 6" : r.character == '-' ? "1, 2, 4 or 6" : "4";
        m += " before separator " + quote_char(r.character);
      }
      break;
    }
    case MacParseErrc::bad_digit_count:
      m += "found " + to_string(r.digits) + (r.digits == 1 ? " hex digit" : " hex digits") +
           " and no separator, expected 12";
      break;
    case MacParseErrc::too_few_groups:
      m += "too few groups: found " + to_string(r.group) + ", expected " + to_string(info.groups) +
           in_form;
      break;
    case MacParseErrc::too_many_groups:
      m += "too many groups: found " + to_string(r.group) + ", expected " + to_string(info.groups) +
           in_form + " (group " + to_string(info.groups + 1) + " starts" + at + ")";
      break;
    case MacParseErrc::eui64:
      m += "this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address";
      break;
  }
  return m;
}

/// The cold path of MacAddress::parse. Not constexpr, so reaching it during constant evaluation
/// is a compile error.
/// Throws: ParseError (always), std::bad_alloc.
[[noreturn]] inline void throw_mac_parse_error(std::string_view input, const MacParseResult& r) {
  throw ParseError(make_mac_parse_message(input, r), input);
}

}  // namespace devcache::detail
