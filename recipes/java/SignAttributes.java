// Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
// attributes object, so that key order and spacing do not matter. Send the same object as
// `attributes` and this value as `attributes_signature`.
//   javac -cp jackson-databind.jar:jackson-core.jar:jackson-annotations.jar Jcs.java SignAttributes.java
//   VOUCH_SECRET=sk_test_… java -cp .:… SignAttributes '{"plan":"pro","seats":5}'
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class SignAttributes {
    /** ObjectMapper.writeValueAsString is NOT canonical (key order, 1.0E21): use Jcs. */
    public static String signAttributes(JsonNode attributes, String secret) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        byte[] canonical = Jcs.canonicalize(attributes).getBytes(StandardCharsets.UTF_8);
        return HexFormat.of().formatHex(mac.doFinal(canonical));
    }

    public static void main(String[] args) throws Exception {
        String secret = System.getenv("VOUCH_SECRET");
        if (secret == null || secret.isEmpty() || args.length != 1) {
            System.err.println("usage: VOUCH_SECRET=sk_… java SignAttributes ATTRIBUTES_JSON");
            System.exit(2);
        }
        // Refuse duplicate keys, as Vouch does: their canonical form would be ambiguous.
        ObjectMapper json = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        System.out.println(signAttributes(json.readTree(args[0]), secret));
    }
}
