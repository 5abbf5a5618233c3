# Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
#   VOUCH_SECRET=sk_test_… elixir sign_company.exs COMPANY_ID
defmodule VouchSignCompany do
  def sign_company_id(company_id, secret) do
    :crypto.mac(:hmac, :sha256, secret, company_id) |> Base.encode16(case: :lower)
  end
end

case {System.get_env("VOUCH_SECRET"), System.argv()} do
  {secret, [company_id]} when secret not in [nil, ""] ->
    IO.puts(VouchSignCompany.sign_company_id(company_id, secret))

  _ ->
    IO.puts(:stderr, "usage: VOUCH_SECRET=sk_… elixir sign_company.exs COMPANY_ID")
    System.halt(2)
end
