// Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
// attributes object, so that key order and spacing do not matter. Send the same object as
// `attributes` and this value as `attributes_signature`.
using System;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace VouchRecipes;

public static class SignAttributes
{
    // JsonSerializer.Serialize is NOT canonical (key order, escaping): use Jcs.Canonicalize.
    public static string Sign(JsonElement attributes, string secret) =>
        Convert.ToHexString(HMACSHA256.HashData(
            Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(Jcs.Canonicalize(attributes))))
            .ToLowerInvariant();
}
