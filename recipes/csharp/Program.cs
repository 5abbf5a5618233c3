// Command line for the C# recipes, e.g.
//   VOUCH_SECRET=sk_test_… dotnet run -- sign_user USER_ID
//   VOUCH_SECRET=sk_test_… dotnet run -- sign_company COMPANY_ID
//   VOUCH_SECRET=sk_test_… dotnet run -- sign_attributes '{"plan":"pro"}'
//   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] dotnet run -- identity_token USER_ID ['{"plan":"pro"}']
using System;
using System.Text.Json;

namespace VouchRecipes;

public static class Program
{
    public static int Main(string[] args)
    {
        string? secret = Environment.GetEnvironmentVariable("VOUCH_SECRET");
        if (string.IsNullOrEmpty(secret) || args.Length < 2)
        {
            Console.Error.WriteLine("usage: VOUCH_SECRET=sk_… VouchRecipes sign_user|sign_company|sign_attributes|identity_token ARG [ATTRIBUTES_JSON]");
            return 2;
        }
        Console.Out.NewLine = "\n";
        switch (args[0])
        {
            case "sign_user": Console.WriteLine(SignUser.SignUserId(args[1], secret)); return 0;
            case "sign_company": Console.WriteLine(SignCompany.SignCompanyId(args[1], secret)); return 0;
            case "sign_attributes":
                using (var doc = JsonDocument.Parse(args[1]))
                    Console.WriteLine(SignAttributes.Sign(doc.RootElement, secret));
                return 0;
            case "identity_token":
                JsonElement? attributes = args.Length > 2 ? JsonDocument.Parse(args[2]).RootElement : null;
                Console.WriteLine(IdentityToken.Create(args[1], secret, attributes,
                    Environment.GetEnvironmentVariable("VOUCH_KEY_ID")));
                return 0;
            default:
                Console.Error.WriteLine($"unknown recipe {args[0]}");
                return 2;
        }
    }
}
