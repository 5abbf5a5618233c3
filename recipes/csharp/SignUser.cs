// Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
// your Vouch identity secret, as 64 lowercase hex characters. Run it on your server only.
using System;
using System.Security.Cryptography;
using System.Text;

namespace VouchRecipes;

public static class SignUser
{
    // The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes.
    public static string SignUserId(string userId, string secret) =>
        Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(userId)))
            .ToLowerInvariant();
}
