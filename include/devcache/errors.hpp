// devcache/errors.hpp — the exception types devcache's parsers throw.
//
// Kept tiny and free of other devcache headers so that every parser (MacAddress, IpAddress, ...)
// can share it.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace devcache {

/// Thrown when text cannot be parsed as a devcache value (a MAC address, an IP address, ...).
///
/// `what()` is the complete, human-readable message, built by the parser; it quotes the input
/// (escaped, possibly truncated) and says what is wrong and where. `input()` gives back the full
/// offending input, unescaped and untruncated.
///
/// Copying is noexcept, as it must be for an exception type: the input is held in a shared,
/// immutable string (std::invalid_argument does the same for the message).
///
/// Example:
///   try {
///     auto mac = devcache::MacAddress::parse(text);
///   } catch (const devcache::ParseError& e) {
///     log(e.what());  // invalid MAC address "00:11:22:33:44:5g": 'g' at position 16 is ...
///   }
class ParseError : public std::invalid_argument {
 public:
  /// Takes the full message and, optionally, the offending input.
  /// Thread-safety: constructs a new object. Throws: std::bad_alloc.
  explicit ParseError(const std::string& message, std::string_view input = {})
      : std::invalid_argument(message), input_(std::make_shared<const std::string>(input)) {}

  /// The input that failed to parse, exactly as given (empty if the thrower did not say).
  /// Thread-safety: const; safe to call concurrently. Complexity: O(input size) (it copies).
  /// Throws: std::bad_alloc.
  [[nodiscard]] std::string input() const { return *input_; }

 private:
  std::shared_ptr<const std::string> input_;
};

}  // namespace devcache
