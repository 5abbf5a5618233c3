// Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
//   VOUCH_SECRET=sk_test_… java SignCompany.java COMPANY_ID
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class SignCompany {
    public static String signCompanyId(String companyId, String secret) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        return HexFormat.of().formatHex(mac.doFinal(companyId.getBytes(StandardCharsets.UTF_8)));
    }

    public static void main(String[] args) throws Exception {
        String secret = System.getenv("VOUCH_SECRET");
        if (secret == null || secret.isEmpty() || args.length != 1) {
            System.err.println("usage: VOUCH_SECRET=sk_… java SignCompany.java COMPANY_ID");
            System.exit(2);
        }
        System.out.println(signCompanyId(args[0], secret));
    }
}
