// Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
using System;
using System.Security.Cryptography;
using System.Text;

namespace VouchRecipes;

public static class SignCompany
{
    public static string SignCompanyId(string companyId, string secret) =>
        Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(companyId)))
            .ToLowerInvariant();
}
