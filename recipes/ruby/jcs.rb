# RFC 8785 JSON Canonicalization Scheme (JCS) for values from JSON.parse.
# No maintained gem for it could be installed where these recipes are tested, so this is a
# small, complete implementation, checked against the shared test vectors.
#
#   Jcs.canonicalize({"b" => 1, "a" => [1.0, "x"]})  # => '{"a":[1,"x"],"b":1}'
module Jcs
  MAX_SAFE_INTEGER = 2**53 - 1

  def self.canonicalize(value)
    case value
    when Hash
      # Keys sorted by their UTF-16 code units, as JavaScript sorts strings.
      members = value.map { |k, v| [k.to_s, v] }.sort_by { |k, _| k.encode("UTF-16BE").b }
      "{" + members.map { |k, v| string(k) + ":" + canonicalize(v) }.join(",") + "}"
    when Array then "[" + value.map { |v| canonicalize(v) }.join(",") + "]"
    when String then string(value)
    when Integer
      raise ArgumentError, "integer #{value} is beyond ±(2^53-1)" if value.abs > MAX_SAFE_INTEGER
      value.to_s
    when Float then number(value)
    when true then "true"
    when false then "false"
    when nil then "null"
    else raise ArgumentError, "cannot canonicalize #{value.class}"
    end
  end

  ESCAPES = { "\"" => "\\\"", "\\" => "\\\\", "\b" => "\\b", "\f" => "\\f",
              "\n" => "\\n", "\r" => "\\r", "\t" => "\\t" }.freeze

  def self.string(s)
    s = s.encode("UTF-8")
    "\"" + s.gsub(/["\\\u0000-\u001f]/) { |c| ESCAPES[c] || format("\\u%04x", c.ord) } + "\""
  end

  # A double as JavaScript's Number#toString spells it (ECMA-262, Number::toString).
  def self.number(f)
    raise ArgumentError, "NaN and Infinity are not JSON" unless f.finite?
    return "0" if f.zero? # also -0.0
    # Ruby's Float#to_s gives the shortest digits that round-trip, e.g. "1.0e+21", "0.1".
    mantissa, exp = f.abs.to_s.split("e")
    int, frac = mantissa.split(".")
    digits = (int + frac.to_s)
    n = int.length + exp.to_i # value = 0.DIGITS * 10**n
    stripped = digits.sub(/\A0+/, "")
    n -= digits.length - stripped.length
    digits = stripped.sub(/0+\z/, "")
    k = digits.length
    out =
      if k <= n && n <= 21 then digits + "0" * (n - k)
      elsif n.positive? && n <= 21 then digits[0, n] + "." + digits[n..]
      elsif n > -6 && n <= 0 then "0." + "0" * -n + digits
      else
        e = n - 1
        (k == 1 ? digits : digits[0] + "." + digits[1..]) + "e" + (e.negative? ? "-" : "+") + e.abs.to_s
      end
    (f.negative? ? "-" : "") + out
  end
end
