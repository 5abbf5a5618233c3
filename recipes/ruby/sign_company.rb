# Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
#   VOUCH_SECRET=sk_test_… ruby sign_company.rb COMPANY_ID
require "openssl"

def sign_company_id(company_id, secret)
  OpenSSL::HMAC.hexdigest("SHA256", secret.b, company_id.b)
end

if $PROGRAM_NAME == __FILE__
  secret = ENV["VOUCH_SECRET"]
  abort "usage: VOUCH_SECRET=sk_… ruby sign_company.rb COMPANY_ID" if secret.to_s.empty? || ARGV.size != 1
  puts sign_company_id(ARGV[0], secret)
end
