// devcache/errors.hpp — the exception types devcache throws: ParseError (its parsers) and
// PersistenceError (saving and loading a cache, persistence.hpp).
//
// Kept tiny and free of other devcache headers so that every parser (MacAddress, IpAddress, ...)
// can share it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

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

/// Thrown when a cache cannot be saved to or loaded from a file (persistence.hpp): an I/O error
/// (the file is missing, the disk is full, permission is denied, ...) or a file that is not a
/// valid state file (foreign, truncated, corrupt, of an unsupported version).
///
/// `what()` is the complete message: it names the file, says where it went wrong (the byte offset
/// and the record, for a bad file) and what is wrong (strerror for an I/O error). The accessors
/// give the same facts to a program: path(), code() (the errno of an I/O error, empty for a bad
/// file), offset() and record() (where in a bad file, if known).
///
/// Copying is noexcept, as it must be for an exception type: the details are held in a shared,
/// immutable block.
///
/// Example:
///   try {
///     devcache::load(cache, "/var/lib/app/devices.state");
///   } catch (const devcache::PersistenceError& e) {
///     if (e.code() == std::errc::no_such_file_or_directory) { /* first start */ }
///     else log(e.what());  // ... "devices.state": record 12 of 40 at byte offset 797: ...
///   }
class PersistenceError : public std::runtime_error {
 public:
  /// Where in a bad file the problem is, when known.
  struct Location {
    std::optional<std::uint64_t> offset;  ///< byte offset from the start of the file
    std::optional<std::uint64_t> record;  ///< record index, from 0
  };

  /// Takes the full message, the file's path, the I/O error (if any) and the location (if known).
  /// Thread-safety: constructs a new object. Throws: std::bad_alloc.
  PersistenceError(const std::string& message, std::string path, std::error_code code = {},
                   Location where = {})
      : std::runtime_error(message),
        details_(std::make_shared<const Details>(Details{std::move(path), code, where})) {}

  /// The path of the file being saved or loaded, as given.
  /// Thread-safety: const. Throws: nothing.
  [[nodiscard]] const std::string& path() const noexcept { return details_->path; }
  /// The I/O error (an errno value in std::generic_category()); empty when the file was read but
  /// is not a valid state file. Thread-safety: const. Throws: nothing.
  [[nodiscard]] std::error_code code() const noexcept { return details_->code; }
  /// The byte offset in the file where a bad file went wrong, if known.
  /// Thread-safety: const. Throws: nothing.
  [[nodiscard]] std::optional<std::uint64_t> offset() const noexcept {
    return details_->where.offset;
  }
  /// The index (from 0) of the bad record, if the problem is in a record.
  /// Thread-safety: const. Throws: nothing.
  [[nodiscard]] std::optional<std::uint64_t> record() const noexcept {
    return details_->where.record;
  }

 private:
  struct Details {
    std::string path;
    std::error_code code;
    Location where;
  };
  std::shared_ptr<const Details> details_;
};

}  // namespace devcache
