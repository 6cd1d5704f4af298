// libFuzzer target for the MQTT decoder. The first input byte picks the
// protocol version and the chunking; the rest is fed to a stream_decoder.
// Every packet that decodes must re-encode to bytes that decode to the same
// packet, and the encoder's size prediction must be exact.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/codec/decoder.hpp"
#include "broker/codec/encoder.hpp"

using namespace ringmq::codec;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  const auto version = static_cast<protocol_version>(3 + control % 3);
  const std::size_t chunk = 1 + (control >> 2) % 16;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  stream_decoder decoder(64 * 1024);
  decoder.set_version(version);
  while (true) {
    if (!input.empty()) {
      const auto n = std::min(chunk, input.size());
      decoder.feed(input.substr(0, n));
      input.remove_prefix(n);
    }
    auto result = decoder.next();
    if (!result) return 0;  // a precise error is a fine answer to garbage
    if (!*result) {
      if (input.empty()) return 0;
      continue;
    }
    const packet& decoded = **result;
    const auto wire_version =
        type_of(decoded) == packet_type::connect ? std::get<connect_packet>(decoded).version
                                                 : decoder.version();
    const std::string bytes = encode(decoded, wire_version);
    if (bytes.size() != encoded_size(decoded, wire_version)) std::abort();
    auto again = decode_packet(bytes, wire_version);
    if (!again || *again != decoded) std::abort();
  }
}
