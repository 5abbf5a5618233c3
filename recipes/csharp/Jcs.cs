// RFC 8785 JSON Canonicalization Scheme (JCS) for a System.Text.Json JsonElement.
// Written by hand because NuGet could not be reached where these recipes are written.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace VouchRecipes;

public static class Jcs
{
    public static string Canonicalize(JsonElement value)
    {
        var sb = new StringBuilder();
        Write(value, sb);
        return sb.ToString();
    }

    static void Write(JsonElement value, StringBuilder sb)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                var members = value.EnumerateObject().ToList();
                if (members.Select(m => m.Name).Distinct(StringComparer.Ordinal).Count() != members.Count)
                    throw new ArgumentException("duplicate keys: their canonical form would be ambiguous");
                // Ordinal comparison compares UTF-16 code units: exactly the order RFC 8785 wants.
                members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                sb.Append('{');
                for (int i = 0; i < members.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    WriteString(members[i].Name, sb);
                    sb.Append(':');
                    Write(members[i].Value, sb);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                int n = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (n++ > 0) sb.Append(',');
                    Write(item, sb);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String: WriteString(value.GetString()!, sb); break;
            case JsonValueKind.Number:
                string raw = value.GetRawText();
                if (raw.IndexOfAny(new[] { '.', 'e', 'E' }) < 0)
                {
                    if (!long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l)
                        || Math.Abs(l) > 9007199254740991L)
                        throw new ArgumentException($"integer {raw} is beyond ±(2^53-1)");
                    sb.Append(l.ToString(CultureInfo.InvariantCulture));
                }
                else
                {
                    sb.Append(FormatNumber(double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture)));
                }
                break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            case JsonValueKind.Null: sb.Append("null"); break;
            default: throw new ArgumentException($"cannot canonicalize {value.ValueKind}");
        }
    }

    // Escapes only ", \ and control characters; everything else is written as is.
    static void WriteString(string s, StringBuilder sb)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    // A double as JavaScript's Number#toString spells it (ECMA-262, Number::toString).
    public static string FormatNumber(double d)
    {
        if (double.IsNaN(d) || double.IsInfinity(d)) throw new ArgumentException("NaN and Infinity are not JSON");
        if (d == 0) return "0"; // also -0.0
        // "R" gives the shortest digits that round-trip (.NET Core 3.0+), e.g. "1E+21", "0.1".
        string shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        string[] parts = shortest.Split('E');
        string[] mantissa = parts[0].Split('.');
        string digits = mantissa[0] + (mantissa.Length > 1 ? mantissa[1] : "");
        int n = mantissa[0].Length + (parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0);
        string stripped = digits.TrimStart('0');
        n -= digits.Length - stripped.Length; // value = 0.DIGITS * 10^n
        digits = stripped.TrimEnd('0');
        int k = digits.Length;
        string result;
        if (k <= n && n <= 21) result = digits + new string('0', n - k);
        else if (n > 0 && n <= 21) result = digits[..n] + "." + digits[n..];
        else if (n > -6 && n <= 0) result = "0." + new string('0', -n) + digits;
        else
        {
            int e = n - 1;
            result = (k == 1 ? digits : digits[0] + "." + digits[1..]) + "e" + (e < 0 ? "-" : "+") + Math.Abs(e);
        }
        return d < 0 ? "-" + result : result;
    }
}
