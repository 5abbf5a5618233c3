// An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
// identity secret. Unlike a signature it expires, and it can carry verified attributes.
// System.IdentityModel.Tokens.Jwt can build the same token; this file uses only the
// standard library: an HS256 JWT is two pieces of base64url JSON and an HMAC.
using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace VouchRecipes;

public static class IdentityToken
{
    static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Create(string userId, string secret, JsonElement? attributes = null,
                                string? keyId = null, int ttlSeconds = 600)
    {
        var header = new Dictionary<string, object> { ["alg"] = "HS256", ["typ"] = "JWT" };
        if (!string.IsNullOrEmpty(keyId)) header["kid"] = keyId; // so Vouch tries only that secret
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new Dictionary<string, object> { ["sub"] = userId, ["iat"] = now, ["exp"] = now + ttlSeconds };
        if (attributes is JsonElement a) claims["attributes"] = a;
        string signingInput = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "."
            + Base64Url(JsonSerializer.SerializeToUtf8Bytes(claims));
        byte[] mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + Base64Url(mac);
    }
}
