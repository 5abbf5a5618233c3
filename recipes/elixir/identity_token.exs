# An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
# identity secret. Unlike a signature it expires, and it can carry verified attributes.
#   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] elixir identity_token.exs USER_ID ['{"plan":"pro"}']
#
# Uses JOSE (hex package `jose`, Debian `erlang-jose` + `erlang-jiffy`), the library under
# Joken; with Joken the same token is Joken.Signer.create("HS256", secret) and
# Joken.generate_and_sign/2.
Code.require_file("json_text.ex", __DIR__)

defmodule VouchIdentityToken do
  def identity_token(user_id, secret, attributes \\ nil, key_id \\ nil, ttl_seconds \\ 600) do
    now = System.system_time(:second)
    claims = %{"sub" => user_id, "iat" => now, "exp" => now + ttl_seconds}
    claims = if attributes, do: Map.put(claims, "attributes", attributes), else: claims
    # Optional `kid` header: the id of the secret (key_…), so Vouch tries only that one.
    header = if key_id, do: %{"alg" => "HS256", "kid" => key_id}, else: %{"alg" => "HS256"}
    jwk = :jose_jwk.from_oct(secret)
    {_, token} = :jose_jwt.sign(jwk, header, claims) |> :jose_jws.compact()
    token
  end
end

key_id = System.get_env("VOUCH_KEY_ID")
key_id = if key_id in [nil, ""], do: nil, else: key_id

case {System.get_env("VOUCH_SECRET"), System.argv()} do
  {secret, [user_id | rest]} when secret not in [nil, ""] and length(rest) <= 1 ->
    attributes = Enum.map(rest, &JsonText.decode!/1) |> List.first()
    IO.puts(VouchIdentityToken.identity_token(user_id, secret, attributes, key_id))

  _ ->
    IO.puts(:stderr, "usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] elixir identity_token.exs USER_ID [ATTRIBUTES_JSON]")
    System.halt(2)
end
