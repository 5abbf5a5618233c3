# Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
# your Vouch identity secret, as 64 lowercase hex characters.
# Run it on your server, never in the browser:
#   VOUCH_SECRET=sk_test_… ruby sign_user.rb USER_ID
require "openssl"

def sign_user_id(user_id, secret)
  # The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes.
  OpenSSL::HMAC.hexdigest("SHA256", secret.b, user_id.b)
end

if $PROGRAM_NAME == __FILE__
  secret = ENV["VOUCH_SECRET"]
  abort "usage: VOUCH_SECRET=sk_… ruby sign_user.rb USER_ID" if secret.to_s.empty? || ARGV.size != 1
  puts sign_user_id(ARGV[0], secret)
end
