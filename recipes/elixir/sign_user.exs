# Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
# your Vouch identity secret, as 64 lowercase hex characters.
# Run it on your server, never in the browser:
#   VOUCH_SECRET=sk_test_… elixir sign_user.exs USER_ID
defmodule VouchSignUser do
  # The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes.
  def sign_user_id(user_id, secret) do
    :crypto.mac(:hmac, :sha256, secret, user_id) |> Base.encode16(case: :lower)
  end
end

case {System.get_env("VOUCH_SECRET"), System.argv()} do
  {secret, [user_id]} when secret not in [nil, ""] ->
    IO.puts(VouchSignUser.sign_user_id(user_id, secret))

  _ ->
    IO.puts(:stderr, "usage: VOUCH_SECRET=sk_… elixir sign_user.exs USER_ID")
    System.halt(2)
end
