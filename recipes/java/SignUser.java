// Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
// your Vouch identity secret, as 64 lowercase hex characters.
// Run it on your server, never in the browser:
//   VOUCH_SECRET=sk_test_… java SignUser.java USER_ID
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class SignUser {
    /** The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes. */
    public static String signUserId(String userId, String secret) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        return HexFormat.of().formatHex(mac.doFinal(userId.getBytes(StandardCharsets.UTF_8)));
    }

    public static void main(String[] args) throws Exception {
        String secret = System.getenv("VOUCH_SECRET");
        if (secret == null || secret.isEmpty() || args.length != 1) {
            System.err.println("usage: VOUCH_SECRET=sk_… java SignUser.java USER_ID");
            System.exit(2);
        }
        System.out.println(signUserId(args[0], secret));
    }
}
