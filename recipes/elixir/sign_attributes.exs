# Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
# attributes object, so that key order and spacing do not matter. Send the same object as
# `attributes` and this value as `attributes_signature`.
#   VOUCH_SECRET=sk_test_… elixir sign_attributes.exs '{"plan":"pro","seats":5}'
Code.require_file("jcs.ex", __DIR__)
Code.require_file("json_text.ex", __DIR__)

defmodule VouchSignAttributes do
  # Jason.encode! is NOT canonical (key order, number spelling): use Jcs.canonicalize.
  def sign_attributes(attributes, secret) when is_map(attributes) do
    :crypto.mac(:hmac, :sha256, secret, Jcs.canonicalize(attributes)) |> Base.encode16(case: :lower)
  end
end

case {System.get_env("VOUCH_SECRET"), System.argv()} do
  {secret, [json]} when secret not in [nil, ""] ->
    IO.puts(VouchSignAttributes.sign_attributes(JsonText.decode!(json), secret))

  _ ->
    IO.puts(:stderr, "usage: VOUCH_SECRET=sk_… elixir sign_attributes.exs ATTRIBUTES_JSON")
    System.halt(2)
end
