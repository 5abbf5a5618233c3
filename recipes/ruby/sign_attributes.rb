# Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
# attributes object, so that key order and spacing do not matter. Send the same object as
# `attributes` and this value as `attributes_signature`.
#   VOUCH_SECRET=sk_test_… ruby sign_attributes.rb '{"plan":"pro","seats":5}'
require "json"
require "openssl"
require_relative "jcs"

def sign_attributes(attributes, secret)
  # JSON.generate is NOT canonical (key order, 1.0e+21 vs 1e+21): use Jcs.canonicalize.
  OpenSSL::HMAC.hexdigest("SHA256", secret.b, Jcs.canonicalize(attributes).b)
end

if $PROGRAM_NAME == __FILE__
  secret = ENV["VOUCH_SECRET"]
  abort "usage: VOUCH_SECRET=sk_… ruby sign_attributes.rb ATTRIBUTES_JSON" if secret.to_s.empty? || ARGV.size != 1
  puts sign_attributes(JSON.parse(ARGV[0].dup.force_encoding("UTF-8")), secret)
end
