defmodule JsonText do
  @moduledoc """
  A minimal strict JSON decoder for the recipes' command lines (your application already
  has its attributes as a map, or decodes JSON with Jason). Objects become maps, numbers
  with a fraction or exponent become floats, other numbers integers.
  """

  def decode!(text) do
    {value, rest} = value(skip(text))
    if skip(rest) != "", do: raise(ArgumentError, "trailing characters after JSON value")
    value
  end

  defp skip(<<c, rest::binary>>) when c in ~c[ \t\n\r], do: skip(rest)
  defp skip(rest), do: rest

  defp value("{" <> rest), do: object(skip(rest), %{})
  defp value("[" <> rest), do: array(skip(rest), [])
  defp value("\"" <> rest), do: string(rest, [])
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("null" <> rest), do: {nil, rest}

  defp value(text) do
    case Regex.run(~r/\A-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/, text) do
      [num | parts] ->
        rest = binary_part(text, byte_size(num), byte_size(text) - byte_size(num))
        if Enum.any?(parts, &(&1 != "")) do
          {f, ""} = Float.parse(num)
          {f, rest}
        else
          {String.to_integer(num), rest}
        end

      nil ->
        raise ArgumentError, "invalid JSON near: #{String.slice(text, 0, 20)}"
    end
  end

  defp object("}" <> rest, acc), do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip(rest)
    {v, rest} = value(skip(rest))
    if Map.has_key?(acc, key), do: raise(ArgumentError, "duplicate key #{inspect(key)}")

    case skip(rest) do
      "," <> rest -> object(skip(rest), Map.put(acc, key, v))
      "}" <> rest -> {Map.put(acc, key, v), rest}
    end
  end

  defp array("]" <> rest, []), do: {[], rest}

  defp array(text, acc) do
    {v, rest} = value(skip(text))

    case skip(rest) do
      "," <> rest -> array(skip(rest), [v | acc])
      "]" <> rest -> {Enum.reverse([v | acc]), rest}
    end
  end

  defp string("\"" <> rest, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}

  defp string("\\u" <> <<hex::binary-4, rest::binary>>, acc) do
    case {String.to_integer(hex, 16), rest} do
      # A surrogate pair (\ud83d\ude00) is one character beyond U+FFFF.
      {hi, "\\u" <> <<lo::binary-4, rest::binary>>} when hi in 0xD800..0xDBFF ->
        c = 0x10000 + (hi - 0xD800) * 0x400 + (String.to_integer(lo, 16) - 0xDC00)
        string(rest, [<<c::utf8>> | acc])

      {c, _} ->
        string(rest, [<<c::utf8>> | acc])
    end
  end

  defp string("\\" <> <<c, rest::binary>>, acc) do
    e = %{?" => "\"", ?\\ => "\\", ?/ => "/", ?b => "\b", ?f => "\f", ?n => "\n", ?r => "\r", ?t => "\t"}
    string(rest, [Map.fetch!(e, c) | acc])
  end

  defp string(<<c::utf8, rest::binary>>, acc) when c >= 0x20, do: string(rest, [<<c::utf8>> | acc])
end
