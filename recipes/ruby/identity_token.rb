# An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
# identity secret. Unlike a signature it expires, and it can carry verified attributes.
#   gem install jwt   (Debian: apt-get install ruby-jwt)
#   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] ruby identity_token.rb USER_ID ['{"plan":"pro"}']
require "json"
require "jwt"

def identity_token(user_id, secret, attributes: nil, key_id: nil, ttl_seconds: 600)
  now = Time.now.to_i
  claims = { sub: user_id, iat: now, exp: now + ttl_seconds }
  claims[:attributes] = attributes unless attributes.nil?
  # Optional `kid` header: the id of the secret (key_…), so Vouch tries only that one.
  headers = key_id ? { kid: key_id } : {}
  JWT.encode(claims, secret, "HS256", headers)
end

if $PROGRAM_NAME == __FILE__
  secret = ENV["VOUCH_SECRET"]
  if secret.to_s.empty? || ARGV.empty? || ARGV.size > 2
    abort "usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] ruby identity_token.rb USER_ID [ATTRIBUTES_JSON]"
  end
  user_id = ARGV[0].dup.force_encoding("UTF-8")
  attributes = ARGV[1] && JSON.parse(ARGV[1].dup.force_encoding("UTF-8"))
  puts identity_token(user_id, secret, attributes: attributes, key_id: ENV["VOUCH_KEY_ID"])
end
