defmodule Jcs do
  @moduledoc """
  RFC 8785 JSON Canonicalization Scheme (JCS) for decoded JSON (maps with string keys,
  lists, strings, numbers, booleans, nil), e.g. what `Jason.decode!/1` returns.
  No JCS package could be installed where these recipes are tested, so this is a small,
  complete implementation, checked against the shared test vectors.

      Jcs.canonicalize(%{"b" => 1, "a" => [1.0, "x"]})  #=> ~s({"a":[1,"x"],"b":1})
  """

  @max_safe_integer 9_007_199_254_740_991

  def canonicalize(map) when is_map(map) do
    members =
      map
      |> Enum.map(fn {k, v} -> {to_string(k), v} end)
      # Keys sorted by their UTF-16 code units, as JavaScript sorts strings.
      |> Enum.sort_by(fn {k, _} -> :unicode.characters_to_binary(k, :utf8, {:utf16, :big}) end)
      |> Enum.map(fn {k, v} -> string(k) <> ":" <> canonicalize(v) end)

    "{" <> Enum.join(members, ",") <> "}"
  end

  def canonicalize(list) when is_list(list),
    do: "[" <> Enum.map_join(list, ",", &canonicalize/1) <> "]"

  def canonicalize(s) when is_binary(s), do: string(s)
  def canonicalize(true), do: "true"
  def canonicalize(false), do: "false"
  def canonicalize(nil), do: "null"

  def canonicalize(i) when is_integer(i) do
    if abs(i) > @max_safe_integer, do: raise(ArgumentError, "integer #{i} is beyond ±(2^53-1)")
    Integer.to_string(i)
  end

  def canonicalize(f) when is_float(f), do: number(f)

  defp string(s) do
    escaped =
      for <<c::utf8 <- s>>, into: "" do
        case c do
          ?" -> "\\\""
          ?\\ -> "\\\\"
          ?\b -> "\\b"
          ?\f -> "\\f"
          ?\n -> "\\n"
          ?\r -> "\\r"
          ?\t -> "\\t"
          c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16) |> String.downcase(), 4, "0")
          c -> <<c::utf8>>
        end
      end

    "\"" <> escaped <> "\""
  end

  # A double as JavaScript's Number#toString spells it (ECMA-262, Number::toString).
  defp number(f) when f == 0, do: "0"

  defp number(f) do
    # :short gives the shortest digits that round-trip, e.g. "1.0e21", "0.1".
    [mantissa | exp] = String.split(:erlang.float_to_binary(abs(f), [:short]), "e")
    [int | frac] = String.split(mantissa, ".")
    digits = int <> Enum.join(frac)
    stripped = String.trim_leading(digits, "0")
    # value = 0.DIGITS * 10^n
    n = String.length(int) + String.to_integer(Enum.join(exp) |> default("0")) -
          (String.length(digits) - String.length(stripped))
    digits = String.trim_trailing(stripped, "0")
    k = String.length(digits)

    out =
      cond do
        k <= n and n <= 21 -> digits <> String.duplicate("0", n - k)
        n > 0 and n <= 21 -> String.slice(digits, 0, n) <> "." <> String.slice(digits, n..-1)
        n > -6 and n <= 0 -> "0." <> String.duplicate("0", -n) <> digits
        true ->
          e = n - 1
          m = if k == 1, do: digits, else: String.first(digits) <> "." <> String.slice(digits, 1..-1)
          m <> "e" <> if(e < 0, do: "-", else: "+") <> Integer.to_string(abs(e))
      end

    if f < 0, do: "-" <> out, else: out
  end

  defp default("", d), do: d
  defp default(s, _), do: s
end
