#pragma once
// mosquitto's acl_file: who may publish to, subscribe to and receive which topics.
//
//   # comment
//   topic [read|write|readwrite|deny] <filter>    (no access word: readwrite)
//   user <name>                                    (starts that user's section)
//   pattern [read|write|readwrite|deny] <filter>  (%c client id, %u user name)
//
// Semantics (docs/security.md has the long version):
//  - `topic` lines before the first `user` line apply to clients that sent no
//    user name; after `user <name>`, to clients that sent exactly that name.
//    `pattern` lines apply to every client wherever they stand, with %c and %u
//    substituted when they form a whole level ("devices/%c/#").
//  - A client may do what one of its `topic` lines or one of the `pattern`
//    lines grants, unless one of them denies it: `deny` always wins.
//    Whatever is not granted is denied: an ACL file is a whitelist.
//  - publish needs write on the topic, receive needs read on the topic (checked
//    for every message routed to a session, retained ones included, so a
//    reloaded ACL applies to existing subscriptions). A subscription is
//    refused when it can never deliver anything: no read line overlaps its
//    filter, or a deny line covers it; what it may deliver is then decided
//    message by message.
//  - Filters starting with '+' or '#' do not match topics starting with '$'
//    ($SYS needs its own lines), and clients never publish to $SYS.
//  - A client id or user name containing '+', '#' or '/' never gains anything
//    from a pattern line that substitutes it (a client "#" would otherwise read
//    "devices/#"); a deny pattern line then denies for any value at that level.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/auth/file_error.hpp"
#include "broker/auth/password_file.hpp"
#include "broker/core/auth.hpp"

namespace ringmq::auth {

namespace acl_access {
inline constexpr std::uint8_t deny = 0;
inline constexpr std::uint8_t read = 1;
inline constexpr std::uint8_t write = 2;
inline constexpr std::uint8_t readwrite = read | write;
}  // namespace acl_access

struct acl_level {
  enum class kind : std::uint8_t { literal, single, multi, client_id, user_name };
  kind what = kind::literal;
  std::string text;  // literal only
};

struct acl_rule {
  std::uint8_t access = acl_access::readwrite;
  std::vector<acl_level> levels;
  bool uses_client_id = false;
  bool uses_user_name = false;
  int line = 0;
};

// The rules that apply to one kind of client, denials kept apart: they are
// checked first, whatever their place in the file.
struct acl_section {
  std::vector<acl_rule> denials;
  std::vector<acl_rule> grants;

  bool empty() const noexcept { return denials.empty() && grants.empty(); }
};

class acl_table {
 public:
  // The decision for `who` doing `what` with `topic` (a topic name for publish
  // and receive, a filter, perhaps "$share/group/filter", for subscribe).
  bool allowed(const core::client_identity& who, std::string_view topic, core::access what) const;

  std::size_t rule_count() const noexcept { return rules_; }
  std::size_t user_count() const noexcept { return users_.size(); }

 private:
  friend struct acl_parser;
  const acl_section* section_of(const core::client_identity& who) const;
  bool topic_allowed(const core::client_identity& who, std::string_view topic,
                     std::uint8_t need) const;
  bool subscription_allowed(const core::client_identity& who, std::string_view filter) const;

  acl_section anonymous_;
  std::unordered_map<std::string, acl_section, string_hash, std::equal_to<>> users_;
  acl_section patterns_;
  std::size_t rules_ = 0;
};

struct acl_file_result {
  std::shared_ptr<const acl_table> table;  // null on error
  std::optional<file_error> error;
};

// `file_name` is only used in error messages.
acl_file_result parse_acl_file(std::string_view text, const std::string& file_name);
acl_file_result load_acl_file(const std::string& path);

}  // namespace ringmq::auth
