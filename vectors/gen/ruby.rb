# Vouch test vectors, computed with Ruby's OpenSSL::HMAC.
#
#   ruby vectors/gen/ruby.rb [inputs.json] [vectors.json]
#
# Signatures come from inputs.json. For attributes and tokens this runtime
# takes the canonical JSON and the token signing input ("header.payload")
# from vectors.json and computes the MACs itself.
require "base64"
require "json"
require "openssl"

here = File.dirname(File.expand_path(__FILE__))
inputs = JSON.parse(File.read(ARGV[0] || File.join(here, "..", "inputs.json"), encoding: "UTF-8"))
vectors = JSON.parse(File.read(ARGV[1] || File.join(here, "..", "vectors.json"), encoding: "UTF-8"))

def mac(key, message)
  OpenSSL::HMAC.digest("SHA256", key.encode("UTF-8").b, message.encode("UTF-8").b)
end

def encodings(digest)
  {
    "hex" => digest.unpack1("H*"),
    "base64" => Base64.strict_encode64(digest),
    "base64url" => Base64.urlsafe_encode64(digest, padding: false),
  }
end

secrets = inputs["secrets"].to_h { |s| [s["name"], s["value"]] }

signatures = inputs["secrets"].flat_map do |s|
  inputs["messages"].map do |m|
    { "id" => "#{s["name"]}/#{m["name"]}" }.merge(encodings(mac(s["value"], m["value"])))
  end
end

attributes = vectors["attributes"].map do |a|
  { "id" => a["id"] }.merge(encodings(mac(secrets.fetch(a["secret_name"]), a["canonical"])))
end

tokens = vectors["tokens"].map do |t|
  signing_input = t["token"].split(".")[0, 2].join(".")
  signature = Base64.urlsafe_encode64(mac(secrets.fetch(t["secret_name"]), signing_input), padding: false)
  { "id" => t["id"], "token" => "#{signing_input}.#{signature}" }
end

puts JSON.pretty_generate(
  "runtime" => "ruby #{RUBY_VERSION} (#{OpenSSL::OPENSSL_LIBRARY_VERSION})",
  "signatures" => signatures,
  "attributes" => attributes,
  "tokens" => tokens,
)
